package kafka

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/wirelog/wirelog/internal/transport"
)

// groupOffsets returns the group's committed next offset of each partition.
func groupOffsets(t *testing.T, cfg Config) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := admin(t).FetchOffsets(ctx, cfg.Group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == cfg.Topic && o.Err == nil {
			out[o.Partition] = o.At
		}
	})
	return out
}

// TestReleaseCommitsOnRevoke: a store that accepts records before they are
// durable (segment files) is asked to make them durable when its
// partitions are revoked, and what it reports is committed with the
// revoke, so the next owner continues right after it instead of storing
// the same records again. A report behind the group's offset never moves
// the group back.
func TestReleaseCommitsOnRevoke(t *testing.T) {
	cfg := testConfig(t, 2)
	p := newProducer(t, cfg)
	ctx := context.Background()
	if err := p.Produce(ctx, records(300, 250, 40)); err != nil {
		t.Fatal(err)
	}
	// The "store" of A: what it polled is accepted, not committed by the
	// caller (a deferred store commits only what it reports durable), and
	// Release reports all of it durable.
	var mu sync.Mutex
	accepted := map[transport.TopicPartition]int64{}
	var released [][]transport.TopicPartition
	cfgA := cfg
	cfgA.Release = func(ctx context.Context, tps []transport.TopicPartition) (map[transport.TopicPartition]int64, error) {
		mu.Lock()
		defer mu.Unlock()
		released = append(released, tps)
		out := map[transport.TopicPartition]int64{}
		for _, tp := range tps {
			if n, ok := accepted[tp]; ok {
				out[tp] = n
			}
		}
		return out, nil
	}
	a := newConsumer(t, cfgA, nil)
	var n int
	for deadline := time.Now().Add(30 * time.Second); n < 300 && time.Now().Before(deadline); {
		recs := pollOnce(t, a, 5*time.Second)
		mu.Lock()
		for tp, o := range nextOffsets(recs) {
			accepted[tp] = max(accepted[tp], o)
		}
		mu.Unlock()
		n += len(recs)
	}
	if n != 300 {
		t.Fatalf("A polled %d of 300", n)
	}
	if err := a.Close(); err != nil { // leaves the group: every partition is revoked
		t.Fatal(err)
	}
	mu.Lock()
	if len(released) != 1 || len(released[0]) != 2 {
		t.Errorf("Release calls %v, want one with both partitions", released)
	}
	mu.Unlock()
	g := groupOffsets(t, cfg)
	if sum(g) != 300 {
		t.Fatalf("group offsets %v after the revoke, want the 300 records A's store made durable", g)
	}
	if err := p.Produce(ctx, records(50, 250, 41)); err != nil {
		t.Fatal(err)
	}
	b := newConsumer(t, cfg, nil)
	got := drain(t, b, 50, 30*time.Second)
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	extra, _ := b.Poll(pctx, 1000)
	cancel()
	if len(got) != 50 || len(extra) != 0 {
		t.Fatalf("the next owner consumed %d (+%d), want exactly the 50 new records", len(got), len(extra))
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// A store whose offsets are older than the group's (it owned the
	// partitions long ago) does not move the group back.
	cfgC := cfg
	cfgC.Release = func(_ context.Context, tps []transport.TopicPartition) (map[transport.TopicPartition]int64, error) {
		out := map[transport.TopicPartition]int64{}
		for _, tp := range tps {
			out[tp] = 1
		}
		return out, nil
	}
	c := newConsumer(t, cfgC, nil)
	pctx, cancel = context.WithTimeout(ctx, 10*time.Second)
	for len(c.Assigned()) < 2 && pctx.Err() == nil {
		c.Poll(pctx, 1)
	}
	cancel()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if g := groupOffsets(t, cfg); sum(g) != 350 {
		t.Fatalf("group offsets %v after a release reporting offset 1, want them left at 350", g)
	}
}

// TestFailedReleaseReplaysKeptPartitions: when the store cannot make what
// it accepted durable at a revoke, it discards all of it; the consumer then
// replays the partitions it keeps from their durable offsets, so the store
// never receives a record past the gap.
func TestFailedReleaseReplaysKeptPartitions(t *testing.T) {
	cfg := testConfig(t, 2)
	p := newProducer(t, cfg)
	ctx := context.Background()
	if err := p.Produce(ctx, records(400, 250, 50)); err != nil {
		t.Fatal(err)
	}
	const durable = 10 // what the store holds of each partition
	src := func(context.Context, transport.TopicPartition) (int64, bool, error) { return durable, true, nil }
	var mu sync.Mutex
	var calls int
	cfgA := cfg
	cfgA.Release = func(context.Context, []transport.TopicPartition) (map[transport.TopicPartition]int64, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		return nil, errors.New("injected: segment write failed")
	}
	a := newConsumer(t, cfgA, src)
	poll := func() []transport.Record {
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		recs, err := a.Poll(pctx, 1000)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Poll: %v", err)
		}
		return recs
	}
	// A resumes both partitions at the store's offset.
	for n, deadline := 0, time.Now().Add(30*time.Second); n < 400-2*durable; n += len(poll()) {
		if time.Now().After(deadline) {
			t.Fatalf("A polled %d of %d", n, 400-2*durable)
		}
	}
	// B joins: one partition is revoked from A, whose release fails.
	b := newConsumer(t, cfg, nil)
	go func() {
		for len(b.Assigned()) == 0 {
			pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			b.Poll(pctx, 1)
			cancel()
		}
	}()
	// Everything was polled: the next record A gets is a replayed one.
	var replayed []transport.Record
	for deadline := time.Now().Add(60 * time.Second); len(replayed) == 0; {
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("A never replayed its kept partition (owns %v, %d Release calls)", a.Assigned(), calls)
		}
		replayed = poll()
	}
	kept := a.Assigned()
	if len(kept) != 1 {
		t.Fatalf("A owns %v after B joined, want one partition", kept)
	}
	if r := replayed[0]; r.Partition != kept[0].Partition || r.Offset != durable {
		t.Fatalf("after the failed release A's first record is %s/%d@%d, want %v@%d (its durable offset)", r.Topic, r.Partition, r.Offset, kept[0], durable)
	}
}
