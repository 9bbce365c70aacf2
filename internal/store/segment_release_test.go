package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/transport"
)

// ReleasePartitions writes everything buffered before partitions move to
// another processor and reports the durable offsets of the ones asked for.
func TestReleasePartitionsWritesTheBuffer(t *testing.T) {
	ctx := context.Background()
	st := openSegmentStore(t, tempDB(t), Options{SegmentInterval: time.Hour})
	p0 := transport.TopicPartition{Topic: "logs", Partition: 0}
	p1 := transport.TopicPartition{Topic: "logs", Partition: 1}
	never := transport.TopicPartition{Topic: "logs", Partition: 9}
	mustWrite(t, st, genRows(100, "logs", 0, 0, t0, time.Millisecond))
	mustWrite(t, st, genRows(50, "logs", 1, 0, t0, time.Millisecond))
	got, err := st.ReleasePartitions(ctx, []transport.TopicPartition{p0, never})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[p0] != 100 {
		t.Fatalf("ReleasePartitions = %v, want %v:100 only (nothing was ever stored of %v)", got, p0, never)
	}
	// The whole buffer was written: the kept partition's events too.
	if n := countEvents(t, st); n != 150 {
		t.Fatalf("%d events queryable after the release, want 150", n)
	}
	if next, _, _ := st.NextOffset(ctx, p1); next != 50 {
		t.Fatalf("NextOffset(%v) = %d, want 50", p1, next)
	}
	// Nothing buffered: a release writes nothing and still reports.
	if got, err := st.ReleasePartitions(ctx, []transport.TopicPartition{p1}); err != nil || got[p1] != 50 {
		t.Fatalf("second release = %v, %v", got, err)
	}
}

// When the write fails, everything unwritten is discarded, of every
// partition, and never written later; the offsets stay where the durable
// events end, and replayed events from there are taken again.
func TestReleasePartitionsDiscardsWhatItCannotWrite(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	st := openSegmentStore(t, path, Options{SegmentInterval: time.Hour})
	p0 := transport.TopicPartition{Topic: "logs", Partition: 0}
	p1 := transport.TopicPartition{Topic: "logs", Partition: 1}
	mustWrite(t, st, genRows(100, "logs", 0, 0, t0, time.Millisecond))
	mustWrite(t, st, genRows(50, "logs", 1, 0, t0, time.Millisecond))
	if err := st.FlushSegments(ctx); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, st, genRows(120, "logs", 0, 0, t0, time.Millisecond)) // 20 new
	mustWrite(t, st, genRows(60, "logs", 1, 0, t0, time.Millisecond))  // 10 new
	st.writeMu.Lock()
	st.beforeCommit = func(driver.Conn) error { return errors.New("injected commit failure") }
	st.writeMu.Unlock()
	got, err := st.ReleasePartitions(ctx, []transport.TopicPartition{p0})
	if err == nil {
		t.Fatal("ReleasePartitions succeeded with a failing commit")
	}
	if len(got) != 1 || got[p0] != 100 {
		t.Fatalf("ReleasePartitions = %v after a failed write, want the durable %v:100", got, p0)
	}
	st.writeMu.Lock()
	st.beforeCommit = nil
	st.writeMu.Unlock()
	if err := st.FlushSegments(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, st); n != 150 {
		t.Fatalf("%d events after the failed release and a flush, want the 150 durable ones: the discarded 30 must never be written", n)
	}
	if files := segmentFiles(t, path); len(files) != 1 {
		t.Fatalf("segment files %v, want the one durable segment", files)
	}
	// The kept partition is replayed from its durable offset: taken again.
	if n := mustWrite(t, st, genRows(60, "logs", 1, 50, t0, time.Millisecond)[:10]); n != 10 {
		t.Fatalf("replay from the durable offset stored %d of 10", n)
	}
	if err := st.FlushSegments(ctx); err != nil {
		t.Fatal(err)
	}
	if next, _, _ := st.NextOffset(ctx, p1); next != 60 {
		t.Fatalf("NextOffset(%v) = %d after the replay, want 60", p1, next)
	}
	if n := countEvents(t, st); n != 160 {
		t.Fatalf("%d events, want 160", n)
	}
}

// A segment being written in the background that fails is not waited for:
// the release fails at once and discards it, and its retry never commits.
func TestReleasePartitionsDiscardsAFailingBackgroundSegment(t *testing.T) {
	ctx := context.Background()
	st := openSegmentStore(t, tempDB(t), Options{SegmentRows: 100, SegmentInterval: time.Hour})
	p0 := transport.TopicPartition{Topic: "logs", Partition: 0}
	st.writeMu.Lock()
	st.beforeCommit = func(driver.Conn) error { return errors.New("injected commit failure") }
	st.writeMu.Unlock()
	mustWrite(t, st, genRows(100, "logs", 0, 0, t0, time.Millisecond)) // full: written in the background
	mustWrite(t, st, genRows(130, "logs", 0, 0, t0, time.Millisecond)) // 30 buffered
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	got, err := st.ReleasePartitions(rctx, []transport.TopicPartition{p0})
	if err == nil || len(got) != 0 {
		t.Fatalf("ReleasePartitions = %v, %v; want an error and no durable offset", got, err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("the release waited %s for a segment that had failed", d)
	}
	st.writeMu.Lock()
	st.beforeCommit = nil
	st.writeMu.Unlock()
	// FlushSegments waits for the background segment to give up.
	if err := st.FlushSegments(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // past a retry, had one been scheduled
	if n := countEvents(t, st); n != 0 {
		t.Fatalf("%d events were committed after they were discarded", n)
	}
	if _, ok, _ := st.NextOffset(ctx, p0); ok {
		t.Fatal("an offset moved for discarded events")
	}
}

// DiscardUnwritten (partitions lost) drops what is buffered and reports
// how much; the table format has nothing to drop.
func TestDiscardUnwritten(t *testing.T) {
	ctx := context.Background()
	st := openSegmentStore(t, tempDB(t), Options{SegmentInterval: time.Hour})
	mustWrite(t, st, genRows(40, "logs", 0, 0, t0, time.Millisecond))
	if n := st.DiscardUnwritten(); n != 40 {
		t.Fatalf("DiscardUnwritten = %d, want 40", n)
	}
	if err := st.FlushSegments(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, st); n != 0 {
		t.Fatalf("%d events after discarding them", n)
	}
	if n := mustWrite(t, st, genRows(40, "logs", 0, 0, t0, time.Millisecond)); n != 40 {
		t.Fatalf("the replay stored %d of 40", n)
	}
	table := openTest(t, tempDB(t))
	mustWrite(t, table, genRows(10, "logs", 0, 0, t0, time.Millisecond))
	if n := table.DiscardUnwritten(); n != 0 {
		t.Fatalf("table format DiscardUnwritten = %d", n)
	}
	tp := transport.TopicPartition{Topic: "logs", Partition: 0}
	if got, err := table.ReleasePartitions(ctx, []transport.TopicPartition{tp}); err != nil || got[tp] != 10 {
		t.Fatalf("table format ReleasePartitions = %v, %v; want %v:10", got, err, tp)
	}
}
