package process

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/telemetry"
	"github.com/wirelog/wirelog/internal/transport"
	"github.com/wirelog/wirelog/internal/transport/disklog"
)

// histogramOf reads h's sample count and the cumulative count of samples
// at or below le.
func histogramOf(t *testing.T, h prometheus.Histogram, le float64) (count, atMost uint64) {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	for _, b := range m.GetHistogram().GetBucket() {
		if b.GetUpperBound() == le {
			atMost = b.GetCumulativeCount()
		}
	}
	return m.GetHistogram().GetSampleCount(), atMost
}

// TestFreshnessCountsUntilTheSegmentIsQueryable: with Parquet segments the
// store buffers events for --store-segment-interval before they can be
// queried, so ingest → queryable must include that wait. Measured at Write
// it read a few milliseconds while a search could not see the events yet.
func TestFreshnessCountsUntilTheSegmentIsQueryable(t *testing.T) {
	const n, interval = 100, 700 * time.Millisecond
	lg, st := openRealLog(t, store.Options{Format: store.FormatParquet, SegmentInterval: interval})
	recs := make([]transport.Record, n)
	for i := range recs {
		recs[i].Value = event.AppendJSON(nil, &event.Event{Time: time.Now(), Service: "svc", Level: event.LevelInfo, Message: "fresh"})
	}
	if err := lg.Producer().Produce(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	p := processUntil(t, lg, st, n)

	var count, early uint64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if count, early = histogramOf(t, p.m.ingestToStored, 0.5); count >= n || time.Now().After(deadline) {
			break
		}
	}
	if count != n {
		t.Fatalf("freshness observed %d records, want %d (one per record once its segment is queryable)", count, n)
	}
	if early != 0 {
		t.Fatalf("%d of %d records were reported queryable within 0.5 s, but their segment waits %v before it is written", early, n, interval)
	}
	res, err := st.Search(context.Background(), store.SearchRequest{Limit: n + 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != n {
		t.Fatalf("a search finds %d of the %d records freshness counted as queryable", len(res.Events), n)
	}
}

// TestFreshnessReplayAndForget: records replayed after a rewind replace the
// pending ones from their offset on (each is observed once), and a partition
// that moved to another processor is no longer measured here.
func TestFreshnessReplayAndForget(t *testing.T) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "t", Buckets: []float64{1}})
	f := newFreshness(h)
	tp := transport.TopicPartition{Topic: "logs", Partition: 3}
	batch := func(from, to int64) []transport.Record { return arrivedNow(tp, from, to) }
	f.written(batch(0, 5), nil)
	f.queryable(map[transport.TopicPartition]int64{tp: 3})
	if c, _ := histogramOf(t, h, 1); c != 3 {
		t.Fatalf("observed %d records below offset 3, want 3", c)
	}
	f.written(batch(2, 6), nil) // rewound to 2: 3 and 4 are pending again, not twice
	f.queryable(map[transport.TopicPartition]int64{tp: 6})
	if c, _ := histogramOf(t, h, 1); c != 3+4 {
		t.Fatalf("observed %d records after the replay, want 7 (2..5 once each)", c)
	}
	f.written(batch(6, 9), nil)
	f.forget([]transport.TopicPartition{tp})
	f.queryable(map[transport.TopicPartition]int64{tp: 9})
	if c, _ := histogramOf(t, h, 1); c != 7 {
		t.Fatalf("observed %d records, want 7: a forgotten partition's records are its new owner's to measure", c)
	}
}

// commitRecorder is the real consumer, recording what is committed.
type commitRecorder struct {
	transport.Consumer
	mu   sync.Mutex
	last map[transport.TopicPartition]int64
}

func (c *commitRecorder) Commit(ctx context.Context, next map[transport.TopicPartition]int64) error {
	c.mu.Lock()
	if c.last == nil {
		c.last = map[transport.TopicPartition]int64{}
	}
	for tp, o := range next {
		c.last[tp] = o
	}
	c.mu.Unlock()
	return c.Consumer.Commit(ctx, next)
}

// TestSegmentOffsetsCommittedWhenRegistered: the log learns a segment's
// offsets as soon as the segment is registered, not at the next periodic
// commit, so a processor that dies right after leaves its partitions' next
// owner nothing it already stored (here the periodic commit is an hour away).
func TestSegmentOffsetsCommittedWhenRegistered(t *testing.T) {
	const n = 50
	lg, st := openRealLog(t, store.Options{Format: store.FormatParquet, SegmentInterval: 200 * time.Millisecond})
	recs := make([]transport.Record, n)
	for i := range recs {
		recs[i].Value = event.AppendJSON(nil, &event.Event{Time: time.Now(), Service: "svc", Level: event.LevelInfo, Message: "segment"})
	}
	if err := lg.Producer().Produce(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	cons := &commitRecorder{Consumer: lg.Consumer("test", st.NextOffset)}
	defer cons.Close()
	p := New(cons, st, Options{DurableCommitInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitStored(t, st, n)
	tp := transport.TopicPartition{Topic: disklog.DefaultTopic, Partition: 0}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		cons.mu.Lock()
		got := cons.last[tp]
		cons.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log's committed offset is %d 20 s after the segment holding offsets 0..%d was registered, want %d", got, n-1, n)
		}
	}
}

// TestFreshnessKeepsTheBatchExemplar: observed when the segment is
// registered, long after the batch's span ended, a traced batch's first
// record still carries its trace id as the histogram's exemplar (issue 14:
// from a slow bucket to the batch's trace); an untraced batch adds none.
func TestFreshnessKeepsTheBatchExemplar(t *testing.T) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "t", Buckets: []float64{1}})
	f := newFreshness(h)
	tp := transport.TopicPartition{Topic: "logs", Partition: 0}
	recs := func(from, to int64) []transport.Record { return arrivedNow(tp, from, to) }
	exemplars := func() []string {
		var m dto.Metric
		if err := h.Write(&m); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, b := range m.GetHistogram().GetBucket() {
			if e := b.GetExemplar(); e != nil {
				for _, l := range e.GetLabel() {
					ids = append(ids, l.GetName()+"="+l.GetValue())
				}
			}
		}
		return ids
	}
	f.written(recs(0, 3), nil)
	f.queryable(map[transport.TopicPartition]int64{tp: 3})
	if ids := exemplars(); len(ids) != 0 {
		t.Fatalf("an untraced batch left exemplars %v", ids)
	}
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	f.written(recs(3, 6), prometheus.Labels{telemetry.ExemplarLabel: trace})
	f.queryable(map[transport.TopicPartition]int64{tp: 6})
	if ids := exemplars(); len(ids) != 1 || ids[0] != telemetry.ExemplarLabel+"="+trace {
		t.Fatalf("exemplars after a traced batch became queryable: %v, want [%s=%s]", ids, telemetry.ExemplarLabel, trace)
	}
}

// arrivedNow is records [from, to) of tp, arrived at ingest now.
func arrivedNow(tp transport.TopicPartition, from, to int64) []transport.Record {
	var rs []transport.Record
	for o := from; o < to; o++ {
		rs = append(rs, transport.Record{Topic: tp.Topic, Partition: tp.Partition, Offset: o, Timestamp: time.Now()})
	}
	return rs
}

// TestFreshnessRunsOfOneRequest: the records of one ingest request share
// their arrival time and are kept as one run; a segment boundary inside the
// run observes the part below it now and the rest when it is queryable,
// each record once.
func TestFreshnessRunsOfOneRequest(t *testing.T) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "t", Buckets: []float64{1}})
	f := newFreshness(h)
	tp := transport.TopicPartition{Topic: "logs", Partition: 0}
	at := time.Now()
	batch := func(from, to int64) []transport.Record {
		var rs []transport.Record
		for o := from; o < to; o++ {
			rs = append(rs, transport.Record{Topic: tp.Topic, Partition: tp.Partition, Offset: o, Timestamp: at})
		}
		return rs
	}
	f.written(batch(0, 500), nil)
	f.written(batch(500, 1000), nil)
	if n := len(f.pending[tp]); n != 1 {
		t.Fatalf("1000 records of one arrival time are %d pending entries, want 1 run", n)
	}
	for _, c := range []struct{ next, want int64 }{{300, 300}, {300, 300}, {999, 999}, {1000, 1000}} {
		f.queryable(map[transport.TopicPartition]int64{tp: c.next})
		if got, _ := histogramOf(t, h, 1); int64(got) != c.want {
			t.Fatalf("queryable below %d: observed %d records, want %d", c.next, got, c.want)
		}
	}
	if n := len(f.pending[tp]); n != 0 {
		t.Fatalf("%d entries pending after every record was observed", n)
	}
}
