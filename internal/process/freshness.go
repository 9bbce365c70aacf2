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

// arrival is a run of consecutive offsets that arrived at the same time
// (the records of one ingest request share the log's timestamp): at 300k
// events/s a segment's ~150,000 pending records are a few hundred runs,
// where one entry a record held 5-10 MB (issue 12, "memory").
type arrival struct {
	first, last int64 // offsets, inclusive
	at          time.Time
	ex          prometheus.Labels // of the run's first record: a traced batch's trace id (telemetry.Batch.Exemplar)
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
	var (
		tp transport.TopicPartition
		q  []arrival
		in bool // q is tp's, not yet stored back
	)
	for i := range recs {
		r := &recs[i]
		if r.Timestamp.IsZero() {
			continue
		}
		if !in || r.Partition != tp.Partition || r.Topic != tp.Topic {
			if in {
				f.pending[tp] = q
			}
			tp, in = transport.TopicPartition{Topic: r.Topic, Partition: r.Partition}, true
			q = f.pending[tp]
		}
		if n := len(q); n > 0 && q[n-1].last >= r.Offset {
			j := n
			for j > 0 && q[j-1].first >= r.Offset {
				j--
			}
			clear(q[j:])
			q = q[:j]
			if j > 0 && q[j-1].last >= r.Offset {
				q[j-1].last = r.Offset - 1
			}
		}
		if n := len(q); ex == nil && n > 0 && q[n-1].last == r.Offset-1 && q[n-1].at.Equal(r.Timestamp) {
			q[n-1].last = r.Offset
			continue
		}
		q = append(q, arrival{first: r.Offset, last: r.Offset, at: r.Timestamp, ex: ex})
		ex = nil
	}
	if in {
		f.pending[tp] = q
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
		for ; i < len(q) && q[i].first < n; i++ {
			age := now.Sub(q[i].at).Seconds()
			last := min(q[i].last, n-1)
			telemetry.ObserveExemplar(f.hist, age, q[i].ex)
			for o := q[i].first + 1; o <= last; o++ {
				f.hist.Observe(age)
			}
			if last < q[i].last {
				// The rest of the run is not queryable yet; its exemplar
				// went with its first record.
				q[i].first, q[i].ex = last+1, nil
				break
			}
		}
		switch {
		case i == len(q):
			clear(q)
			f.pending[tp] = q[:0]
		case i > 0:
			// Keep the backing array from growing without bound: move the
			// rest to the front.
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
