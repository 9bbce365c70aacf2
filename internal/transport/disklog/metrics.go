package disklog

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are per Log (not registered globally) so tests and several logs in
// one process do not collide; Collector hands them to a registry.
type metrics struct {
	appendedRecords    prometheus.Counter
	appendedBytes      prometheus.Counter
	appendedRawBytes   prometheus.Counter
	appendedBatches    prometheus.Counter
	groupCommits       prometheus.Counter
	groupCommitRecords prometheus.Histogram
	groupCommitCalls   prometheus.Histogram
	fsyncs             prometheus.Counter
	fsyncSeconds       prometheus.Histogram
	writeErrors        prometheus.Counter
	readErrors         prometheus.Counter
	backpressure       prometheus.Counter
	rolls              prometheus.Counter
	commits            prometheus.Counter
	recoveredBytes     prometheus.Counter
	truncatedBytes     prometheus.Counter
	retentionSegments  prometheus.Counter
	retentionBytes     prometheus.Counter
	preallocated       prometheus.Counter
	preallocErrors     prometheus.Counter

	static []prometheus.Collector
}

func newMetrics(l *Log) *metrics {
	labels := prometheus.Labels{"topic": l.opts.Topic}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "wirelog_disklog_" + name, Help: help, ConstLabels: labels})
	}
	histogram := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: "wirelog_disklog_" + name, Help: help, ConstLabels: labels, Buckets: buckets})
	}
	m := &metrics{
		appendedRecords:    counter("appended_records_total", "Records appended and fsynced."),
		appendedBytes:      counter("appended_bytes_total", "Bytes of record batches appended and fsynced (as stored: compressed when --log-compression is on)."),
		appendedRawBytes:   counter("appended_uncompressed_bytes_total", "Bytes the batches of appended_bytes_total had before compression; their ratio is the compression ratio."),
		appendedBatches:    counter("appended_batches_total", "Record batches appended (one per Produce call and partition)."),
		groupCommits:       counter("group_commits_total", "Group commits: rounds of writes completed by one fsync per touched segment."),
		groupCommitRecords: histogram("group_commit_records", "Records made durable by one group commit.", prometheus.ExponentialBuckets(1, 4, 10)),
		groupCommitCalls:   histogram("group_commit_batches", "Record batches (Produce calls) completed by one group commit.", prometheus.ExponentialBuckets(1, 2, 10)),
		fsyncs:             counter("fsyncs_total", "fdatasync calls on segment files."),
		fsyncSeconds:       histogram("fsync_duration_seconds", "Latency of fdatasync on segment files.", prometheus.ExponentialBuckets(0.0001, 2, 16)),
		writeErrors:        counter("write_errors_total", "Failed writes or fsyncs; after one the log refuses writes until reopened."),
		readErrors:         counter("read_errors_total", "Corrupt batches met by consumers inside the durable region."),
		backpressure:       counter("backpressure_total", "Produce calls refused because the backlog or the write queue is over its bound."),
		rolls:              counter("segment_rolls_total", "New segment files started."),
		commits:            counter("group_offset_commits_total", "Consumer group offset commits stored."),
		recoveredBytes:     counter("recovered_bytes_total", "Bytes of the active segments validated by recovery at open."),
		truncatedBytes:     counter("truncated_bytes_total", "Bytes of torn or corrupt segment tails cut off by recovery at open."),
		retentionSegments:  counter("retention_deleted_segments_total", "Segments deleted by retention."),
		retentionBytes:     counter("retention_deleted_bytes_total", "Bytes deleted by retention."),
		preallocated:       counter("preallocated_segments_total", "Segment files written full of zeros ahead of the writer, so group commits overwrite instead of append."),
		preallocErrors:     counter("preallocation_errors_total", "Segments that could not be preallocated or used; the log appends instead (slower fdatasync, as durable)."),
	}
	m.static = []prometheus.Collector{
		m.appendedRecords, m.appendedBytes, m.appendedRawBytes, m.appendedBatches, m.groupCommits, m.groupCommitRecords,
		m.groupCommitCalls, m.fsyncs, m.fsyncSeconds, m.writeErrors, m.readErrors, m.backpressure,
		m.rolls, m.commits, m.recoveredBytes, m.truncatedBytes, m.retentionSegments, m.retentionBytes,
		m.preallocated, m.preallocErrors,
	}
	return m
}

// Collector returns the log's Prometheus metrics, all named wirelog_disklog_*.
// Gauges (backlog, segments, size, offsets, group lag) are computed at scrape.
func (l *Log) Collector() prometheus.Collector {
	labels := prometheus.Labels{"topic": l.opts.Topic}
	desc := func(name, help string, vars ...string) *prometheus.Desc {
		return prometheus.NewDesc("wirelog_disklog_"+name, help, vars, labels)
	}
	return &collector{
		l:           l,
		backlog:     desc("backlog_bytes", "Bytes not yet committed by the slowest known consumer group; Produce pushes back above MaxLagBytes."),
		maxLag:      desc("max_lag_bytes", "The backlog bound (MaxLagBytes); negative = unbounded."),
		segments:    desc("segments", "Segment files per partition.", "partition"),
		size:        desc("size_bytes", "Bytes of segment files per partition.", "partition"),
		startOffset: desc("start_offset", "Earliest retained offset per partition.", "partition"),
		endOffset:   desc("end_offset", "Offset the next durable record gets, per partition.", "partition"),
		committed:   desc("group_committed_offset", "Next offset a consumer group will read, as committed.", "group", "partition"),
		lag:         desc("group_lag_records", "Records between a group's committed offset and the end of the partition.", "group", "partition"),
		up:          desc("writable", "1 when the log takes writes, 0 after a disk failure or Close."),
	}
}

type collector struct {
	l                                                                           *Log
	backlog, maxLag, segments, size, startOffset, endOffset, committed, lag, up *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.l.m.static {
		m.Describe(ch)
	}
	for _, d := range []*prometheus.Desc{c.backlog, c.maxLag, c.segments, c.size, c.startOffset, c.endOffset, c.committed, c.lag, c.up} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.l.m.static {
		m.Collect(ch)
	}
	st := c.l.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.backlog, float64(st.BacklogBytes))
	gauge(c.maxLag, float64(c.l.opts.MaxLagBytes))
	up := 1.0
	if st.Unavailable != "" || st.Closed {
		up = 0
	}
	gauge(c.up, up)
	for _, p := range st.Partitions {
		pl := strconv.Itoa(int(p.Partition))
		gauge(c.segments, float64(p.Segments), pl)
		gauge(c.size, float64(p.SizeBytes), pl)
		gauge(c.startOffset, float64(p.StartOffset), pl)
		gauge(c.endOffset, float64(p.EndOffset), pl)
		for g, offs := range st.Groups {
			if off, ok := offs[p.Partition]; ok {
				gauge(c.committed, float64(off), g, pl)
				gauge(c.lag, float64(p.EndOffset-off), g, pl)
			}
		}
	}
}
