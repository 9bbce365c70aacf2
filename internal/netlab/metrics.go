package netlab

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricsFile is the report's knees in the Prometheus text format, written
// beside report.json so node_exporter's textfile collector (or any static
// file server Prometheus scrapes) puts the knee per path on a dashboard.
const MetricsFile = "netlab.prom"

// WriteMetrics writes the knee, cost and latency of every series to path
// in the Prometheus text format (atomically, as the textfile collector
// wants), labelled by path, view, payload size, flow and services.
func (r *Report) WriteMetrics(path string) error {
	labels := []string{"path", "view", "size", "flow", "services", "bound_by"}
	knee := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wirelog_netlab_knee_pps",
		Help: "Highest offered rate (packets/s) at which the series passed every objective in the last netlab run."}, labels)
	reached := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wirelog_netlab_knee_reached",
		Help: "1 when a higher offered rate failed (the knee lies just above wirelog_netlab_knee_pps), 0 when the knee is at or above it."}, labels)
	cost := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wirelog_netlab_cpu_us_per_packet",
		Help: "Receiver CPU per packet (kernel receive work included) at the knee, microseconds."}, labels)
	p99 := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wirelog_netlab_knee_latency_p99_us",
		Help: "Latency p99 at the knee, microseconds."}, labels)
	started := prometheus.NewGauge(prometheus.GaugeOpts{Name: "wirelog_netlab_run_start_timestamp_seconds",
		Help: "When the netlab run these knees come from started."})
	reg := prometheus.NewRegistry()
	reg.MustRegister(knee, reached, cost, p99, started)
	started.Set(float64(r.Started.Unix()))
	for i := range r.Series {
		s := &r.Series[i]
		view := s.View
		if view == "" {
			view = ViewPath
		}
		svc := ""
		if s.Services != nil {
			svc = strconv.Itoa(*s.Services)
		}
		l := prometheus.Labels{"path": s.Path, "view": view, "size": strconv.Itoa(s.Size), "flow": s.Flow, "services": svc, "bound_by": s.Knee.BoundBy}
		knee.With(l).Set(float64(s.Knee.OfferedPPS))
		r := 0.0
		if s.Knee.Reached {
			r = 1
		}
		reached.With(l).Set(r)
		cost.With(l).Set(s.CostUs())
		p99.With(l).Set(s.Knee.P99us)
	}
	if err := prometheus.WriteToTextfile(path, reg); err != nil {
		return fmt.Errorf("write netlab metrics %s: %w", path, err)
	}
	return nil
}
