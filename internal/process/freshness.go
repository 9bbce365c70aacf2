package process

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirelog/wirelog/internal/telemetry"
	"github.com/wirelog/wirelog/internal/transport"
)

// QueryableNotifier is implemented by a store whose rows become visible to
// queries some time after Write returns (DuckDB's Parquet segments are
// buffered up to --store-segment-interval, then written and registered).
// The store calls fn each time more rows became queryable, with, per
// partition, the offset below which every row written is queryable.
type QueryableNotifier interface {
	OnQueryable(fn func(next map[transport.TopicPartition]int64))
}

// freshness measures ingest → queryable for a store that makes rows
// queryable after Write returns: the processor keeps each record's arrival
// time by partition and offset, and observes it when the store says the
// offset became queryable. Observing at Write would report the time to the
// store's buffer, which for segments is up to half a second short.
type freshness struct {
	hist prometheus.Observer

	mu      sync.Mutex
	pending map[transport.TopicPartition][]arrival // offset order
}

type arrival struct {
	offset int64
	at     time.Time
	ex     prometheus.Labels // the first record of a traced batch: its trace id (telemetry.Batch.Exemplar)
}

func newFreshness(hist prometheus.Observer) *freshness {
	return &freshness{hist: hist, pending: map[transport.TopicPartition][]arrival{}}
}

// written records the arrival times of recs, just handed to the store,
// with ex (nil: none) as the exemplar of the first one, so an operator can
// follow a slow segment from the histogram to the batch's trace.
// A record at or below an offset already pending is a replay (the consumer
// was rewound): the pending entries from there are dropped and re-added.
func (f *freshness) written(recs []transport.Record, ex prometheus.Labels) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range recs {
		r := &recs[i]
		if r.Timestamp.IsZero() {
			continue
		}
		tp := transport.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		q := f.pending[tp]
		if n := len(q); n > 0 && q[n-1].offset >= r.Offset {
			j := n
			for j > 0 && q[j-1].offset >= r.Offset {
				j--
			}
			q = q[:j]
		}
		f.pending[tp] = append(q, arrival{offset: r.Offset, at: r.Timestamp, ex: ex})
		ex = nil
	}
}

// queryable observes every pending record below next's offsets.
func (f *freshness) queryable(next map[transport.TopicPartition]int64) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for tp, n := range next {
		q := f.pending[tp]
		i := 0
		for ; i < len(q) && q[i].offset < n; i++ {
			telemetry.ObserveExemplar(f.hist, now.Sub(q[i].at).Seconds(), q[i].ex)
		}
		switch {
		case i == len(q):
			clear(q)
			f.pending[tp] = q[:0]
		case i > 0:
			// Keep the backing array from growing without bound: move the
			// rest to the front (at most one segment's worth of records).
			f.pending[tp] = q[:copy(q, q[i:])]
			clear(q[len(q)-i:]) // the moved-from tail must not keep exemplar labels alive
		}
	}
}

// forget drops the pending records of partitions this processor no longer
// owns: another processor stores (and measures) them.
func (f *freshness) forget(tps []transport.TopicPartition) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tp := range tps {
		delete(f.pending, tp)
	}
}
