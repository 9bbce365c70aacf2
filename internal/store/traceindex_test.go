package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"testing"
	"time"
)

// traceRows makes n rows of one partition from offset first whose trace ids
// are random-looking (as real ones are, so zone maps cannot help), four
// consecutive events per trace.
func traceRows(n int, first int64, start time.Time) []Row {
	rows := genRows(n, "logs", 0, first, start, time.Millisecond)
	for i := range rows {
		rows[i].Event.TraceID = traceIDOf(rows[i].Offset / 4)
	}
	return rows
}

func traceIDOf(trace int64) string { return fmt.Sprintf("%032x", mix64(uint64(trace)+1)) }

// wantTrace counts the events of a trace with a plain scan, no index.
func wantTrace(t *testing.T, st *Store, id string) int {
	t.Helper()
	var n int
	if err := st.db.QueryRow(`SELECT count(*) FROM events WHERE trace_id = ?`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func searchTrace(t *testing.T, st *Store, id string) int {
	t.Helper()
	res, err := st.Search(context.Background(), SearchRequest{TraceID: id, Limit: MaxSearchLimit})
	if err != nil {
		t.Fatalf("Search(trace_id=%s): %v", id, err)
	}
	for _, e := range res.Events {
		if e.TraceID != id {
			t.Fatalf("Search(trace_id=%s) returned an event of trace %s", id, e.TraceID)
		}
	}
	return len(res.Events)
}

// checkTraces looks up every 997th trace and one that does not exist, and
// compares each answer with a full scan.
func checkTraces(t *testing.T, st *Store, stored int64) {
	t.Helper()
	for tr := int64(0); tr < stored/4; tr += 997 {
		id := traceIDOf(tr)
		want := wantTrace(t, st, id)
		if want == 0 {
			t.Fatalf("trace %d is not stored at all; the test is wrong", tr)
		}
		if got := searchTrace(t, st, id); got != want {
			t.Fatalf("trace %s: search found %d events, a full scan %d", id, got, want)
		}
	}
	if got := searchTrace(t, st, traceIDOf(stored)); got != 0 {
		t.Fatalf("a trace never stored found %d events", got)
	}
}

func TestTraceLookupUsesBlocksAcrossTwins(t *testing.T) {
	path := tempDB(t)
	st := openTest(t, path)
	ctx := context.Background()
	total := int64(3*TraceBlockRows + 5000)
	for off := int64(0); off < total; off += 10000 {
		n := min(10000, total-off)
		mustWrite(t, st, traceRows(int(n), off, t0.Add(time.Duration(off)*time.Millisecond)))
		if off == 100000 {
			// Switch twins mid-way, as the processor does.
			if err := st.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	var blocks int
	if err := st.db.QueryRow(`SELECT count(*) FROM trace_blocks`).Scan(&blocks); err != nil {
		t.Fatal(err)
	}
	if blocks < 2 {
		t.Fatalf("%d trace blocks sealed after %d events, want at least 2", blocks, total)
	}
	checkTraces(t, st, total)

	// The API's search (SearchNewest) answers trace ids the same way.
	id := traceIDOf(4242)
	res, err := st.SearchNewest(ctx, SearchRequest{TraceID: id, Limit: 10})
	if err != nil {
		t.Fatalf("SearchNewest(trace_id=%s): %v", id, err)
	}
	if want := wantTrace(t, st, id); len(res.Events) != want {
		t.Fatalf("SearchNewest(trace_id=%s) found %d events, want %d", id, len(res.Events), want)
	}

	// A hit in a sealed block narrows the scan to that block's time range.
	ranges, indexed, err := st.traceRanges(ctx, traceIDOf(10))
	if err != nil || !indexed {
		t.Fatalf("traceRanges: %v, indexed %v", err, indexed)
	}
	if len(ranges) == 0 || len(ranges) > 3 {
		t.Fatalf("trace 10 may be in %d ranges, want 1 to 3 (its block, and a rare false positive)", len(ranges))
	}
	if span := ranges[0].to.Sub(ranges[0].from); span > 2*TraceBlockRows*time.Millisecond {
		t.Fatalf("the first range spans %s, more than a block's events", span)
	}

	// The open blocks are rebuilt from the events on reopen.
	st.Close()
	st = openTest(t, path)
	checkTraces(t, st, total)
	// Writes go on sealing blocks after the reopen.
	mustWrite(t, st, traceRows(TraceBlockRows, total, t0.Add(time.Duration(total)*time.Millisecond)))
	checkTraces(t, st, total+TraceBlockRows)
}

// A batch that would seal a block and is rolled back leaves the block open;
// the next batch seals it, and no event is missed.
func TestTraceBlockSealRolledBack(t *testing.T) {
	st := openTest(t, tempDB(t))
	mustWrite(t, st, traceRows(TraceBlockRows-100, 0, t0))
	st.beforeCommit = func(driver.Conn) error { return errors.New("injected failure") }
	if _, err := st.Write(context.Background(), traceRows(200, TraceBlockRows-100, t0.Add(time.Minute))); err == nil {
		t.Fatal("the injected failure did not fail the write")
	}
	st.beforeCommit = nil
	var blocks int
	if err := st.db.QueryRow(`SELECT count(*) FROM trace_blocks`).Scan(&blocks); err != nil {
		t.Fatal(err)
	}
	if blocks != 0 {
		t.Fatalf("%d trace blocks stored by a rolled-back write", blocks)
	}
	mustWrite(t, st, traceRows(200, TraceBlockRows-100, t0.Add(time.Minute)))
	if err := st.db.QueryRow(`SELECT count(*) FROM trace_blocks`).Scan(&blocks); err != nil {
		t.Fatal(err)
	}
	if blocks != 1 {
		t.Fatalf("%d trace blocks after the retried write, want 1", blocks)
	}
	checkTraces(t, st, TraceBlockRows+100)
}

// A store written before the index existed (no cover, many rows) is
// searched by a full scan and still answers.
func TestTraceLookupOnUnindexedStore(t *testing.T) {
	path := tempDB(t)
	st := openTest(t, path)
	total := int64(traceRebuildMax + 20000)
	for off := int64(0); off < total; off += 20000 {
		mustWrite(t, st, traceRows(20000, off, t0.Add(time.Duration(off)*time.Millisecond)))
	}
	for _, q := range []string{`DELETE FROM wl_a.trace_bloom`, `DELETE FROM wl_a.trace_blocks`, `DELETE FROM wl_a.trace_cover`} {
		if _, err := st.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	st = openTest(t, path)
	if _, indexed, err := st.traceRanges(context.Background(), traceIDOf(1)); err != nil || indexed {
		t.Fatalf("traceRanges on a store without its index: indexed %v, err %v; want a full scan", indexed, err)
	}
	checkTraces(t, st, total)
	// New writes must not seal a block that claims to cover the old rows:
	// after another restart every trace is still found.
	mustWrite(t, st, traceRows(TraceBlockRows+10, total, t0.Add(time.Duration(total)*time.Millisecond)))
	st.Close()
	st = openTest(t, path)
	checkTraces(t, st, total+TraceBlockRows+10)
}

func TestTraceBlocksExpireWithRetention(t *testing.T) {
	st := openTest(t, tempDB(t))
	st.opts.Retention = time.Hour
	mustWrite(t, st, traceRows(TraceBlockRows+10, 0, t0))
	if _, err := st.EnforceRetention(context.Background(), t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var blocks, chunks int
	if err := st.db.QueryRow(`SELECT (SELECT count(*) FROM trace_blocks), (SELECT count(*) FROM trace_bloom)`).Scan(&blocks, &chunks); err != nil {
		t.Fatal(err)
	}
	if blocks != 0 || chunks != 0 {
		t.Fatalf("%d trace blocks and %d bloom chunks left after every event expired", blocks, chunks)
	}
}

func TestMergeRanges(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	got := mergeRanges([]tsRange{{from: at(10), to: at(20)}, {from: at(0), to: at(5)}, {from: at(15), to: at(30)}, {from: at(5), to: at(6)}, {from: at(40), to: at(41)}})
	want := []tsRange{{from: at(0), to: at(6)}, {from: at(10), to: at(30)}, {from: at(40), to: at(41)}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("mergeRanges = %v, want %v", got, want)
	}
}

// The sealed hook (for a write path that keeps rows outside the twins'
// events table) stores a block in the caller's transaction at once; its
// rows are found through it, and a reopen has nothing to rebuild for them.
func TestTraceIndexSealedHook(t *testing.T) {
	path := tempDB(t)
	st := openTest(t, path)
	rows := traceRows(3000, 0, t0)
	keep := make([]bool, len(rows))
	for i := range keep {
		keep[i] = true
	}
	// The caller's transaction: the rows go in as usual, the block sealed.
	err := st.withWriter(func(conn driver.Conn) error {
		ex := conn.(driver.ExecerContext)
		if _, err := ex.ExecContext(context.Background(), "BEGIN TRANSACTION", nil); err != nil {
			return err
		}
		if err := st.appendEvents(conn, rows, keep); err != nil {
			return err
		}
		if err := st.indexTracesSealed(context.Background(), conn, st.active, rows, nil); err != nil {
			return err
		}
		_, err := ex.ExecContext(context.Background(), "COMMIT", nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var blocks int
	if err := st.db.QueryRow(`SELECT count(*) FROM trace_blocks`).Scan(&blocks); err != nil || blocks != 1 {
		t.Fatalf("%d sealed blocks (err %v), want 1", blocks, err)
	}
	if got := searchTrace(t, st, traceIDOf(100)); got != 4 {
		t.Fatalf("trace 100: %d events through the sealed block, want 4", got)
	}
}

// With segment files (--store-format parquet) every segment is indexed in
// the transaction that registers it, also after a reopen.
func TestTraceLookupOverSegments(t *testing.T) {
	path := tempDB(t)
	st := openSegmentStore(t, path, Options{SegmentRows: 50000})
	total := int64(TraceBlockRows + 30000)
	for off := int64(0); off < total; off += 10000 {
		mustWrite(t, st, traceRows(10000, off, t0.Add(time.Duration(off)*time.Millisecond)))
	}
	if err := st.FlushSegments(context.Background()); err != nil {
		t.Fatal(err)
	}
	var blocks int
	if err := st.db.QueryRow(`SELECT count(*) FROM trace_blocks`).Scan(&blocks); err != nil || blocks < 2 {
		t.Fatalf("%d trace blocks for %d events in segments (err %v), want at least 2", blocks, total, err)
	}
	checkTraces(t, st, total)
	st.Close()
	st = openSegmentStore(t, path, Options{SegmentRows: 50000})
	if _, indexed, err := st.traceRanges(context.Background(), traceIDOf(1)); err != nil || !indexed {
		t.Fatalf("after a reopen: indexed %v, err %v", indexed, err)
	}
	checkTraces(t, st, total)
}
