package process

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirelog/wirelog/internal/promset"
	"github.com/wirelog/wirelog/internal/telemetry"
)

type metrics struct {
	stored         prometheus.Counter
	skipped        prometheus.Counter
	deadLettered   prometheus.Counter
	poisoned       prometheus.Counter
	errors         *prometheus.CounterVec
	paused         prometheus.Gauge
	batchSeconds   prometheus.Histogram
	batchRecords   prometheus.Histogram
	ingestToStored prometheus.Histogram
	syslogParse    *prometheus.CounterVec
}

func newMetrics() metrics {
	return metrics{
		stored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_processor_events_stored_total",
			Help: "Events the processor stored.",
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_processor_events_replayed_total",
			Help: "Records skipped because the store already held them (replay after a crash or rebalance).",
		}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_processor_dead_lettered_total",
			Help: "Undecodable records sent to the dead-letter topic.",
		}),
		poisoned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_processor_dead_letters_total",
			Help: "Records the store refused on their own after the batch failed --max-write-tries times; kept in the dead_letters table with the reason.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_processor_errors_total",
			Help: "Processor errors by stage (poll, decode, store, commit, checkpoint).",
		}, []string{"stage"}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wirelog_processor_paused",
			Help: "1 while an operator has paused the processor.",
		}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wirelog_processor_batch_store_seconds",
			Help:    "Time to store one batch (one transaction).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 10),
			// Also a native histogram (scraped as protobuf by a Prometheus with
			// native histograms on): finer quantiles at a fraction of the series.
			NativeHistogramBucketFactor:     telemetry.NativeBucketFactor,
			NativeHistogramMaxBucketNumber:  telemetry.NativeMaxBuckets,
			NativeHistogramMinResetDuration: telemetry.NativeMinReset,
		}),
		ingestToStored: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wirelog_processor_ingest_to_stored_seconds",
			Help:    "Time from a record's arrival at ingest (its log timestamp) until queries can see it (its store commit; with --store-format parquet, the registration of its segment): how fresh queries are.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
		syslogParse: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_processor_syslog_parse_errors_total",
			Help: "Raw syslog records (UDP with --syslog-udp-raw) whose header the processor could not fully parse, by reason; " +
				"each is stored anyway with attrs.parse_error (the ingest counts these in wirelog_syslog_parse_errors_total for TCP and TLS).",
		}, []string{"reason"}),
		batchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wirelog_processor_batch_records",
			Help:    "Records per stored batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
	}
}

// set lists every metric once, for Processor.Collector.
func (m *metrics) set() promset.Set {
	return promset.Set{m.stored, m.skipped, m.deadLettered, m.poisoned, m.errors, m.paused, m.batchSeconds, m.batchRecords, m.ingestToStored, m.syslogParse}
}
