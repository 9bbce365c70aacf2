package store

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirelog/wirelog/internal/promset"
)

type metrics struct {
	rowsWritten      prometheus.Counter
	rowsSkipped      prometheus.Counter
	writeErrors      prometheus.Counter
	writeSeconds     prometheus.Histogram
	batchRows        prometheus.Histogram
	retentionDeleted *prometheus.CounterVec
	retentionErrors  prometheus.Counter
	compactions      prometheus.Counter
	compactErrors    prometheus.Counter
	querySeconds     *prometheus.HistogramVec
	queryErrors      *prometheus.CounterVec

	checkpointSeconds prometheus.Histogram
	checkpointRows    prometheus.Counter
	checkpointErrors  prometheus.Counter
	inlineCheckpoints prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		rowsWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_store_rows_written_total",
			Help: "Events stored in DuckDB.",
		}),
		rowsSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_store_rows_skipped_total",
			Help: "Rows skipped by Write because their offset was already stored (replay after a restart).",
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_store_write_errors_total",
			Help: "Write batches that failed and were rolled back.",
		}),
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wirelog_store_write_seconds",
			Help:    "Time to store one batch, from the call to COMMIT.",
			Buckets: writeBuckets(), // 0.5ms .. ~4s, and 250 ms

		}),
		batchRows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wirelog_store_batch_rows",
			Help:    "Rows stored per Write batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9), // 1 .. 65536
		}),
		retentionDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_store_retention_deleted_rows_total",
			Help: "Rows deleted by age retention, by table (events, rollups).",
		}, []string{"table"}),
		retentionErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_store_retention_errors_total",
			Help: "Retention runs that failed (see the log).",
		}),
		compactions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_store_rollup_compactions_total",
			Help: "Rollup compactions that summed partial per-batch rows.",
		}),
		compactErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_store_rollup_compaction_errors_total",
			Help: "Rollup compactions that failed (see the log).",
		}),
		checkpointSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wirelog_store_checkpoint_seconds",
			Help:    "Time of one explicit checkpoint (WAL folded into the database file); writes wait meanwhile.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14), // 1ms .. ~8s
		}),
		checkpointRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_store_checkpointed_rows_total",
			Help: "Rows folded into the database file by explicit checkpoints.",
		}),
		checkpointErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_store_checkpoint_errors_total",
			Help: "Explicit checkpoints that failed (see the log); DuckDB still checkpoints by itself at checkpoint_threshold.",
		}),
		inlineCheckpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_store_inline_checkpoints_total",
			Help: "Writes during whose COMMIT DuckDB checkpointed by itself (its WAL passed --store-checkpoint-threshold), stalling that write; raise the threshold or lower --store-checkpoint-rows.",
		}),
		querySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wirelog_store_query_seconds",
			Help:    "Query latency by kind (stats, rollups, search).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"kind"}),
		queryErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_store_query_errors_total",
			Help: "Queries that failed in DuckDB, by kind (bad requests are not counted).",
		}, []string{"kind"}),
	}
}

// Collector returns the store's Prometheus metrics (wirelog_store_*), for the
// caller to register.
func (s *Store) Collector() prometheus.Collector {
	m := s.metrics
	set := promset.Set{m.rowsWritten, m.rowsSkipped, m.writeErrors, m.writeSeconds,
		m.batchRows, m.retentionDeleted, m.retentionErrors, m.compactions, m.compactErrors,
		m.querySeconds, m.queryErrors, m.checkpointSeconds, m.checkpointRows, m.checkpointErrors, m.inlineCheckpoints}
	return append(append(set, s.fileGauges()...), s.segmentCollectors()...)
}

// writeStallBucket is a bucket at the write bound issue 21 sets (and
// `loadgen --soak` judges by, --soak-stall), so a soak can tell a write of
// 250 ms from one of 256.
const writeStallBucket = 0.25

// writeBuckets are wirelog_store_write_seconds' buckets.
func writeBuckets() []float64 {
	b := prometheus.ExponentialBuckets(0.0005, 2, 14)
	b = append(b, writeStallBucket)
	slices.Sort(b)
	return b
}
