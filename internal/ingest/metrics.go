package ingest

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirelog/wirelog/internal/promset"
	"github.com/wirelog/wirelog/internal/telemetry"
)

type metrics struct {
	requests     *prometheus.CounterVec
	otlpRequests *prometheus.CounterVec
	events       *prometheus.CounterVec
	pushback     *prometheus.CounterVec
	bytes        prometheus.Counter
	authFailures prometheus.Counter
	rateLimited  *prometheus.CounterVec
	duration     prometheus.Histogram
	tooLarge     prometheus.Counter
	budgetInUse  prometheus.GaugeFunc
	apiRequests  *prometheus.CounterVec
	apiRejects   *prometheus.CounterVec

	// The children every request touches, resolved once: a label lookup
	// hashes its values under the vector's lock each time.
	accepted, rejected, requestsAccepted prometheus.Counter
}

func newMetrics() metrics {
	m := metrics{
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
		tooLarge: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_ingest_too_large_total",
			Help: "Requests refused with 413: over a body, record-count, encoded-size or decompression-ratio limit.",
		}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_ingest_api_requests_total",
			Help: "Requests to the shipper-compatible endpoints (api=elasticsearch: the bulk API; api=loki: the push API) by response status code.",
		}, []string{"api", "code"}),
		apiRejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_ingest_api_rejected_events_total",
			Help: "Entries the shipper-compatible endpoints rejected, by api and reason; also counted in wirelog_ingest_events_total{result=\"rejected\"}.",
		}, []string{"api", "reason"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wirelog_ingest_http_request_duration_seconds",
			Help:    "Time from request start to answer, durability wait included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
			// Also a native histogram (scraped as protobuf by a Prometheus with
			// native histograms on): finer quantiles at a fraction of the series.
			NativeHistogramBucketFactor:     telemetry.NativeBucketFactor,
			NativeHistogramMaxBucketNumber:  telemetry.NativeMaxBuckets,
			NativeHistogramMinResetDuration: telemetry.NativeMinReset,
		}),
	}
	m.accepted = m.events.WithLabelValues("accepted")
	m.rejected = m.events.WithLabelValues("rejected")
	m.requestsAccepted = m.requests.WithLabelValues("202")
	return m
}

// request counts a POST /api/v1/logs answered with code.
func (m *metrics) request(code int) {
	if code == 202 {
		m.requestsAccepted.Inc()
		return
	}
	m.requests.WithLabelValues(strconv.Itoa(code)).Inc()
}

// set lists every metric once, for Handler.Collector.
func (m *metrics) set() promset.Set {
	return promset.Set{m.requests, m.otlpRequests, m.events, m.pushback, m.bytes, m.authFailures, m.rateLimited, m.duration, m.tooLarge, m.budgetInUse, m.apiRequests, m.apiRejects}
}
