package ingest

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests     *prometheus.CounterVec
	otlpRequests *prometheus.CounterVec
	events       *prometheus.CounterVec
	pushback     *prometheus.CounterVec
	bytes        prometheus.Counter
	authFailures prometheus.Counter
	rateLimited  *prometheus.CounterVec
	duration     prometheus.Histogram
}

func newMetrics() metrics {
	return metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_ingest_http_requests_total",
			Help: "POST /api/v1/logs requests by response status code.",
		}, []string{"code"}),
		otlpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_ingest_otlp_requests_total",
			Help: "POST /v1/logs (OTLP/HTTP) requests by response status code.",
		}, []string{"code"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_ingest_events_total",
			Help: "Events received over HTTP: accepted (durable, acknowledged) or rejected (bad line).",
		}, []string{"result"}),
		pushback: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_ingest_pushback_total",
			Help: "Requests refused with 429/503 because the log pushed back (backlog) or failed (unavailable).",
		}, []string{"reason"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_ingest_auth_failures_total",
			Help: "Requests refused with 401: missing or unknown bearer token.",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_ingest_rate_limited_total",
			Help: "Requests refused because the tenant was over its events/s or bytes/s limit.",
		}, []string{"tenant"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_ingest_received_bytes_total",
			Help: "Decompressed request body bytes received.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wirelog_ingest_http_request_duration_seconds",
			Help:    "Time from request start to answer, durability wait included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.otlpRequests.Describe(ch)
	m.events.Describe(ch)
	m.pushback.Describe(ch)
	m.bytes.Describe(ch)
	m.authFailures.Describe(ch)
	m.rateLimited.Describe(ch)
	m.duration.Describe(ch)
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.otlpRequests.Collect(ch)
	m.events.Collect(ch)
	m.pushback.Collect(ch)
	m.bytes.Collect(ch)
	m.authFailures.Collect(ch)
	m.rateLimited.Collect(ch)
	m.duration.Collect(ch)
}
