package netlab

import (
	"fmt"
	"html"
	"math"
	"os"
	"sort"
	"strings"
)

// point is one (x, y) of a plotted line.
type point struct{ X, Y float64 }

// plotLine is one series of a chart; Mark, when set, is drawn as a ring
// (the knee).
type plotLine struct {
	Name string
	Pts  []point
	Mark *point
	Dash bool
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"}

// svgChart draws a line chart as inline SVG: no scripts, no external
// assets, so the page renders the same from a file or an attachment.
// diag draws y = x (delivered = offered).
func svgChart(title, xLabel, yLabel string, lines []plotLine, diag bool) string {
	const w, h, ml, mr, mt, mb = 760.0, 380.0, 70.0, 270.0, 30.0, 50.0
	pw, ph := w-ml-mr, h-mt-mb
	var maxX, maxY float64
	for _, l := range lines {
		for _, p := range l.Pts {
			maxX, maxY = math.Max(maxX, p.X), math.Max(maxY, p.Y)
		}
	}
	if diag {
		maxY = math.Max(maxY, maxX)
	}
	maxX, maxY = niceCeil(maxX), niceCeil(maxY)
	sx := func(x float64) float64 { return ml + x/maxX*pw }
	sy := func(y float64) float64 { return mt + ph - y/maxY*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`, w, h, w, h, html.EscapeString(title))
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fff"/><text x="%.0f" y="18" font-size="14" font-weight="bold">%s</text>`, ml, html.EscapeString(title))
	for i := 0; i <= 5; i++ {
		x, y := maxX*float64(i)/5, maxY*float64(i)/5
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`, ml, sy(y), ml+pw, sy(y))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="end">%s</text>`, ml-4, sy(y)+4, short(y))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle">%s</text>`, sx(x), mt+ph+16, short(x))
	}
	fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`, ml, mt, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12" text-anchor="middle">%s</text>`, ml+pw/2, h-8, html.EscapeString(xLabel))
	fmt.Fprintf(&b, `<text x="14" y="%.1f" font-size="12" text-anchor="middle" transform="rotate(-90 14 %.1f)">%s</text>`, mt+ph/2, mt+ph/2, html.EscapeString(yLabel))
	if diag {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" stroke-dasharray="4 4"/>`, sx(0), sy(0), sx(math.Min(maxX, maxY)), sy(math.Min(maxX, maxY)))
	}
	for i, l := range lines {
		c := palette[i%len(palette)]
		var pts []string
		for _, p := range l.Pts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx(p.X), sy(p.Y)))
		}
		dash := ""
		if l.Dash {
			dash = ` stroke-dasharray="6 3"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`, c, dash, strings.Join(pts, " "))
		for _, p := range l.Pts {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>`, sx(p.X), sy(p.Y), c)
		}
		if l.Mark != nil {
			fmt.Fprintf(&b, `<circle class="knee" cx="%.1f" cy="%.1f" r="7" fill="none" stroke="%s" stroke-width="2"><title>knee: %s</title></circle>`,
				sx(l.Mark.X), sy(l.Mark.Y), c, short(l.Mark.X))
		}
		ly := mt + 14 + float64(i)*16
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="%s" stroke-width="2"%s/><text x="%.0f" y="%.1f" font-size="11">%s</text>`,
			ml+pw+10, ly-4, ml+pw+30, ly-4, c, dash, ml+pw+34, ly, html.EscapeString(l.Name))
	}
	if anyMark(lines) {
		ly := mt + 14 + float64(len(lines))*16 + 8
		fmt.Fprintf(&b, `<circle cx="%.0f" cy="%.1f" r="6" fill="none" stroke="#333" stroke-width="2"/><text x="%.0f" y="%.1f" font-size="11">knee</text>`, ml+pw+20, ly-4, ml+pw+34, ly)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

func anyMark(ls []plotLine) bool {
	for _, l := range ls {
		if l.Mark != nil {
			return true
		}
	}
	return false
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// short formats a number with k/M suffixes.
func short(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return trimZero(fmt.Sprintf("%.2f", v/1e6)) + "M"
	case a >= 1e3:
		return trimZero(fmt.Sprintf("%.1f", v/1e3)) + "k"
	case a >= 10 || a == 0:
		return fmt.Sprintf("%.0f", v)
	default:
		return trimZero(fmt.Sprintf("%.2f", v))
	}
}

func trimZero(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

const pageStyle = `body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.bad{color:#b00}.note{color:#555;font-size:13px}svg{margin:6px 0;display:block}`

// WriteHTML writes the report as one self-contained HTML page: tables and
// inline SVG plots, no scripts or external assets.
func (r *Report) WriteHTML(path string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>wirelog netlab report</title><style>%s</style></head><body>\n", pageStyle)
	fmt.Fprintf(&b, "<h1>wirelog netlab — where the kernel path stops scaling</h1>\n<p class=note>%s · %s · %d CPUs · kernel %s · started %s · %.0f s · steer=%s · SLO p99 %.0f µs · loss objective %.2g%%</p>\n",
		html.EscapeString(r.Host.Hostname), html.EscapeString(r.Host.CPUModel), r.Host.CPUs, html.EscapeString(r.Host.Kernel),
		r.Started.Format("2006-01-02 15:04 MST"), r.Seconds, html.EscapeString(r.Config.Steer), r.Config.SLOP99us, r.Config.LossObjective*100)
	if r.Interrupted != "" {
		fmt.Fprintf(&b, "<p class=bad>Run interrupted (%s): the report holds the steps measured before.</p>\n", html.EscapeString(r.Interrupted))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "<p class=note>%s</p>\n", html.EscapeString(n))
	}
	b.WriteString("<h2>Paths</h2><table><tr><th class=l>path</th><th class=l>status</th><th class=l>receiver</th><th class=l>what it is</th></tr>\n")
	for _, p := range r.Paths {
		status := "measured"
		if !p.Available {
			status = "<span class=bad>unavailable: " + html.EscapeString(p.Reason) + "</span>"
		}
		fmt.Fprintf(&b, "<tr><td class=l>%s</td><td class=l>%s</td><td class=l>%s</td><td class=l>%s</td></tr>\n",
			html.EscapeString(p.Name), status, html.EscapeString(p.receivers()), html.EscapeString(p.Description))
	}
	b.WriteString("</table>\n<h2>Generator ceiling</h2><p class=note>The generator alone, unpaced into a black hole (a veth whose peer is down) on its own core. A step whose generator fell short of the offered rate is marked sender-limited and never counts against a path.</p><table><tr><th>payload B</th><th class=l>flow</th><th>packets/s</th></tr>\n")
	for _, c := range r.Generator {
		fmt.Fprintf(&b, "<tr><td>%d</td><td class=l>%s</td><td>%s</td></tr>\n", c.Size, c.Flow, short(c.PPS))
	}
	fmt.Fprintf(&b, "</table>\n<h2>Knees</h2><p class=note>A knee is the highest offered rate up to which every step met every objective: loss &lt; %.2f%%, CPU &lt; %.0f%% of the receive core, and p99 latency below the view's objective — %s µs at the socket or ring for the <b>path</b> view (bare receivers), %s µs to the log for the <b>wirelog</b> view (its UDP batching included). <i>bound by</i> names the objective the first failing step missed; ≥ means no offered rate failed.</p>",
		r.Config.LossObjective*100, r.Config.CPUObjective*100, short(r.Config.SLOP99us), short(r.Config.IngestSLOP99us))
	b.WriteString("<table><tr><th class=l>series</th><th class=l>knee</th><th class=l>bound by</th><th class=l>per objective</th><th>CPU µs/packet at knee</th><th>p99 µs at knee</th></tr>\n")
	for _, s := range r.Series {
		var per []string
		for _, o := range s.Knee.PerObjective {
			v := short(float64(o.OfferedPPS))
			switch {
			case o.BelowFirst:
				v = "&lt; first step"
			case !o.Reached:
				v = "≥ " + v
			}
			per = append(per, o.Objective+" "+v)
		}
		fmt.Fprintf(&b, "<tr><td class=l>%s</td><td class=l>%s</td><td class=l><b>%s</b></td><td class=l>%s</td><td>%.2f</td><td>%.0f</td></tr>\n",
			html.EscapeString(s.Label()), html.EscapeString(s.Knee.String()), html.EscapeString(s.Knee.BoundBy), strings.Join(per, ", "), s.Knee.CPUusPerPkt, s.Knee.P99us)
	}
	b.WriteString("</table>\n")

	sizes := map[int]bool{}
	for _, s := range r.Series {
		sizes[s.Size] = true
	}
	var sorted []int
	for s := range sizes {
		sorted = append(sorted, s)
	}
	sort.Ints(sorted)
	for _, size := range sorted {
		var deliv, cpu []plotLine
		for _, s := range r.Series {
			if s.Size != size {
				continue
			}
			var d, c []point
			var mark, cmark *point
			for _, st := range s.Steps {
				d = append(d, point{float64(st.OfferedPPS), st.DeliveredPPS})
				c = append(c, point{float64(st.OfferedPPS), st.CPUusPerPkt})
				if st.OfferedPPS == s.Knee.OfferedPPS && st.Pass {
					mark = &point{float64(st.OfferedPPS), st.DeliveredPPS}
					cmark = &point{float64(st.OfferedPPS), st.CPUusPerPkt}
				}
			}
			name := strings.TrimSuffix(s.Label(), fmt.Sprintf(" %dB %s", s.Size, s.Flow)) + " " + s.Flow
			dash := s.Path == PathDPDK || s.View == ViewWirelog
			deliv = append(deliv, plotLine{Name: name, Pts: d, Mark: mark, Dash: dash})
			cpu = append(cpu, plotLine{Name: name, Pts: c, Mark: cmark, Dash: dash})
		}
		fmt.Fprintf(&b, "<h2>%d-byte payload (%d-byte frame)</h2>\n", size, frameBytes(size))
		b.WriteString(svgChart(fmt.Sprintf("Delivered vs offered, %d B", size), "offered packets/s", "delivered packets/s", deliv, true))
		b.WriteString(svgChart(fmt.Sprintf("Receive-core CPU per packet, %d B", size), "offered packets/s", "µs per packet", cpu, false))
	}

	b.WriteString("<h2>Every step</h2><table><tr><th class=l>series</th><th>offered</th><th>sent</th><th>delivered</th><th>loss %</th><th>p50 µs</th><th>p99 µs</th><th>of which: receive p99</th><th>batching p99</th><th>CPU µs/pkt</th><th>receiver</th><th>kernel rx</th><th>core busy</th><th>rcvbuf err</th><th>backlog drop</th><th>link drop</th><th class=l>verdict</th></tr>\n")
	for _, s := range r.Series {
		for _, st := range s.Steps {
			verdict := "pass"
			switch {
			case st.SenderLimited:
				verdict = "sender-limited"
			case !st.Pass:
				var why []string
				for _, f := range st.Failed {
					why = append(why, f.Objective+": "+f.String())
				}
				verdict = "<span class=bad>fail</span> " + html.EscapeString(strings.Join(why, "; "))
			}
			fmt.Fprintf(&b, "<tr><td class=l>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%.3f</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.0f%%</td><td>%d</td><td>%d</td><td>%d</td><td class=l>%s</td></tr>\n",
				html.EscapeString(s.Label()), short(float64(st.OfferedPPS)), short(st.SentPPS), short(st.DeliveredPPS), st.Loss*100,
				optUs(st.P50us), optUs(st.P99us), optUs(st.ReceiveP99us), optUs(st.BatchingP99us), st.CPUusPerPkt, st.ReceiverusPerPk, st.KernelRxusPerPkt, st.ReceiveCoreBusy*100,
				st.Kernel.UDPRcvbufErrors, st.Kernel.SoftnetDropped, st.Kernel.LinkDropped, verdict)
		}
	}
	b.WriteString("</table></body></html>\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func optUs(v *float64) string {
	if v == nil {
		return "–"
	}
	return short(*v)
}

// receivers names what received on the path in each view that ran.
func (p PathInfo) receivers() string {
	var r []string
	if p.Receiver != "" {
		r = append(r, "path view: "+p.Receiver)
	}
	if p.WirelogReceiver != "" {
		r = append(r, "wirelog view: "+p.WirelogReceiver)
	}
	return strings.Join(r, "; ")
}
