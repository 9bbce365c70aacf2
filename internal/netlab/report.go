package netlab

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"time"
)

// ReportVersion is bumped when report.json changes incompatibly. Version 2
// added views and per-objective knees; ReadReport still reads version 1 and
// recomputes its knees from its steps (which every version records).
const ReportVersion = 2

// Report is report.json: everything one `netlab run` measured.
type Report struct {
	Tool        string       `json:"tool"`
	Version     int          `json:"version"`
	Started     time.Time    `json:"started"`
	Seconds     float64      `json:"seconds"`
	Interrupted string       `json:"interrupted,omitempty"` // why the run stopped early, if it did
	Host        Host         `json:"host"`
	Config      ReportConfig `json:"config"`
	Generator   []Ceiling    `json:"generator_ceiling"`
	Paths       []PathInfo   `json:"paths"`
	Series      []Series     `json:"series"`
	Notes       []string     `json:"notes"`
}

// Host describes the machine the numbers belong to.
type Host struct {
	Hostname    string `json:"hostname"`
	CPUModel    string `json:"cpu_model"`
	CPUs        int    `json:"cpus"`
	Kernel      string `json:"kernel"`
	SenderCPU   int    `json:"sender_cpu"`
	ReceiverCPU int    `json:"receiver_cpu"`
}

// ReportConfig is the run's configuration as the report records it.
type ReportConfig struct {
	Sizes           []int    `json:"sizes"`
	Services        []int    `json:"services"`
	Rates           []int    `json:"rates"`
	Flows           []string `json:"flows"`
	DurationPerStep float64  `json:"duration_per_step_s"`
	SLOP99us        float64  `json:"slo_p99_us"`
	IngestSLOP99us  float64  `json:"ingest_slo_p99_us,omitempty"`
	LossObjective   float64  `json:"loss_objective"`
	CPUObjective    float64  `json:"cpu_objective,omitempty"`
	Steer           string   `json:"steer"`
	Views           []string `json:"views,omitempty"`
	// Receiver is what a version-1 report ran on the kernel paths
	// (syslog or bare); version 2 runs both as views.
	Receiver string `json:"receiver,omitempty"`
}

// Ceiling is the generator's own unpaced rate into a black hole (a dummy
// interface in the client namespace): no step can offer more than this.
type Ceiling struct {
	Size int     `json:"size"`
	Flow string  `json:"flow"`
	PPS  float64 `json:"pps"`
}

// PathInfo says whether a path ran and, if not, why.
type PathInfo struct {
	Name      string `json:"name"`
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
	Receiver  string `json:"receiver"` // the path view's bare receiver
	// WirelogReceiver is what the wirelog view ran on this path, when it ran.
	WirelogReceiver string `json:"wirelog_receiver,omitempty"`
	Description     string `json:"description"`
}

// Series is one path at one size, flow pattern (and service count) over
// the offered rates.
type Series struct {
	Path string `json:"path"`
	// View is ViewPath (a bare receiver: the path's own cost and latency)
	// or ViewWirelog (wirelog's syslog ingest on the path). Empty in
	// version-1 reports, whose kernel paths ran Config.Receiver.
	View       string `json:"view,omitempty"`
	Services   *int   `json:"services,omitempty"` // kube-proxy only
	Size       int    `json:"size"`               // UDP payload bytes
	FrameBytes int    `json:"frame_bytes"`        // Ethernet frame incl. FCS
	Flow       string `json:"flow"`
	Steps      []Step `json:"steps"`
	Knee       Knee   `json:"knee"`
}

// Label names the series in tables and plot legends.
func (s *Series) Label() string {
	l := fmt.Sprintf("%s %dB %s", s.Path, s.Size, s.Flow)
	if s.Services != nil {
		l = fmt.Sprintf("%s svc=%d %dB %s", s.Path, *s.Services, s.Size, s.Flow)
	}
	if s.View == ViewWirelog {
		l = "wirelog on " + l
	}
	return l
}

// isPathView says whether the series measures the path itself (a bare
// receiver), which is what knees compare and plans use.
func (s *Series) isPathView() bool { return s.View == "" || s.View == ViewPath }

// Step is one offered rate held for the step's duration.
type Step struct {
	OfferedPPS   int     `json:"offered_pps"`
	SentPPS      float64 `json:"sent_pps"`
	DeliveredPPS float64 `json:"delivered_pps"`
	Sent         uint64  `json:"sent"`
	Received     uint64  `json:"received"`
	Loss         float64 `json:"loss"`
	// Latency from the send timestamp in the payload to the receiver's
	// recvmmsg return; absent when the receiver cannot see payloads (dpdk).
	// In the wirelog view this is send → handed to the log (the whole
	// ingest path); ReceiveP99us and BatchingP99us split it.
	P50us *float64 `json:"latency_p50_us,omitempty"`
	P99us *float64 `json:"latency_p99_us,omitempty"`
	// ReceiveP99us (wirelog view): send → wirelog's receiver read the
	// datagram, i.e. the path as wirelog sees it. BatchingP99us: read →
	// handed to the log, i.e. the receiver's batching on top.
	ReceiveP99us  *float64 `json:"receive_p99_us,omitempty"`
	BatchingP99us *float64 `json:"batching_p99_us,omitempty"`
	// CPU time on the receive core per delivered packet, in µs: the
	// receiver's own time plus the kernel's receive work (NAPI threads and
	// softirq; see NETLAB.md for how each --steer mode attributes it).
	CPUusPerPkt      float64 `json:"cpu_us_per_packet"`
	ReceiverusPerPk  float64 `json:"receiver_us_per_packet"`
	KernelRxusPerPkt float64 `json:"kernel_rx_us_per_packet"`
	// ReceiveCoreBusy is the fraction of the receive core not idle during
	// the step, whoever used it (others' work on a shared machine too).
	ReceiveCoreBusy float64        `json:"receive_core_busy"`
	Kernel          KernelCounters `json:"kernel"`
	SenderLimited   bool           `json:"sender_limited"`
	Pass            bool           `json:"pass"`
	// Failed lists the objectives this step missed, with their figures.
	Failed []Failure `json:"failed,omitempty"`
}

// KernelCounters are the kernel's loss counters over one step.
type KernelCounters struct {
	UDPInDatagrams  uint64 `json:"udp_in_datagrams"`
	UDPRcvbufErrors uint64 `json:"udp_rcvbuf_errors"`
	UDPInErrors     uint64 `json:"udp_in_errors"`
	UDPNoPorts      uint64 `json:"udp_no_ports"`
	SoftnetDropped  uint64 `json:"softnet_dropped"`
	LinkDropped     uint64 `json:"link_dropped"`
	SenderErrors    uint64 `json:"sender_errors"`
}

// Objective names, in the order a verdict names them when several fail.
const (
	ObjectiveLoss    = "loss"
	ObjectiveLatency = "latency_p99"
	ObjectiveCPU     = "cpu"
)

// Objectives are what a step must meet to count below a knee.
type Objectives struct {
	Loss float64       // largest fraction of sent packets that may be lost
	P99  time.Duration // the view's latency objective (SLOP99 or IngestSLOP99)
	CPU  float64       // largest fraction of the receive core the path may use
}

// Failure is one objective a step missed, with the figure that missed it.
type Failure struct {
	OfferedPPS int    `json:"offered_pps"`
	Objective  string `json:"objective"`
	// Measured and Limit are a fraction for loss and cpu, µs for latency.
	Measured float64 `json:"measured"`
	Limit    float64 `json:"limit"`
}

func (f Failure) String() string {
	switch f.Objective {
	case ObjectiveLoss:
		return fmt.Sprintf("loss %.2f%% > %.2f%%", f.Measured*100, f.Limit*100)
	case ObjectiveLatency:
		return fmt.Sprintf("p99 %.0f µs > %.0f µs", f.Measured, f.Limit)
	default:
		return fmt.Sprintf("receive core %.0f%% used > %.0f%%", f.Measured*100, f.Limit*100)
	}
}

// Knee is where a series' curve bends: the highest offered rate up to which
// every step met every objective, and what bound it.
type Knee struct {
	// OfferedPPS is that rate; 0 only with BelowFirst (never a knee).
	OfferedPPS int `json:"offered_pps"`
	// Reached: a higher step failed, so the knee lies between OfferedPPS
	// and that step. Not reached: the knee is at or above OfferedPPS.
	Reached bool `json:"reached"`
	// BelowFirst: even the lowest offered rate failed; the knee is below it.
	BelowFirst bool `json:"below_first_step,omitempty"`
	// BoundBy is the objective that failed first (loss, latency_p99, cpu),
	// or, when no step failed, "sender" (the generator could not offer the
	// next rate) or "rates" (every offered rate passed: raise --rates).
	BoundBy string `json:"bound_by"`
	// FailedAt is the first failing step's figure for BoundBy.
	FailedAt *Failure `json:"failed_at,omitempty"`
	// PerObjective is the same walk for each objective alone, so a
	// latency-bound knee also says where loss would have bound it.
	PerObjective []ObjectiveKnee `json:"per_objective"`
	CPUusPerPkt  float64         `json:"cpu_us_per_packet"`
	P99us        float64         `json:"latency_p99_us"`
	// LimitedBy is the version-1 verdict, kept for readers of it:
	// "receiver" (a step failed), "sender" or "none".
	LimitedBy string `json:"limited_by"`
}

// ObjectiveKnee is one objective's knee.
type ObjectiveKnee struct {
	Objective  string  `json:"objective"`
	Limit      float64 `json:"limit"`
	OfferedPPS int     `json:"offered_pps"`
	Reached    bool    `json:"reached"`
	BelowFirst bool    `json:"below_first_step,omitempty"`
	BoundBy    string  `json:"bound_by"` // the objective itself, "sender" or "rates"
}

// String is the knee as a person reads it; it never says "0 pps".
func (k Knee) String() string {
	switch {
	case k.BelowFirst && k.FailedAt != nil:
		return fmt.Sprintf("< %s pps (the lowest offered rate failed: %s)", short(float64(k.FailedAt.OfferedPPS)), k.FailedAt)
	case k.Reached && k.FailedAt != nil:
		return fmt.Sprintf("%s pps (bound by %s: %s at %s pps)", short(float64(k.OfferedPPS)), k.BoundBy, k.FailedAt, short(float64(k.FailedAt.OfferedPPS)))
	case k.BoundBy == "sender" && k.OfferedPPS == 0:
		return "not measured (the generator could not offer the lowest rate)"
	case k.BoundBy == "sender":
		return fmt.Sprintf("≥ %s pps (not reached: the generator could not offer more)", short(float64(k.OfferedPPS)))
	default:
		return fmt.Sprintf("≥ %s pps (not reached: every offered rate met the objectives)", short(float64(k.OfferedPPS)))
	}
}

// failures lists the objectives st missed, in verdict order.
func (st *Step) failures(o Objectives) []Failure {
	var f []Failure
	if st.Loss >= o.Loss {
		f = append(f, Failure{st.OfferedPPS, ObjectiveLoss, st.Loss, o.Loss})
	}
	if lim := float64(o.P99) / 1e3; st.P99us != nil && *st.P99us >= lim {
		f = append(f, Failure{st.OfferedPPS, ObjectiveLatency, *st.P99us, lim})
	}
	if used := st.CPUusPerPkt * st.DeliveredPPS / 1e6; o.CPU > 0 && used > o.CPU {
		f = append(f, Failure{st.OfferedPPS, ObjectiveCPU, used, o.CPU})
	}
	return f
}

// computeKnee marks each step pass/fail and finds the series' knee: walk
// the steps in offered order and stop at the first that fails an objective
// (that objective bound the knee) or that the generator could not offer
// (the knee is at least the last passing rate). A noisy pass above a
// failure does not move the knee up: the curve already bent.
func (s *Series) computeKnee(o Objectives) {
	for i := range s.Steps {
		st := &s.Steps[i]
		st.Failed = st.failures(o)
		st.Pass = !st.SenderLimited && st.Sent > 0 && len(st.Failed) == 0
	}
	walk := func(fails func(*Step) *Failure) (pps int, bound string, at *Failure, cpu, p99 float64) {
		for i := range s.Steps {
			st := &s.Steps[i]
			if f := fails(st); f != nil {
				return pps, f.Objective, f, cpu, p99
			}
			if st.SenderLimited || st.Sent == 0 {
				return pps, "sender", nil, cpu, p99
			}
			pps, cpu = st.OfferedPPS, st.CPUusPerPkt
			if st.P99us != nil {
				p99 = *st.P99us
			}
		}
		return pps, "rates", nil, cpu, p99
	}
	k := Knee{}
	k.OfferedPPS, k.BoundBy, k.FailedAt, k.CPUusPerPkt, k.P99us = walk(func(st *Step) *Failure {
		if len(st.Failed) > 0 {
			return &st.Failed[0]
		}
		return nil
	})
	k.Reached = k.FailedAt != nil && k.OfferedPPS > 0
	k.BelowFirst = k.FailedAt != nil && k.OfferedPPS == 0
	switch {
	case k.FailedAt != nil:
		k.LimitedBy = "receiver"
	case k.BoundBy == "sender":
		k.LimitedBy = "sender"
	default:
		k.LimitedBy = "none"
	}
	limits := map[string]float64{ObjectiveLoss: o.Loss, ObjectiveLatency: float64(o.P99) / 1e3, ObjectiveCPU: o.CPU}
	for _, name := range []string{ObjectiveLoss, ObjectiveLatency, ObjectiveCPU} {
		if name == ObjectiveCPU && o.CPU <= 0 {
			continue
		}
		ok := ObjectiveKnee{Objective: name, Limit: limits[name]}
		var at *Failure
		ok.OfferedPPS, ok.BoundBy, at, _, _ = walk(func(st *Step) *Failure {
			for i := range st.Failed {
				if st.Failed[i].Objective == name {
					return &st.Failed[i]
				}
			}
			return nil
		})
		ok.Reached = at != nil && ok.OfferedPPS > 0
		ok.BelowFirst = at != nil && ok.OfferedPPS == 0
		k.PerObjective = append(k.PerObjective, ok)
	}
	s.Knee = k
}

func hostInfo(l *Lab) Host {
	h := Host{CPUs: runtime.NumCPU()}
	h.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	if l != nil {
		h.SenderCPU, h.ReceiverCPU = l.SenderCPU, l.ReceiverCPU
	}
	return h
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ReadReport reads a report.json written by `netlab run`.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report %s: %w", path, err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("report %s is not a netlab report.json: %w", path, err)
	}
	if r.Tool != "wirelog netlab" || r.Version < 1 || r.Version > ReportVersion {
		return nil, fmt.Errorf("report %s: tool %q version %d, want \"wirelog netlab\" version 1 to %d (re-run `wirelog netlab run`)",
			path, r.Tool, r.Version, ReportVersion)
	}
	if r.Version == 1 {
		r.upgradeV1()
	}
	return &r, nil
}

// upgradeV1 recomputes a version-1 report's knees with today's rules
// from the steps it recorded. Its series keep no view: a version-1 run
// measured each kernel path with one receiver (Config.Receiver says which).
func (r *Report) upgradeV1() {
	o := Objectives{Loss: r.Config.LossObjective, P99: time.Duration(r.Config.SLOP99us * 1e3)}
	if o.Loss <= 0 {
		o.Loss = DefaultLossObjective
	}
	for i := range r.Series {
		r.Series[i].computeKnee(o)
	}
}

// finite replaces NaN and ±Inf (which JSON cannot carry) by 0.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// frameBytes is the Ethernet frame of a UDP payload: 14 header + 20 IPv4
// + 8 UDP + payload + 4 FCS, at least the 64-byte minimum.
func frameBytes(payload int) int { return max(64, payload+46) }
