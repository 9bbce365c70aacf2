package netlab

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Ethernet overhead on the wire around a frame: preamble + SFD (8) and the
// inter-frame gap (12). Frame sizes in plans include the 14-byte header and
// the 4-byte FCS, as RFC 2544 counts them.
const (
	preambleSFD    = 8
	interFrameGap  = 12
	wireOverhead   = preambleSFD + interFrameGap
	minFrame       = 64
	maxFrame       = 9216
	planHeadroom   = 0.8 // a core planned to 80 % of its measured capacity
	defaultMaxCore = 64
)

// SizeShare is one frame size and its share of packets.
type SizeShare struct {
	Frame int     `json:"frame_bytes"`
	Share float64 `json:"share"`
}

// Dist is a packet size distribution (shares sum to 1).
type Dist []SizeShare

// ParseDist parses --sizes for plan: "64:0.2,256:0.5,1024:0.3" (frame
// bytes:share), or "64,256" for equal shares. Shares are weights and are
// normalised; each frame must be 64 to 9216 bytes.
func ParseDist(s string) (Dist, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("--sizes: empty; give frame sizes like 64:0.2,256:0.5,1024:0.3")
	}
	var d Dist
	var total float64
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		sizeStr, shareStr, hasShare := strings.Cut(part, ":")
		size, err := strconv.Atoi(strings.TrimSpace(sizeStr))
		if err != nil {
			return nil, fmt.Errorf("--sizes: %q is not a frame size in bytes", sizeStr)
		}
		if size < minFrame || size > maxFrame {
			return nil, fmt.Errorf("--sizes: frame %d bytes must be %d to %d (Ethernet frame incl. header and FCS)", size, minFrame, maxFrame)
		}
		if seen[size] {
			return nil, fmt.Errorf("--sizes: frame %d given twice", size)
		}
		seen[size] = true
		share := 1.0
		if hasShare {
			share, err = strconv.ParseFloat(strings.TrimSpace(shareStr), 64)
			if err != nil || math.IsNaN(share) || math.IsInf(share, 0) || share <= 0 || share > 1e6 {
				return nil, fmt.Errorf("--sizes: share %q of frame %d must be a positive number", shareStr, size)
			}
		}
		d = append(d, SizeShare{size, share})
		total += share
	}
	for i := range d {
		d[i].Share /= total
	}
	sort.Slice(d, func(i, j int) bool { return d[i].Frame < d[j].Frame })
	return d, nil
}

// String renders the distribution the way ParseDist reads it.
func (d Dist) String() string {
	var parts []string
	for _, s := range d {
		parts = append(parts, fmt.Sprintf("%d:%s", s.Frame, strconv.FormatFloat(s.Share, 'g', 4, 64)))
	}
	return strings.Join(parts, ",")
}

// MeanWireBytes is the average bytes a packet occupies on the wire.
func (d Dist) MeanWireBytes() float64 {
	var m float64
	for _, s := range d {
		m += s.Share * float64(s.Frame+wireOverhead)
	}
	return m
}

// LineRatePPS is the packets/s a link of bps carries at frame bytes:
// bps / ((frame + 20) × 8). 10 Gb/s at 64 B is 14.88 Mpps.
func LineRatePPS(bps float64, frame int) float64 {
	return bps / (float64(frame+wireOverhead) * 8)
}

// ParseNIC reads --nic: 1G, 10G, 25G, 40G, 50G, 100G, 200G or 400G.
func ParseNIC(s string) (float64, error) {
	t := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "bps"), "b"))
	t = strings.TrimSuffix(t, "G")
	switch t {
	case "1", "10", "25", "40", "50", "100", "200", "400":
		v, _ := strconv.Atoi(t)
		return float64(v) * 1e9, nil
	}
	return 0, fmt.Errorf("--nic %q: use 1G, 10G, 25G, 40G, 50G, 100G, 200G or 400G", s)
}

// ParseRate reads a packet rate: 250000, 250k, 1.5M.
func ParseRate(s string) (float64, error) {
	t := strings.TrimSpace(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "pps"), "/s"))
	mult := 1.0
	switch {
	case strings.HasSuffix(t, "k"), strings.HasSuffix(t, "K"):
		mult, t = 1e3, t[:len(t)-1]
	case strings.HasSuffix(t, "M"), strings.HasSuffix(t, "m"):
		mult, t = 1e6, t[:len(t)-1]
	case strings.HasSuffix(t, "G"):
		mult, t = 1e9, t[:len(t)-1]
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 || v*mult > 1e10 {
		return 0, fmt.Errorf("%q is not a packet rate (e.g. 250000, 250k, 1.5M)", s)
	}
	return v * mult, nil
}

// PathCost is one path's cost model: CPU per packet and one core's knee
// at each measured frame size.
type PathCost struct {
	Path   string      `json:"path"`
	Source string      `json:"source"` // "measured: …" or "built-in default: …"
	Points []CostPoint `json:"points"`
}

// CostPoint is the cost at one frame size.
type CostPoint struct {
	Frame       int     `json:"frame_bytes"`
	CPUusPerPkt float64 `json:"cpu_us_per_packet"`
	KneePerCore float64 `json:"knee_pps_per_core"`
	P99us       float64 `json:"p99_us_at_knee,omitempty"`
	// IngestUsPerPkt is what wirelog's syslog ingest costs per packet on
	// top of the path (the wirelog view's CPU less the path view's at the
	// same size), when the report measured it.
	IngestUsPerPkt float64 `json:"ingest_us_per_packet,omitempty"`
}

// DefaultCosts are built-in, conservative costs for a plan without a
// report: one core of a current x86 server, taken from the reference
// points in the netlab design notes (bare recvmmsg ≈ 2.5 µs of kernel
// work per packet; conntrack+NAT +1.1–1.5 µs on long-lived flows; ≈15–18
// ns per kube-proxy service on new flows), rounded up. AF_XDP and DPDK are
// estimates, not measurements. Plans label them as such.
func DefaultCosts(flow string, services int) []PathCost {
	direct := 3.0
	kube := 4.5
	if flow == FlowNew {
		kube = 8.0 + 0.018*float64(services)
	}
	mk := func(path string, us, perByte float64, why string) PathCost {
		pc := PathCost{Path: path, Source: "built-in default (not measured here): " + why}
		for _, f := range []int{64, 1518} {
			c := us + perByte*float64(f)
			pc.Points = append(pc.Points, CostPoint{Frame: f, CPUusPerPkt: c, KneePerCore: planHeadroom * 1e6 / c})
		}
		return pc
	}
	return []PathCost{
		mk(PathKubeProxy, kube, 0.0005, fmt.Sprintf("kube-proxy iptables, %s flows, %d services", flow, services)),
		mk(PathDirect, direct, 0.0005, "kernel UDP via recvmmsg on a VF"),
		mk(PathAFXDP, 1.2, 0.0003, "AF_XDP copy mode, estimate"),
		mk(PathDPDK, 0.3, 0.0002, "DPDK poll-mode driver, estimate"),
	}
}

// CostsFromReport builds each measured path's cost model from a report,
// for one flow pattern and (kube-proxy) service count (-1 = the largest
// measured).
func CostsFromReport(r *Report, flow string, services int) ([]PathCost, error) {
	if services < 0 {
		for _, s := range r.Config.Services {
			services = max(services, s)
		}
	}
	var out []PathCost
	for _, p := range r.Paths {
		if !p.Available {
			continue
		}
		pc := PathCost{Path: p.Name, Source: fmt.Sprintf("measured: report of %s on %s (%s)", r.Started.Format("2006-01-02 15:04"), r.Host.CPUModel, p.Receiver)}
		match := func(s *Series) bool {
			if s.Path != p.Name || (s.Flow != flow && s.Path != PathDPDK) {
				return false
			}
			return s.Path != PathKubeProxy || (s.Services != nil && *s.Services == services)
		}
		for i := range r.Series {
			s := &r.Series[i]
			// The plan sizes the path with its own cost (the path view);
			// the wirelog view gives the receiver's overhead on top.
			if !match(s) || !s.isPathView() {
				continue
			}
			cp := CostPoint{Frame: s.FrameBytes, CPUusPerPkt: s.Knee.CPUusPerPkt, KneePerCore: float64(s.Knee.OfferedPPS), P99us: s.Knee.P99us}
			if cp.CPUusPerPkt == 0 { // no rate passed: take the cost at the lowest rate
				cp.CPUusPerPkt = s.firstCPU()
			}
			// A knee the generator or the rate list capped is a lower
			// bound: extrapolate from CPU per packet instead, if higher.
			if !s.Knee.Reached && !s.Knee.BelowFirst && cp.CPUusPerPkt > 0 {
				cp.KneePerCore = math.Max(cp.KneePerCore, planHeadroom*1e6/cp.CPUusPerPkt)
			}
			for j := range r.Series {
				w := &r.Series[j]
				if w.View == ViewWirelog && match(w) && w.Size == s.Size {
					wc := w.Knee.CPUusPerPkt
					if wc == 0 {
						wc = w.firstCPU()
					}
					cp.IngestUsPerPkt = math.Max(0, wc-cp.CPUusPerPkt)
				}
			}
			pc.Points = append(pc.Points, cp)
		}
		if len(pc.Points) == 0 {
			continue
		}
		if p.Name == PathKubeProxy {
			pc.Source += fmt.Sprintf(", %d services, %s flows", services, flow)
		}
		sort.Slice(pc.Points, func(i, j int) bool { return pc.Points[i].Frame < pc.Points[j].Frame })
		out = append(out, pc)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("report has no measured series for flow %q (and %d kube-proxy services)", flow, services)
	}
	return out, nil
}

// CostUs is the CPU per packet at the knee or, when no rate passed, at the
// lowest step that received anything.
func (s *Series) CostUs() float64 {
	if s.Knee.CPUusPerPkt > 0 {
		return s.Knee.CPUusPerPkt
	}
	return s.firstCPU()
}

// firstCPU is the CPU per packet of the lowest step that received anything.
func (s *Series) firstCPU() float64 {
	for _, st := range s.Steps {
		if st.CPUusPerPkt > 0 {
			return st.CPUusPerPkt
		}
	}
	return 0
}

// at interpolates the cost model linearly in frame size (clamped at the
// measured ends).
func (pc *PathCost) at(frame int) CostPoint {
	pts := pc.Points
	if frame <= pts[0].Frame {
		return pts[0]
	}
	if frame >= pts[len(pts)-1].Frame {
		return pts[len(pts)-1]
	}
	for i := 1; i < len(pts); i++ {
		if frame <= pts[i].Frame {
			a, b := pts[i-1], pts[i]
			t := float64(frame-a.Frame) / float64(b.Frame-a.Frame)
			return CostPoint{Frame: frame,
				CPUusPerPkt:    a.CPUusPerPkt + t*(b.CPUusPerPkt-a.CPUusPerPkt),
				KneePerCore:    a.KneePerCore + t*(b.KneePerCore-a.KneePerCore),
				P99us:          a.P99us + t*(b.P99us-a.P99us),
				IngestUsPerPkt: a.IngestUsPerPkt + t*(b.IngestUsPerPkt-a.IngestUsPerPkt)}
		}
	}
	return pts[len(pts)-1]
}

// PlanRequest is `netlab plan`'s input.
type PlanRequest struct {
	NIC      string
	NICbps   float64
	Dist     Dist
	Rate     float64 // packets/s
	SLOP99   time.Duration
	MaxCores int
	Flow     string
	Services int
}

// Plan is the answer.
type Plan struct {
	NIC            string     `json:"nic"`
	Sizes          string     `json:"sizes"`
	MeanFrame      float64    `json:"mean_frame_bytes"`
	LineRatePPS    float64    `json:"line_rate_pps"`
	TargetPPS      float64    `json:"target_pps"`
	TargetGbps     float64    `json:"target_gbps_on_wire"`
	SLOP99us       float64    `json:"slo_p99_us"`
	MaxCores       int        `json:"max_cores"`
	Paths          []PathPlan `json:"paths"`
	Recommendation string     `json:"recommendation"`
	Warnings       []string   `json:"warnings,omitempty"`
}

// PathPlan is one path's verdict.
type PathPlan struct {
	Path        string  `json:"path"`
	Source      string  `json:"source"`
	CPUusPerPkt float64 `json:"cpu_us_per_packet"`
	// KneePerCore is where one core's curve bends: the highest rate one
	// receive core carries within the loss and latency objectives.
	KneePerCore float64 `json:"knee_pps_per_core"`
	CoresTarget int     `json:"cores_for_target"`
	CoresLine   int     `json:"cores_for_line_rate"`
	Reaches     bool    `json:"reaches_target"`
	P99us       float64 `json:"p99_us_at_knee,omitempty"`
	// IngestUsPerPkt is wirelog's syslog ingest on top of the path, and
	// IngestCores the receive cores the target needs with it included
	// (when the report measured the wirelog view on this path).
	IngestUsPerPkt float64 `json:"ingest_us_per_packet,omitempty"`
	IngestCores    int     `json:"cores_for_target_with_ingest,omitempty"`
	Note           string  `json:"note,omitempty"`
}

// MakePlan answers: which path carries the target, with how many cores,
// and where each path's knee lies relative to the NIC's line rate.
func MakePlan(req PlanRequest, costs []PathCost, reportSLO float64) Plan {
	if req.MaxCores <= 0 {
		req.MaxCores = defaultMaxCore
	}
	mean := req.Dist.MeanWireBytes()
	line := req.NICbps / (mean * 8)
	p := Plan{NIC: req.NIC, Sizes: req.Dist.String(), MeanFrame: mean - wireOverhead, LineRatePPS: line,
		TargetPPS: req.Rate, TargetGbps: req.Rate * mean * 8 / 1e9, SLOP99us: float64(req.SLOP99) / 1e3, MaxCores: req.MaxCores}
	if req.Rate > line {
		p.Warnings = append(p.Warnings, fmt.Sprintf("the target %s pps is above the %s line rate of %s pps at this size mix: no path reaches it on one port",
			short(req.Rate), req.NIC, short(line)))
	}
	if reportSLO > 0 && reportSLO > p.SLOP99us {
		p.Warnings = append(p.Warnings, fmt.Sprintf("the report's knees were measured against p99 < %.0f µs, looser than --slo-p99 %.0f µs: re-run `netlab run --slo-p99 %v`",
			reportSLO, p.SLOP99us, req.SLOP99))
	}
	var best *PathPlan
	for _, pc := range costs {
		pp := PathPlan{Path: pc.Path, Source: pc.Source}
		var cost, invKnee, p99, ingest float64
		for _, s := range req.Dist {
			cp := pc.at(s.Frame)
			cost += s.Share * cp.CPUusPerPkt
			ingest += s.Share * cp.IngestUsPerPkt
			p99 = math.Max(p99, cp.P99us)
			if cp.KneePerCore > 0 {
				invKnee += s.Share / cp.KneePerCore
			} else {
				invKnee = math.Inf(1)
			}
		}
		pp.CPUusPerPkt, pp.P99us, pp.IngestUsPerPkt = cost, p99, ingest

		if invKnee > 0 && !math.IsInf(invKnee, 1) {
			pp.KneePerCore = 1 / invKnee
			pp.CoresTarget = int(math.Ceil(req.Rate / pp.KneePerCore))
			pp.CoresLine = int(math.Ceil(line / pp.KneePerCore))
			pp.Reaches = req.Rate <= line && pp.CoresTarget <= req.MaxCores
			if ingest > 0 && cost > 0 {
				// A core that also runs wirelog's ingest carries the
				// path's knee scaled by the share of its time the path gets.
				pp.IngestCores = int(math.Ceil(req.Rate / (pp.KneePerCore * cost / (cost + ingest))))
			}
			if pp.CoresTarget > req.MaxCores {
				pp.Note = fmt.Sprintf("needs %d cores, more than --max-cores %d", pp.CoresTarget, req.MaxCores)
			}
		} else {
			pp.Note = "no measured rate met the objectives on this path"
		}
		if pc.Path == PathKubeProxy && pp.CoresTarget > 1 {
			pp.Note = strings.TrimPrefix(pp.Note+"; conntrack and NAT locks scale sub-linearly across cores: treat this as a lower bound", "; ")
		}
		p.Paths = append(p.Paths, pp)
	}
	// The recommendation is the least invasive path that reaches the
	// target (kube-proxy, then a VF, then AF_XDP, then DPDK): bypassing
	// the kernel costs operations work, so it has to be needed.
	var fewest *PathPlan
	for _, name := range AllPaths {
		for i := range p.Paths {
			pp := &p.Paths[i]
			if pp.Path != name || !pp.Reaches {
				continue
			}
			if best == nil {
				best = pp
			}
			if fewest == nil || pp.CoresTarget < fewest.CoresTarget {
				fewest = pp
			}
		}
	}
	if best == nil {
		p.Recommendation = fmt.Sprintf("no path reaches %s pps within %d cores", short(req.Rate), req.MaxCores)
		return p
	}
	p.Recommendation = fmt.Sprintf("%s reaches %s pps with %d receive core(s) (%.2f µs/packet, one core's knee at %s pps)",
		best.Path, short(req.Rate), best.CoresTarget, best.CPUusPerPkt, short(best.KneePerCore))
	if fewest != best && fewest.CoresTarget < best.CoresTarget {
		p.Recommendation += fmt.Sprintf("; %s would need %d", fewest.Path, fewest.CoresTarget)
	}
	return p
}

// WriteText prints the plan as a table.
func (p *Plan) WriteText(w io.Writer) {
	fmt.Fprintf(w, "NIC %s, sizes %s: mean frame %.0f B, line rate %s pps (%s Gb/s on the wire at the target)\n",
		p.NIC, p.Sizes, p.MeanFrame, short(p.LineRatePPS), strconv.FormatFloat(p.TargetGbps, 'f', 2, 64))
	fmt.Fprintf(w, "target %s pps (%.1f%% of line rate), SLO p99 < %.0f µs, at most %d cores\n\n",
		short(p.TargetPPS), 100*p.TargetPPS/p.LineRatePPS, p.SLOP99us, p.MaxCores)
	fmt.Fprintf(w, "%-11s %9s %12s %12s %14s %8s  %s\n", "path", "µs/pkt", "knee/core", "cores@target", "cores@linerate", "reaches", "source")
	for _, pp := range p.Paths {
		reach := "no"
		if pp.Reaches {
			reach = "yes"
		}
		fmt.Fprintf(w, "%-11s %9.2f %12s %12s %14s %8s  %s\n", pp.Path, pp.CPUusPerPkt, short(pp.KneePerCore),
			intOrDash(pp.CoresTarget), intOrDash(pp.CoresLine), reach, pp.Source)
		if pp.Note != "" {
			fmt.Fprintf(w, "%-11s %s\n", "", pp.Note)
		}
		if pp.IngestUsPerPkt > 0 {
			fmt.Fprintf(w, "%-11s wirelog's syslog ingest adds %.2f µs/packet on top: %d core(s) at the target with it\n", "", pp.IngestUsPerPkt, pp.IngestCores)
		}
	}
	fmt.Fprintf(w, "\n→ %s\n", p.Recommendation)
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

func intOrDash(n int) string {
	if n <= 0 {
		return "–"
	}
	return strconv.Itoa(n)
}

// WriteJSON writes the plan as JSON.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// WriteHTML writes the plan with a plot of the cores each path needs as
// the rate rises to line rate, the target marked.
func (p *Plan) WriteHTML(path string) error {
	var lines []plotLine
	maxCores := 0
	for _, pp := range p.Paths {
		if pp.KneePerCore <= 0 {
			continue
		}
		var pts []point
		for i := 0; i <= 40; i++ {
			r := p.LineRatePPS * float64(i) / 40
			c := math.Ceil(r / pp.KneePerCore)
			pts = append(pts, point{r, c})
			maxCores = max(maxCores, int(c))
		}
		l := plotLine{Name: pp.Path, Pts: pts}
		if pp.CoresTarget > 0 {
			l.Mark = &point{p.TargetPPS, float64(pp.CoresTarget)}
		}
		lines = append(lines, l)
	}
	lines = append(lines, plotLine{Name: "target", Pts: []point{{p.TargetPPS, 0}, {p.TargetPPS, float64(max(maxCores, 1))}}, Dash: true})
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>wirelog netlab plan</title><style>%s</style></head><body>\n", pageStyle)
	fmt.Fprintf(&b, "<h1>Capacity plan: %s, %s pps</h1><p class=note>sizes %s · mean frame %.0f B · line rate %s pps · SLO p99 %.0f µs</p>\n",
		html.EscapeString(p.NIC), short(p.TargetPPS), html.EscapeString(p.Sizes), p.MeanFrame, short(p.LineRatePPS), p.SLOP99us)
	fmt.Fprintf(&b, "<p><b>%s</b></p>\n", html.EscapeString(p.Recommendation))
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "<p class=bad>%s</p>\n", html.EscapeString(w))
	}
	b.WriteString("<table><tr><th class=l>path</th><th>µs/packet</th><th>knee per core (pps)</th><th>cores at target</th><th>cores at line rate</th><th>+ wirelog ingest µs/packet</th><th>cores at target with ingest</th><th class=l>reaches</th><th class=l>source</th></tr>\n")
	for _, pp := range p.Paths {
		fmt.Fprintf(&b, "<tr><td class=l>%s</td><td>%.2f</td><td>%s</td><td>%s</td><td>%s</td><td>%.2f</td><td>%s</td><td class=l>%v</td><td class=l>%s</td></tr>\n",
			pp.Path, pp.CPUusPerPkt, short(pp.KneePerCore), intOrDash(pp.CoresTarget), intOrDash(pp.CoresLine), pp.IngestUsPerPkt, intOrDash(pp.IngestCores), pp.Reaches, html.EscapeString(pp.Source))
	}
	b.WriteString("</table>\n")
	b.WriteString(svgChart("Receive cores needed as the rate rises to line rate", "packets/s", "cores", lines, false))
	b.WriteString("</body></html>\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write --html %s: %w", path, err)
	}
	return nil
}
