// Package storage is the store contract that the processor, the query API
// and the live tail program against. Two stores implement it: the embedded
// DuckDB store (internal/store, one per processor, the default) and the
// VictoriaLogs store (internal/storage/victorialogs, one cluster shared by
// every processor and by `wirelog serve`). The request and answer types are
// internal/store's, so the API answers the same shape from either store;
// storagetest runs the same contract against both.
package storage

import (
	"context"
	"errors"
	"io"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/transport"
)

// Store kinds, the values of --store.
const (
	KindDuckDB       = "duckdb"
	KindVictoriaLogs = "victorialogs"
)

// Kinds lists the --store values, for help texts and errors.
var Kinds = []string{KindDuckDB, KindVictoriaLogs}

// Writer is what the processor writes to.
type Writer interface {
	// Write stores rows (records of one consumer batch, each partition's in
	// offset order) and returns how many it stored. On error the whole batch
	// is retried by the caller.
	Write(ctx context.Context, rows []store.Row) (int, error)
	// NextOffset is the consumer's transport.OffsetSource: where a partition
	// resumes according to the store, ok=false when the store does not know
	// (then the group's committed offset decides).
	NextOffset(ctx context.Context, tp transport.TopicPartition) (next int64, ok bool, err error)
}

// Deferred is implemented by a Writer whose Write returns before the rows
// are durable (VictoriaLogs: durable only after its in-memory flush). The
// processor then commits offsets to the log only as Durable reports them,
// and rewinds the partitions Lost reports. A Writer without it is durable
// when Write returns (DuckDB commits a transaction), and the processor
// commits each batch's offsets right after Write.
type Deferred interface {
	// Durable returns, per partition, the next offset below which every row
	// sent is proven durable; only partitions that advanced since the last
	// call are returned.
	Durable() map[transport.TopicPartition]int64
	// Lost returns, per partition, the first offset of rows that were sent
	// but are missing from the store (a storage node lost them), on every
	// call until rows from there are written again. The caller seeks its
	// consumer back there; nothing of the partition is reported durable
	// before.
	Lost() map[transport.TopicPartition]int64
	// Forget drops what the store tracks for partitions this processor no
	// longer owns (revoked or lost in a rebalance).
	Forget(tps []transport.TopicPartition)
}

// SometimesDeferred is implemented by a store that implements Deferred's
// methods but defers durability only in some configurations (DuckDB with
// --store-format parquet buffers events for a segment file; its table
// format is durable when Write returns).
type SometimesDeferred interface {
	DeferredWrites() bool
}

// AsDeferred returns w's Deferred side when its writes are deferred: a
// Deferred that is not a SometimesDeferred, or one whose DeferredWrites is
// true.
func AsDeferred(w any) (Deferred, bool) {
	d, ok := w.(Deferred)
	if !ok {
		return nil, false
	}
	if sd, ok := w.(SometimesDeferred); ok && !sd.DeferredWrites() {
		return nil, false
	}
	return d, true
}

// Querier answers the query API. Answers carry store.Coverage: a store that
// could read only part of its data says so instead of answering smaller
// numbers silently.
type Querier interface {
	Stats(context.Context, store.StatsRequest) (*store.Stats, error)
	Rollups(context.Context, store.RollupsRequest) (*store.Rollups, error)
	Search(context.Context, store.SearchRequest) (*store.SearchResult, error)
}

// Tailer is implemented by a store that can follow what other processes
// store (VictoriaLogs' live tail), for `wirelog serve`, where no processor
// runs in the process to publish stored batches.
type Tailer interface {
	// Follow calls publish with newly stored events, each at most once,
	// until ctx ends or the store fails; it reconnects on its own.
	Follow(ctx context.Context, publish func([]event.Event)) error
}

// Store is a complete store: written by a processor, read by the API.
type Store interface {
	Writer
	Querier
	// Collector exports the store's metrics.
	Collector() prometheus.Collector
	io.Closer
}

var _ Store = (*store.Store)(nil)

// ErrUnavailable means the store cannot answer completely right now (a
// storage node is down and the request refused a partial answer) or cannot
// be reached. The HTTP API answers it with 503 and Retry-After.
var ErrUnavailable = errors.New("storage: store unavailable, retry later")

// ErrNotSupported means the store cannot answer this kind of query at all
// (the VictoriaLogs store mines no log patterns); the error says why. The
// HTTP API answers it with 501.
var ErrNotSupported = errors.New("not supported by this store")
