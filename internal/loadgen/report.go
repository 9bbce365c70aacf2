package loadgen

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is the outcome of a run. MB are 10^6 bytes. The JSON form (with
// --json) is a stable contract for scripts and BENCHMARKS.md.
type Report struct {
	RunID  string `json:"run_id"`
	Target string `json:"target"`
	// DurationS runs from the first request to the last answer.
	DurationS float64 `json:"duration_s"`
	// TargetRate is the offered rate in events/s (0: as fast as possible).
	TargetRate float64 `json:"target_rate"`
	EventsSent int64   `json:"events_sent"`
	// EventsAcked counts events a 2xx answer accepted.
	EventsAcked int64 `json:"events_acked"`
	// EventsRejected counts events a 2xx answer refused one by one.
	EventsRejected int64 `json:"events_rejected"`
	Requests       int64 `json:"requests"`
	// EventsPerSecond is acknowledged events per second of the run.
	EventsPerSecond float64 `json:"events_per_second"`
	// MBPerSecond is acknowledged event JSON (uncompressed) per second.
	MBPerSecond float64 `json:"mb_per_second"`
	// WireMBPerSecond is request bodies as sent (compressed) per second.
	WireMBPerSecond float64 `json:"wire_mb_per_second"`
	AvgEventBytes   float64 `json:"avg_event_bytes"`
	// Latency is from sending a request to reading its 2xx answer.
	Latency LatencyMs `json:"latency_ms"`
	// Errors counts failed requests by HTTP status ("429", "503", …) or
	// "transport" (connection refused or reset, timeout).
	Errors map[string]int64 `json:"errors"`
	// Interrupted is true when the caller cancelled the run (SIGINT).
	Interrupted bool `json:"interrupted"`
}

// LatencyMs holds ack latency percentiles in milliseconds.
type LatencyMs struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// WriteText writes the human-readable report.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	state := ""
	if r.Interrupted {
		state = ", interrupted"
	}
	fmt.Fprintf(&b, "wirelog loadgen: %.1f s against %s (run %s%s)\n", r.DurationS, r.Target, r.RunID, state)
	fmt.Fprintf(&b, "  events       sent %s  acked %s  rejected %s  in %s requests\n",
		commas(r.EventsSent), commas(r.EventsAcked), commas(r.EventsRejected), commas(r.Requests))
	fmt.Fprintf(&b, "  throughput   %s events/s acked  %.1f MB/s (%.1f MB/s on the wire)  avg event %.0f B\n",
		commas(int64(r.EventsPerSecond+0.5)), r.MBPerSecond, r.WireMBPerSecond, r.AvgEventBytes)
	fmt.Fprintf(&b, "  ack latency  p50 %.2f ms  p99 %.2f ms  p999 %.2f ms  max %.2f ms\n",
		r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Latency.Max)
	b.WriteString("  errors       ")
	if len(r.Errors) == 0 {
		b.WriteString("none")
	}
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b.WriteString("  ")
		}
		fmt.Fprintf(&b, "%s: %s", k, commas(r.Errors[k]))
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fmtMs(d time.Duration) string { return strconv.FormatFloat(ms(d), 'f', 2, 64) }

// commas formats n with thousands separators: 1234567 → "1,234,567".
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var b []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	if neg {
		return "-" + string(b)
	}
	return string(b)
}
