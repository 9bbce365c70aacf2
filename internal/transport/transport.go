// Package transport defines the partitioned, durable log that carries events
// from the ingest gateway to the processors. Two implementations sit behind it:
// disklog (the embedded single-machine log) and kafka (Apache Kafka via
// franz-go). The processor and the ingest gateway cannot tell them apart.
package transport

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Callers match them with errors.Is.
var (
	// ErrBackpressure means the log is behind its bound (unconsumed bytes,
	// producer buffer) and the caller should retry later. HTTP maps it to 429.
	ErrBackpressure = errors.New("transport: log is behind its bound, retry later")
	// ErrUnavailable means the log cannot take writes right now (broker gone,
	// disk failing). HTTP maps it to 503.
	ErrUnavailable = errors.New("transport: log unavailable")
	// ErrClosed means the producer or consumer was closed.
	ErrClosed = errors.New("transport: closed")
	// ErrTooLarge means a record or the records of one call are larger than
	// the log takes (the embedded log's 64 MiB batch, Kafka's
	// message.max.bytes). Retrying the same call cannot succeed: HTTP maps
	// it to 413.
	ErrTooLarge = errors.New("transport: records larger than the log takes")
)

// Header is one record header, as in Kafka (used for traceparent).
type Header struct {
	Key   string
	Value []byte
}

// Record is one entry of a topic partition.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64 // assigned by the log on append
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp time.Time
}

// TopicPartition names one partition of one topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Producer appends records to the log.
type Producer interface {
	// Produce appends recs and returns only when every one of them is durable
	// (fsynced by the embedded log, acked by all in-sync replicas in Kafka).
	// On error none or some of the records may have been written; the caller
	// must treat the whole call as not acknowledged. It returns an error
	// wrapping ErrBackpressure or ErrUnavailable when the log pushes back.
	// Produce is safe for concurrent use; concurrent calls are group-committed.
	Produce(ctx context.Context, recs []Record) error
	// Ready reports nil when the producer can accept writes.
	Ready(ctx context.Context) error
	Close() error
}

// OffsetSource tells a consumer where to resume a partition it has been
// assigned: the next offset to read, and ok=false when nothing is known (then
// the consumer starts from the earliest retained offset). The processor backs
// it with the offsets it committed in the store transaction, so the store,
// not the log, is the source of truth for exactly-once.
type OffsetSource func(ctx context.Context, tp TopicPartition) (next int64, ok bool, err error)

// Consumer reads records of one topic on behalf of a consumer group.
type Consumer interface {
	// Poll blocks until records are available or ctx is done, and returns at
	// most max records. Records of one partition come in offset order.
	// Calling Poll again tells the consumer the previous batch is stored and
	// committed: a Kafka consumer lets its partitions move to another group
	// member only then, so a caller must not poll again to grow a batch it
	// has not stored yet.
	Poll(ctx context.Context, max int) ([]Record, error)
	// Commit records the next offsets to read per partition in the log (for
	// retention and for tools that show group lag). The store transaction has
	// already made them durable for exactly-once; this is advisory.
	Commit(ctx context.Context, next map[TopicPartition]int64) error
	Close() error
}
