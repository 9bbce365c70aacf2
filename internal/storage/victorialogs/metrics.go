package victorialogs

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirelog/wirelog/internal/promset"
)

type metrics struct {
	rowsSent      prometheus.Counter
	bytesSent     prometheus.Counter
	bytesWire     prometheus.Counter
	insertSeconds prometheus.Histogram
	insertErrors  *prometheus.CounterVec
	rowsDurable   prometheus.Counter
	rowsLost      prometheus.Counter
	rowsPending   prometheus.Gauge
	verifyErrors  prometheus.Counter
	querySeconds  *prometheus.HistogramVec
	queryErrors   *prometheus.CounterVec
	partial       *prometheus.CounterVec
	dupsDropped   *prometheus.CounterVec
	dupsMarked    prometheus.Counter
	rowsRefused   *prometheus.CounterVec
	deadLetters   prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		rowsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_vl_rows_sent_total", Help: "Rows VictoriaLogs answered 2xx for (not yet durable; see wirelog_vl_rows_durable_total).",
		}),
		bytesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_vl_bytes_sent_total", Help: "JSON-lines bytes of rows sent, before compression.",
		}),
		bytesWire: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_vl_bytes_wire_total", Help: "Request body bytes sent to VictoriaLogs (zstd), retries included.",
		}),
		insertSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "wirelog_vl_insert_seconds", Help: "Time of one /insert/jsonline request that succeeded.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		insertErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_vl_insert_errors_total", Help: "Failed insert attempts by kind: network, status_5xx, status_4xx, backpressure.",
		}, []string{"kind"}),
		rowsDurable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_vl_rows_durable_total", Help: "Sent rows verified present after the flush window; their offsets may be committed.",
		}),
		rowsLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_vl_rows_lost_total", Help: "Sent rows found missing at verification (a node lost unflushed rows); they are replayed from Kafka.",
		}),
		rowsPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wirelog_vl_rows_pending", Help: "Rows sent but not yet verified durable (their offsets are not committed).",
		}),
		verifyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_vl_verify_errors_total", Help: "Verification queries that failed (a storage node down); the rows wait.",
		}),
		querySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wirelog_vl_query_seconds", Help: "Time of API queries against VictoriaLogs, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"kind"}),
		queryErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_vl_query_errors_total", Help: "API queries VictoriaLogs failed, by kind.",
		}, []string{"kind"}),
		partial: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_vl_partial_answers_total", Help: "API answers marked partial because a storage node was unreachable, by kind.",
		}, []string{"kind"}),
		dupsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_vl_duplicates_dropped_total", Help: "Rows with an id already returned, dropped from search and tail answers (replays after a failure).",
		}, []string{"kind"}),
		dupsMarked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_vl_duplicates_marked_total",
			Help: "Ids found stored more than once with no replay mark at verification (an insert that reached VictoriaLogs after a takeover, a front node's re-send), then brought into a replay zone so answers count them once.",
		}),
		rowsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_vl_rows_refused_total", Help: "Rows Write refused because VictoriaLogs would skip them silently, by reason: line_too_long (the processor dead-letters them), time_outside_retention (written to the dead letters at once).",
		}, []string{"reason"}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_vl_dead_letters_total", Help: "Records written to the dead-letter account (--store-dead-letters) because the store refused them.",
		}),
	}
}

func (m *metrics) set() promset.Set {
	return promset.Set{m.rowsSent, m.bytesSent, m.bytesWire, m.insertSeconds, m.insertErrors, m.rowsDurable,
		m.rowsLost, m.rowsPending, m.verifyErrors, m.querySeconds, m.queryErrors, m.partial, m.dupsDropped, m.dupsMarked, m.rowsRefused, m.deadLetters}
}
