package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// ExemplarLabel is the exemplar label holding the trace id, the name
// Grafana and Prometheus expect.
const ExemplarLabel = "trace_id"

// Observe observes v into h; when ctx carries a sampled span, with its
// trace id as the exemplar (shown in the OpenMetrics exposition and, in
// Grafana, as a link to the trace).
func Observe(ctx context.Context, h prometheus.Observer, v float64) {
	if Enabled() {
		if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
			ObserveExemplar(h, v, prometheus.Labels{ExemplarLabel: sc.TraceID().String()})
			return
		}
	}
	h.Observe(v)
}

// ObserveExemplar observes v into h with the exemplar labels l (a Batch's
// Exemplar); nil l observes v alone.
func ObserveExemplar(h prometheus.Observer, v float64, l prometheus.Labels) {
	if eo, ok := h.(prometheus.ExemplarObserver); ok && l != nil {
		eo.ObserveWithExemplar(v, l)
		return
	}
	h.Observe(v)
}

// Native histogram settings of the latency histograms that carry exemplars
// (ack latency, batch store duration). The per-record freshness histogram
// stays classic only: it is observed once per stored record, where the
// native histogram's bucket lookup would cost a measurable share of the
// processor.
const (
	NativeBucketFactor = 1.1       // ~5% relative error on quantiles
	NativeMaxBuckets   = 160       // beyond this, resolution is halved
	NativeMinReset     = time.Hour // lower bound between bucket resets
)
