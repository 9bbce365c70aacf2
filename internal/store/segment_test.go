package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/transport"
)

func openSegmentStore(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	opts.DisableMaintenance = true
	if opts.Retention == 0 {
		opts.Retention = -1
	}
	opts.Format = FormatParquet
	st, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%q, parquet): %v", path, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func segmentFiles(t testing.TB, path string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(path+segmentDirSuffix, "*"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// Every query the API and the dashboard make answers the same from
// segment files as from the table, for the same rows.
func TestSegmentsAnswerLikeTable(t *testing.T) {
	ctx := context.Background()
	table := openTest(t, tempDB(t))
	seg := openSegmentStore(t, tempDB(t), Options{SegmentRows: 700})
	rows := genRows(3000, "logs", 0, 0, t0, 7*time.Millisecond)
	rows = append(rows, genRows(500, "logs", 1, 0, t0.Add(time.Second), 11*time.Millisecond)...)
	rows[5].Event.Message = "bad \xff utf-8"
	rows[6].Event.Attrs = nil
	rows[7].Event.Attrs = []byte(`not json`)
	for _, st := range []*Store{table, seg} {
		for i := 0; i < len(rows); i += 400 {
			mustWrite(t, st, append([]Row(nil), rows[i:min(i+400, len(rows))]...))
		}
	}
	if err := seg.FlushSegments(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentFiles(t, seg.path)); n < 5 {
		t.Fatalf("%d segment files for 3,500 events at 700 a segment; want at least 5", n)
	}
	if got, want := countEvents(t, seg), countEvents(t, table); got != want || got != int64(len(rows)) {
		t.Fatalf("segments hold %d events, table %d, written %d", got, want, len(rows))
	}
	probe := rows[1234].Event
	same := sameAnswer(t, table, seg)
	same("stats", func(st *Store) (any, error) { return st.Stats(ctx, StatsRequest{}) })
	same("rollups", func(st *Store) (any, error) {
		return st.Rollups(ctx, RollupsRequest{From: t0, To: t0.Add(time.Minute), Step: time.Second, By: []string{ByService, ByLevel}})
	})
	for _, req := range []SearchRequest{
		{},
		{Service: "payments", Level: "error", From: t0, To: t0.Add(10 * time.Second)},
		{Query: "ORDERS/12"},
		{TraceID: probe.TraceID},
		{Query: "bad"},
		{Limit: 1000, Host: probe.Host, Tenant: "acme"},
	} {
		same("search", func(st *Store) (any, error) { return st.Search(ctx, req) })
	}
	same("histogram", func(st *Store) (any, error) {
		return st.Histogram(ctx, HistogramRequest{Filter: Filter{Query: "completed", From: t0, To: t0.Add(time.Minute)}, Step: 5 * time.Second})
	})
	same("fields", func(st *Store) (any, error) { return st.Fields(ctx, FieldsRequest{Filter: Filter{Service: "search"}}) })
	same("context", func(st *Store) (any, error) {
		return st.Context(ctx, ContextRequest{Topic: "logs", Partition: 0, Offset: 1234, N: 5})
	})
}

// A segment's offsets commit with it, and only with it: a segment whose
// transaction fails leaves no file and moves no offset; a file left by a
// crash before its commit is removed on Open; buffered events are not
// durable until their segment is.
func TestSegmentOffsetsCommitWithTheFile(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	st := openSegmentStore(t, path, Options{SegmentInterval: time.Hour})
	tp := transport.TopicPartition{Topic: "logs", Partition: 0}
	if n := mustWrite(t, st, genRows(100, "logs", 0, 0, t0, time.Millisecond)); n != 100 {
		t.Fatalf("stored %d of 100", n)
	}
	if next, ok, _ := st.NextOffset(ctx, tp); ok {
		t.Fatalf("NextOffset %d before any segment: buffered events must not count as stored", next)
	}
	if d := st.Durable(); len(d) != 0 {
		t.Fatalf("Durable %v before any segment", d)
	}
	// A replay of buffered rows is skipped, as after a crash.
	if n := mustWrite(t, st, genRows(150, "logs", 0, 0, t0, time.Millisecond)); n != 50 {
		t.Fatalf("replay stored %d, want the 50 new", n)
	}
	st.writeMu.Lock()
	st.beforeCommit = func(driver.Conn) error { return errors.New("injected commit failure") }
	st.writeMu.Unlock()
	if err := st.FlushSegments(ctx); err == nil {
		t.Fatal("FlushSegments succeeded with a failing commit")
	}
	if files := segmentFiles(t, path); len(files) != 0 {
		t.Fatalf("a segment whose commit failed left files %v", files)
	}
	if _, ok, _ := st.NextOffset(ctx, tp); ok {
		t.Fatal("an offset moved with a failed segment")
	}
	st.writeMu.Lock()
	st.beforeCommit = nil
	st.writeMu.Unlock()
	// The failed segment is retried in the background; FlushSegments waits.
	if err := st.FlushSegments(ctx); err != nil {
		t.Fatalf("retry of the same segment: %v", err)
	}
	if next, _, _ := st.NextOffset(ctx, tp); next != 150 {
		t.Fatalf("NextOffset %d after the segment, want 150", next)
	}
	if d := st.Durable(); d[tp] != 150 || len(d) != 1 {
		t.Fatalf("Durable %v, want %v:150", d, tp)
	}
	if d := st.Durable(); len(d) != 0 {
		t.Fatalf("Durable reported again: %v", d)
	}
	mustWrite(t, st, genRows(10, "logs", 0, 150, t0, time.Millisecond)) // buffered, then "lost" below
	// A crash between writing a file and registering it.
	stray := filepath.Join(path+segmentDirSuffix, "1.parquet")
	if err := os.WriteFile(stray, []byte("half a segment"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Simulate the crash: drop the buffer instead of letting Close write it.
	st.writeMu.Lock()
	st.seg.buf.release()
	st.seg.buf = nil
	st.writeMu.Unlock()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openSegmentStore(t, path, Options{})
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the unregistered file %s survived Open: %v", stray, err)
	}
	if next, _, _ := st.NextOffset(ctx, tp); next != 150 {
		t.Fatalf("NextOffset %d after restart, want 150 (the buffered 10 are replayed)", next)
	}
	if n := mustWrite(t, st, genRows(160, "logs", 0, 0, t0, time.Millisecond)); n != 10 {
		t.Fatalf("replay after restart stored %d, want 10", n)
	}
	if err := st.FlushSegments(ctx); err != nil {
		t.Fatal(err)
	}
	if got := countEvents(t, st); got != 160 {
		t.Fatalf("%d events, want 160 exactly once", got)
	}
	if s := mustStats(t, st, StatsRequest{}); s.Events != 160 {
		t.Fatalf("stats count %d events, want 160", s.Events)
	}
}

// The buffer becomes a segment by itself after SegmentInterval, and at
// SegmentRows.
func TestSegmentFlushTriggers(t *testing.T) {
	path := tempDB(t)
	st, err := Open(path, Options{Format: FormatParquet, Retention: -1, SegmentRows: 1000, SegmentInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mustWrite(t, st, genRows(10, "logs", 0, 0, t0, time.Millisecond))
	deadline := time.Now().Add(10 * time.Second)
	for countEvents(t, st) != 10 {
		if time.Now().After(deadline) {
			t.Fatal("buffered events not queryable 10 s after a 50 ms segment interval")
		}
		time.Sleep(20 * time.Millisecond)
	}
	st2 := openSegmentStore(t, tempDB(t), Options{SegmentRows: 1000, SegmentInterval: time.Hour})
	mustWrite(t, st2, genRows(999, "logs", 0, 0, t0, time.Millisecond))
	if n := countEvents(t, st2); n != 0 {
		t.Fatalf("%d events queryable before the segment filled", n)
	}
	mustWrite(t, st2, genRows(1, "logs", 0, 999, t0, time.Millisecond))
	// Written in the background: queryable soon, not necessarily at once.
	deadline = time.Now().Add(10 * time.Second)
	for countEvents(t, st2) != 1000 {
		if time.Now().After(deadline) {
			t.Fatalf("%d events queryable 10 s after SegmentRows were written, want 1000", countEvents(t, st2))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Retention drops whole segments once their newest event expires, and
// deletes their files at the next run.
func TestSegmentRetention(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	st := openSegmentStore(t, path, Options{Retention: time.Hour})
	old := genRows(100, "logs", 0, 0, t0, time.Second)
	mustWrite(t, st, old)
	if err := st.FlushSegments(ctx); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, st, genRows(100, "logs", 0, 100, t0.Add(2*time.Hour), time.Second))
	if err := st.FlushSegments(ctx); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(2*time.Hour + 30*time.Minute)
	d, err := st.EnforceRetention(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Events != 100 {
		t.Fatalf("retention dropped %d events, want the 100 of the old segment", d.Events)
	}
	if n := countEvents(t, st); n != 100 {
		t.Fatalf("%d events after retention, want 100", n)
	}
	if n := len(segmentFiles(t, path)); n != 2 {
		t.Fatalf("%d files right after retention; the expired one stays until the next run (queries may read it)", n)
	}
	if _, err := st.EnforceRetention(ctx, now); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentFiles(t, path)); n != 1 {
		t.Fatalf("%d files after the second run, want 1", n)
	}
	st.Close()
	st = openSegmentStore(t, path, Options{})
	if n := countEvents(t, st); n != 100 {
		t.Fatalf("%d events after reopening, want 100", n)
	}
}

// A dead letter moves its partition's offset: the events buffered before
// it are written first, so a crash cannot skip them.
func TestSegmentDeadLetterWritesBufferFirst(t *testing.T) {
	ctx := context.Background()
	st := openSegmentStore(t, tempDB(t), Options{SegmentInterval: time.Hour})
	mustWrite(t, st, genRows(20, "logs", 0, 0, t0, time.Millisecond))
	if err := st.WriteDeadLetters(ctx, []DeadLetter{{Topic: "logs", Partition: 0, Offset: 20, Time: t0, Reason: "test", Raw: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, st); n != 20 {
		t.Fatalf("%d events durable after a dead letter, want the 20 buffered before it", n)
	}
	if next, _, _ := st.NextOffset(ctx, transport.TopicPartition{Topic: "logs", Partition: 0}); next != 21 {
		t.Fatalf("NextOffset %d, want 21", next)
	}
}

// A data directory written with segments is not opened in the table
// format, whose view would not show their events.
func TestTableFormatRefusesSegments(t *testing.T) {
	path := tempDB(t)
	st := openSegmentStore(t, path, Options{})
	mustWrite(t, st, genRows(10, "logs", 0, 0, t0, time.Millisecond))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Options{DisableMaintenance: true})
	if err == nil || !strings.Contains(err.Error(), "--store-format parquet") {
		t.Fatalf("Open in the table format of a store with segments: %v; want an error naming --store-format parquet", err)
	}
	st = openSegmentStore(t, path, Options{})
	if n := countEvents(t, st); n != 10 {
		t.Fatalf("%d events, want 10", n)
	}
}

func TestSegmentFormatNeedsAPath(t *testing.T) {
	if _, err := Open("", Options{Format: FormatParquet}); err == nil {
		t.Fatal("an in-memory store opened with --store-format parquet")
	}
	if _, err := Open("", Options{Format: "csv"}); err == nil {
		t.Fatal("an unknown format was accepted")
	}
}

// Small segments of one tier are merged into one sorted file; the events,
// their answers and the offsets stay the same, and after a restart only
// the merged file is left.
func TestSegmentCompaction(t *testing.T) {
	ctx := context.Background()
	age := segmentCompactAge
	segmentCompactAge = 0
	t.Cleanup(func() { segmentCompactAge = age })
	path := tempDB(t)
	st := openSegmentStore(t, path, Options{SegmentRows: 4000, SegmentInterval: time.Hour})
	for i := 0; i < 40; i++ {
		mustWrite(t, st, genRows(20, "logs", 0, int64(i*20), t0.Add(time.Duration(40-i)*time.Second), time.Millisecond))
		if err := st.FlushSegments(ctx); err != nil {
			t.Fatal(err)
		}
	}
	before, err := st.Search(ctx, SearchRequest{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for {
		n, err := st.CompactSegments(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	st.writeMu.Lock()
	files := len(st.seg.files)
	st.writeMu.Unlock()
	// 40 files of 20 events (tier 2): merged 16+16+8 into 3 of tier 4
	// (320, 320, 160 events), then those three are too few to merge.
	if total != 40 || files != 3 {
		t.Fatalf("merged %d files into %d; want 40 into 3", total, files)
	}
	after, err := st.Search(ctx, SearchRequest{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("search differs after compaction:\n before %d events\n after  %d events", len(before.Events), len(after.Events))
	}
	var n, distinct int64
	if err := st.db.QueryRow(`SELECT count(*), count(DISTINCT "offset") FROM events`).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != 800 || distinct != 800 {
		t.Fatalf("%d events, %d distinct offsets after compaction; want 800 exactly once", n, distinct)
	}
	st.Close()
	st = openSegmentStore(t, path, Options{SegmentRows: 4000})
	if got := len(segmentFiles(t, path)); got != 3 {
		t.Fatalf("%d files after a restart; the merged-away ones must be removed", got)
	}
	if got := countEvents(t, st); got != 800 {
		t.Fatalf("%d events after a restart, want 800", got)
	}
	if next, _, _ := st.NextOffset(ctx, transport.TopicPartition{Topic: "logs", Partition: 0}); next != 800 {
		t.Fatalf("NextOffset %d after compaction and restart, want 800", next)
	}
}

// TestSegmentIndexRowsMakeACheckpointDue: the rows a segment adds to the
// twin's DuckDB tables (its registration, rollups, trace block range and
// bloom chunks), which DuckDB holds in memory until a checkpoint, are
// counted as they are written, so CheckpointRows bounds that memory. A
// folded token bloom writes tens of rows, not tokenBloomChunks: counting
// every block at full size made checkpoints ~30x more frequent than
// needed; counting none of them let the bloom rows grow RSS until
// CheckpointInterval.
func TestSegmentIndexRowsMakeACheckpointDue(t *testing.T) {
	ctx := context.Background()
	segment := func(st *Store, i int) {
		t.Helper()
		mustWrite(t, st, genRows(100, "logs", 0, int64(i*100), t0.Add(time.Duration(i)*time.Minute), time.Millisecond))
		if err := st.FlushSegments(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// One segment: what its transaction added, counted in the twin.
	st := openSegmentStore(t, tempDB(t), Options{CheckpointRows: 1 << 40, CheckpointInterval: time.Hour})
	segment(st, 0)
	count := func(table string) int64 {
		t.Helper()
		var n int64
		if err := st.db.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM %s.main.%s", twins[st.active], table)).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		return n
	}
	index := count("trace_blocks") + count("trace_bloom") + count("token_bloom")
	added := count("segments") + count("rollups") + index
	st.writeMu.Lock()
	counted := st.uncheckpointed
	st.writeMu.Unlock()
	if counted != added {
		t.Fatalf("one segment of 100 events added %d rows to the twin (%d of them trace/token index rows) but %d were counted toward CheckpointRows", added, index, counted)
	}
	if index < 3 || index >= tokenBloomChunks {
		t.Fatalf("one segment of 100 events wrote %d index rows: want its block's range and a few bloom chunks, far fewer than an unfolded token bloom's %d", index, tokenBloomChunks)
	}

	// Three such segments make a checkpoint due, and two do not (their
	// rollups differ by a row or two: the limit is two and a half).
	limit := added * 5 / 2
	st = openSegmentStore(t, tempDB(t), Options{CheckpointRows: limit, CheckpointInterval: time.Hour})
	for i := range 3 {
		if st.CheckpointDue() {
			t.Fatalf("checkpoint due after %d segments of ~%d rows, want only once they reach CheckpointRows %d", i, added, limit)
		}
		segment(st, i)
	}
	if !st.CheckpointDue() {
		t.Fatalf("no checkpoint due after 3 segments of ~%d rows (CheckpointRows %d): DuckDB would hold them until CheckpointInterval", added, limit)
	}
	if err := st.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSegmentRefusesAnEventItsQueriesCouldNotRead: an event over a quarter
// of --store-memory fails the write whole (nothing buffered, no offset
// moved), naming the flags, so the processor dead-letters it alone; a
// segment holding it would fail every later query over its file.
func TestSegmentRefusesAnEventItsQueriesCouldNotRead(t *testing.T) {
	path := tempDB(t)
	st := openSegmentStore(t, path, Options{MemoryLimit: "16MB"})
	ctx := context.Background()
	ok := Row{Topic: "logs", Offset: 0, Bytes: 10, Event: event.Event{Time: t0, Service: "s", Level: event.LevelInfo, Message: "before"}}
	huge := Row{Topic: "logs", Offset: 1, Bytes: 5 << 20, Event: event.Event{Time: t0, Service: "s", Level: event.LevelInfo, Message: "poison",
		Attrs: []byte(`{"k":"` + strings.Repeat("x", 5<<20) + `"}`)}}
	n, err := st.Write(ctx, []Row{ok, huge})
	if err == nil || n != 0 || !strings.Contains(err.Error(), "--store-memory") {
		t.Fatalf("Write with a 5 MB event at --store-memory 16MB: %d stored, err %v; want 0 and an error naming --store-memory", n, err)
	}
	after := ok
	after.Offset, after.Event.Message = 2, "after"
	if n, err := st.Write(ctx, []Row{ok, after}); err != nil || n != 2 {
		t.Fatalf("Write of the rest: %d, %v", n, err)
	}
	if err := st.FlushSegments(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := st.Search(ctx, SearchRequest{From: t0, To: t0.Add(time.Minute), Limit: 10})
	if err != nil || len(res.Events) != 2 {
		t.Fatalf("search after: %v, %+v; want the 2 events around the refused one", err, res)
	}
}

func TestParseDuckDBSize(t *testing.T) {
	for in, want := range map[string]int64{"256MB": 256e6, "1GB": 1e9, "16 MiB": 16 << 20, "1.5gib": 3 << 29, "4096": 4096, "10 kB": 10e3} {
		if got, err := parseDuckDBSize(in); err != nil || got != want {
			t.Errorf("parseDuckDBSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "12 parsecs", "-1GB"} {
		if got, err := parseDuckDBSize(in); err == nil {
			t.Errorf("parseDuckDBSize(%q) = %d; want an error", in, got)
		}
	}
}

// TestSegmentBuffersAreReleased: a segment's column buffers live outside
// the Go heap (segment_alloc.go), where nothing collects them. Once the
// segment's file is written, its events discarded, or the store closed,
// none may stay mapped; and the file holds what was written, null attrs
// included.
func TestSegmentBuffersAreReleased(t *testing.T) {
	ctx := context.Background()
	base := segmentMapped.Load()
	mapped := func(when string) {
		t.Helper()
		if got := segmentMapped.Load(); got != base {
			t.Fatalf("%s: %d bytes of segment buffers still mapped, want none", when, got-base)
		}
	}
	st := openSegmentStore(t, tempDB(t), Options{SegmentRows: 50000, SegmentInterval: time.Hour})
	rows := genRows(30000, "logs", 0, 0, t0, time.Millisecond)
	for i := range rows {
		if i%3 == 0 {
			rows[i].Event.Attrs = nil
		}
	}
	mustWrite(t, st, rows)
	if runtime.GOOS == "linux" && segmentMapped.Load() <= base {
		t.Fatal("30,000 buffered events mapped nothing: the buffers are on the Go heap, and this test checks nothing")
	}
	if err := st.FlushSegments(ctx); err != nil {
		t.Fatal(err)
	}
	mapped("after the segment was written")
	var n, nulls int64
	if err := st.db.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE attrs IS NULL) FROM events`).Scan(&n, &nulls); err != nil {
		t.Fatal(err)
	}
	if n != 30000 || nulls != 10000 {
		t.Fatalf("the segment holds %d events, %d without attrs; want 30000, 10000", n, nulls)
	}
	mustWrite(t, st, genRows(20000, "logs", 0, 30000, t0, time.Millisecond))
	if d := st.DiscardUnwritten(); d != 20000 {
		t.Fatalf("DiscardUnwritten dropped %d events, want the 20000 buffered", d)
	}
	mapped("after the buffer was discarded")
	mustWrite(t, st, genRows(20000, "logs", 0, 30000, t0, time.Millisecond))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	mapped("after Close wrote the buffer")
}

// TestSegmentGaugesDoNotWaitForTheWriter: the buffered-events and files
// gauges answer a /metrics scrape while the writer holds its lock (a
// segment's registration, a batch being buffered), and say what was
// buffered and registered.
func TestSegmentGaugesDoNotWaitForTheWriter(t *testing.T) {
	st := openSegmentStore(t, tempDB(t), Options{})
	read := func() (buffered, files float64) {
		t.Helper()
		st.writeMu.Lock() // as the writer does through a registration
		defer st.writeMu.Unlock()
		done := make(chan struct{})
		go func() {
			buffered, files = testutil.ToFloat64(st.seg.bufferedRows), testutil.ToFloat64(st.seg.segmentsGauge)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the segment gauges waited for the store's write lock: a scrape stalls behind every segment write")
		}
		return buffered, files
	}
	mustWrite(t, st, genRows(100, "logs", 0, 0, t0, time.Millisecond))
	if b, f := read(); b != 100 || f != 0 {
		t.Fatalf("after 100 buffered events: gauges buffered %v, files %v; want 100, 0", b, f)
	}
	if err := st.FlushSegments(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, f := read(); b != 0 || f != 1 {
		t.Fatalf("after a flush: gauges buffered %v, files %v; want 0, 1", b, f)
	}
}
