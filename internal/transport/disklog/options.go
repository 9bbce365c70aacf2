package disklog

import (
	"fmt"
	"log/slog"
	"regexp"
	"time"
)

// Defaults. Every knob of Options falls back to the value here when left zero.
const (
	// DefaultTopic is the topic the ingest gateway writes and the processor reads.
	DefaultTopic = "wirelog.logs"
	// DefaultPartitions: one partition is enough for one machine; the writer
	// goroutine, not the partition count, bounds throughput.
	DefaultPartitions = 1
	// DefaultSegmentBytes: Kafka's log.segment.bytes is 1 GiB; smaller
	// segments let retention free space sooner on a laptop-sized disk.
	DefaultSegmentBytes = 128 << 20
	// DefaultRetentionBytes per partition: the processor drains the log into
	// DuckDB, so the log only needs to hold the backlog plus a replay margin.
	DefaultRetentionBytes = 2 << 30
	// DefaultRetentionAge: segments whose last append is older are deleted
	// (once every known consumer group has committed past them).
	DefaultRetentionAge = 24 * time.Hour
	// DefaultRetentionCheckInterval: how often retention runs besides on every
	// segment roll.
	DefaultRetentionCheckInterval = time.Minute
	// DefaultMaxLagBytes: above this many unconsumed bytes Produce pushes back
	// with ErrBackpressure, which bounds disk use when the processor stalls.
	DefaultMaxLagBytes = 1 << 30
	// DefaultMaxPendingBytes: encoded batches queued for the writer but not yet
	// on disk; bounds memory when the disk is slower than the producers.
	DefaultMaxPendingBytes = 256 << 20
	// DefaultGroupCommitWait is zero: batching comes from the calls that queue
	// up while the previous fsync runs, so an idle log adds no latency.
	DefaultGroupCommitWait = 0
	// DefaultMaxSyncsInFlight: the writer starts the next group's
	// fdatasync while one is still running (syncs.go), so a call that
	// arrives during a sync waits for its own only. Two is where the
	// measured overlap of fdatasyncs on one file ends (docs/bench/disklog.md).
	DefaultMaxSyncsInFlight = 2
	// DefaultReadBytes caps one read(2) of a consumer Poll.
	DefaultReadBytes = 4 << 20
	// DefaultPreallocate: segments are preallocated (prealloc.go), so each
	// group commit's fdatasync flushes data only, not the file's size and
	// extents (docs/bench/disklog.md, "Preallocated segments").
	DefaultPreallocate = true
	// DefaultCompression is how record batches are stored (Kafka's
	// compression.type; compress.go). None, on measurements
	// (docs/bench/disklog.md, "Batch compression"): on the 2-core host
	// every codec cost CPU per line (HTTP: snappy +8 %, zstd +46 %) and,
	// at 1 KB UDP syslog, throughput, because the receive path there is
	// bound by CPU, not by the disk. snappy, the cheapest per byte saved,
	// is the choice where the disk is the limit or for more backlog and
	// replay in the same --log-retention-bytes (4.2x on HTTP events).
	DefaultCompression = CompressionNone
)

// Options configures a Log. The zero value means every default above.
type Options struct {
	Topic          string        // topic name; [a-zA-Z0-9._-], at most 200 chars
	Partitions     int           // number of partitions; cannot shrink once data exists
	SegmentBytes   int64         // roll to a new segment file past this size
	RetentionBytes int64         // per partition; negative = no size limit
	RetentionAge   time.Duration // negative = no age limit
	// RetentionCheckInterval is how often the retention goroutine runs.
	RetentionCheckInterval time.Duration
	// MaxLagBytes bounds the bytes not yet committed by the slowest known
	// consumer group (or by anyone, while no group is known); negative
	// disables the bound (benchmarks, tools).
	MaxLagBytes     int64
	MaxPendingBytes int64         // bytes queued for the writer; beyond it Produce pushes back
	GroupCommitWait time.Duration // extra wait before each group commit to gather more calls
	// MaxSyncsInFlight bounds the group commits being fsynced at once
	// (1..4; 1 = each group's fdatasync starts after the previous one ends).
	MaxSyncsInFlight int
	ReadBytes        int // largest single read of a consumer Poll
	// Compression is the codec of every batch appended from now on: "none",
	// "snappy", "lz4" or "zstd" (""= DefaultCompression). Batches already
	// written keep theirs, so it can change between runs.
	Compression string
	// CompressionLevel is the codec's level; 0 = its default (lz4: fast;
	// 1-9 = LZ4 HC. zstd: 1; 1-22, mapped to klauspost/compress's four
	// speeds. snappy has none).
	CompressionLevel int
	// NoPreallocate turns off preallocated segments (DefaultPreallocate,
	// prealloc.go): each
	// segment is then a file that grows with every append. Preallocation
	// writes every segment twice (zeros, then batches) and holds up to one
	// segment of zeros per written partition ahead of the data; it is off
	// by itself with NoSync.
	NoPreallocate bool
	// NoSync skips fdatasync. For benchmarks only: an acknowledged record can
	// then be lost in a power failure (not in a process crash).
	NoSync bool
	// Logger receives recovery and retention messages; nil = slog.Default().
	Logger *slog.Logger
}

var topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,200}$`)

func (o Options) withDefaults() (Options, error) {
	if o.Topic == "" {
		o.Topic = DefaultTopic
	}
	if o.Compression == "" {
		o.Compression = DefaultCompression
	}
	if !topicRE.MatchString(o.Topic) || o.Topic == "." || o.Topic == ".." {
		return o, fmt.Errorf("disklog: topic %q: use 1-200 of [a-zA-Z0-9._-]", o.Topic)
	}
	if o.Partitions == 0 {
		o.Partitions = DefaultPartitions
	}
	if o.Partitions < 0 || o.Partitions > 1024 {
		return o, fmt.Errorf("disklog: Partitions %d: want 1..1024", o.Partitions)
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.SegmentBytes < 0 {
		return o, fmt.Errorf("disklog: SegmentBytes %d must be positive", o.SegmentBytes)
	}
	if o.RetentionBytes == 0 {
		o.RetentionBytes = DefaultRetentionBytes
	}
	if o.RetentionAge == 0 {
		o.RetentionAge = DefaultRetentionAge
	}
	if o.RetentionCheckInterval <= 0 {
		o.RetentionCheckInterval = DefaultRetentionCheckInterval
	}
	if o.MaxLagBytes == 0 {
		o.MaxLagBytes = DefaultMaxLagBytes
	}
	if o.MaxPendingBytes <= 0 {
		o.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if o.MaxSyncsInFlight == 0 {
		o.MaxSyncsInFlight = DefaultMaxSyncsInFlight
	}
	if o.MaxSyncsInFlight < 1 || o.MaxSyncsInFlight > maxSyncsInFlight {
		return o, fmt.Errorf("disklog: MaxSyncsInFlight (--log-syncs-in-flight) %d: want 1..%d", o.MaxSyncsInFlight, maxSyncsInFlight)
	}
	if o.GroupCommitWait < 0 {
		o.GroupCommitWait = 0
	}
	if o.ReadBytes <= 0 {
		o.ReadBytes = DefaultReadBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}
