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

// ReportVersion is bumped when report.json changes incompatibly; plan
// refuses a report of another version.
const ReportVersion = 1

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
	LossObjective   float64  `json:"loss_objective"`
	Steer           string   `json:"steer"`
	Receiver        string   `json:"receiver"`
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
	Name        string `json:"name"`
	Available   bool   `json:"available"`
	Reason      string `json:"reason,omitempty"`
	Receiver    string `json:"receiver"`
	Description string `json:"description"`
}

// Series is one path at one size, flow pattern (and service count) over
// the offered rates.
type Series struct {
	Path       string `json:"path"`
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
	return l
}

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
	P50us *float64 `json:"latency_p50_us,omitempty"`
	P99us *float64 `json:"latency_p99_us,omitempty"`
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

// Knee is the highest offered rate meeting the loss and latency objectives.
type Knee struct {
	OfferedPPS  int     `json:"offered_pps"` // 0: no rate passed
	CPUusPerPkt float64 `json:"cpu_us_per_packet"`
	P99us       float64 `json:"latency_p99_us"`
	// LimitedBy is "receiver" (a higher rate failed), "sender" (the
	// generator could not offer more; the receiver's knee is higher) or
	// "none" (every rate passed: raise --rates).
	LimitedBy string `json:"limited_by"`
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

// computeKnee marks each step pass/fail and finds the series' knee.
func (s *Series) computeKnee(slo time.Duration, lossObjective float64) {
	s.Knee = Knee{LimitedBy: "none"}
	senderCapped := false
	for i := range s.Steps {
		st := &s.Steps[i]
		latOK := st.P99us == nil || *st.P99us < float64(slo)/1e3
		st.Pass = !st.SenderLimited && st.Sent > 0 && st.Loss < lossObjective && latOK
		switch {
		case st.Pass:
			if st.OfferedPPS > s.Knee.OfferedPPS {
				s.Knee.OfferedPPS = st.OfferedPPS
				s.Knee.CPUusPerPkt = st.CPUusPerPkt
				if st.P99us != nil {
					s.Knee.P99us = *st.P99us
				}
			}
		case st.SenderLimited && st.Loss < lossObjective && latOK:
			senderCapped = true
		default:
			s.Knee.LimitedBy = "receiver"
		}
	}
	if s.Knee.LimitedBy == "none" && senderCapped {
		s.Knee.LimitedBy = "sender"
	}
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
	if r.Tool != "wirelog netlab" || r.Version != ReportVersion {
		return nil, fmt.Errorf("report %s: tool %q version %d, want \"wirelog netlab\" version %d (re-run `wirelog netlab run`)",
			path, r.Tool, r.Version, ReportVersion)
	}
	return &r, nil
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
