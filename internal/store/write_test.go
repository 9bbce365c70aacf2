package store

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/transport"
)

func TestWriteSearchRoundTrip(t *testing.T) {
	st := openTest(t, tempDB(t))
	e := event.Event{
		Time:    time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC),
		Service: "checkout", Level: event.LevelError, Message: `payment "declined" — карта`,
		Host: "node-1", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7",
		Tenant: "acme", Attrs: []byte(`{"amount":12.5,"tags":["a","b"],"nested":{"k":null}}`),
	}
	if n := mustWrite(t, st, []Row{{Topic: "logs", Partition: 3, Offset: 41, Bytes: 321, Event: e}}); n != 1 {
		t.Fatalf("Write stored %d rows, want 1", n)
	}
	res, err := st.Search(context.Background(), SearchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 1 {
		t.Fatalf("Search returned %d events, want 1", len(res.Events))
	}
	got := res.Events[0]
	want := StoredEvent{Time: e.Time, Service: e.Service, Level: "error", Message: e.Message, Host: e.Host,
		TraceID: e.TraceID, SpanID: e.SpanID, Tenant: e.Tenant, Bytes: 321, Topic: "logs", Partition: 3, Offset: 41}
	gotAttrs := got.Attrs
	got.Attrs = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stored event\n got %+v\nwant %+v", got, want)
	}
	var a, b any
	if err := json.Unmarshal(gotAttrs, &a); err != nil {
		t.Fatalf("attrs %q are not JSON: %v", gotAttrs, err)
	}
	json.Unmarshal(e.Attrs, &b)
	if ja, jb := mustJSON(a), mustJSON(b); ja != jb {
		t.Errorf("attrs = %s, want %s", ja, jb)
	}
	next, ok, err := st.NextOffset(context.Background(), transport.TopicPartition{Topic: "logs", Partition: 3})
	if err != nil || !ok || next != 42 {
		t.Errorf("NextOffset = %d, %v, %v; want 42, true, nil", next, ok, err)
	}
	if _, ok, _ := st.NextOffset(context.Background(), transport.TopicPartition{Topic: "logs", Partition: 4}); ok {
		t.Error("NextOffset of a partition never written: ok = true, want false")
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestWriteKeepsInvalidAttrsAsString(t *testing.T) {
	st := openTest(t, tempDB(t))
	rows := genRows(2, "logs", 0, 0, t0, time.Second)
	rows[0].Event.Attrs = []byte(`{"broken":`)
	rows[1].Event.Attrs = nil
	mustWrite(t, st, rows)
	res, err := st.Search(context.Background(), SearchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 2 {
		t.Fatalf("got %d events, want 2 (a bad attrs value must not drop the event)", len(res.Events))
	}
	// Newest first: rows[1] then rows[0].
	if res.Events[0].Attrs != nil {
		t.Errorf("nil attrs came back as %q, want null", res.Events[0].Attrs)
	}
	var s string
	if err := json.Unmarshal(res.Events[1].Attrs, &s); err != nil || s != `{"broken":` {
		t.Errorf("invalid attrs stored as %q, want the JSON string of the original bytes", res.Events[1].Attrs)
	}
}

func TestWriteReplayStoresOnce(t *testing.T) {
	st := openTest(t, tempDB(t))
	batch := genRows(500, "logs", 0, 0, t0, time.Millisecond)
	if n := mustWrite(t, st, batch); n != 500 {
		t.Fatalf("first Write stored %d, want 500", n)
	}
	if n := mustWrite(t, st, batch); n != 0 {
		t.Fatalf("replayed Write stored %d, want 0", n)
	}
	// A replay that overlaps: offsets 250..749, of which 500..749 are new.
	overlap := genRows(500, "logs", 0, 250, t0.Add(250*time.Millisecond), time.Millisecond)
	if n := mustWrite(t, st, overlap); n != 250 {
		t.Fatalf("overlapping Write stored %d, want 250", n)
	}
	// Another partition is independent.
	if n := mustWrite(t, st, genRows(10, "logs", 1, 0, t0, time.Millisecond)); n != 10 {
		t.Fatalf("Write to partition 1 stored %d, want 10", n)
	}
	if got := countEvents(t, st); got != 760 {
		t.Errorf("events table has %d rows, want 760", got)
	}
	if s := mustStats(t, st, StatsRequest{}); s.Events != 760 {
		t.Errorf("Stats.Events = %d, want 760 (rollups must not double-count a replay)", s.Events)
	}
	if got := testutil.ToFloat64(st.metrics.rowsSkipped); got != 750 {
		t.Errorf("rows skipped metric = %v, want 750", got)
	}
	next, _, _ := st.NextOffset(context.Background(), transport.TopicPartition{Topic: "logs", Partition: 0})
	if next != 750 {
		t.Errorf("NextOffset = %d, want 750", next)
	}
}

func TestWriteAbortLeavesNothing(t *testing.T) {
	path := tempDB(t)
	st := openTest(t, path)
	ctx := context.Background()
	mustWrite(t, st, genRows(100, "logs", 0, 0, t0, time.Millisecond))

	// Abort a batch after the Appender flushed its rows and the offset
	// moved inside the transaction: neither may survive.
	abort := errors.New("simulated failure before commit")
	st.beforeCommit = func(conn driver.Conn) error {
		// The writer's own transaction sees its appended rows: the abort
		// happens after the rows really reached the table.
		rows, err := conn.(driver.QueryerContext).QueryContext(ctx, `SELECT count(*) FROM events`, nil)
		if err != nil {
			return err
		}
		dest := make([]driver.Value, 1)
		err = rows.Next(dest)
		rows.Close()
		if err != nil {
			return err
		}
		inTx, _ := dest[0].(int64)
		if inTx != 100+5000 {
			t.Errorf("inside the transaction the writer sees %d rows, want 5100", inTx)
		}
		return abort
	}
	n, err := st.Write(ctx, genRows(5000, "logs", 0, 100, t0.Add(time.Second), time.Millisecond))
	if !errors.Is(err, abort) || n != 0 {
		t.Fatalf("aborted Write = %d, %v; want 0 and the abort error", n, err)
	}
	st.beforeCommit = nil
	check := func(st *Store, when string) {
		t.Helper()
		if got := countEvents(t, st); got != 100 {
			t.Errorf("%s: events table has %d rows, want 100", when, got)
		}
		if s := mustStats(t, st, StatsRequest{}); s.Events != 100 {
			t.Errorf("%s: Stats.Events = %d, want 100 (rollups of the aborted batch must roll back)", when, s.Events)
		}
		next, _, _ := st.NextOffset(ctx, transport.TopicPartition{Topic: "logs", Partition: 0})
		if next != 100 {
			t.Errorf("%s: NextOffset = %d, want 100", when, next)
		}
	}
	check(st, "after abort")
	if got := testutil.ToFloat64(st.metrics.writeErrors); got != 1 {
		t.Errorf("write errors metric = %v, want 1", got)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openTest(t, path)
	check(st, "after reopen")
	// The same batch goes in after the failure.
	if n := mustWrite(t, st, genRows(5000, "logs", 0, 100, t0.Add(time.Second), time.Millisecond)); n != 5000 {
		t.Fatalf("retried Write stored %d, want 5000", n)
	}
}

func TestReopenKeepsDataAndOffsets(t *testing.T) {
	path := tempDB(t)
	st := openTest(t, path)
	mustWrite(t, st, genRows(3000, "logs", 0, 0, t0, time.Millisecond))
	mustWrite(t, st, genRows(1000, "other", 2, 7, t0, time.Millisecond))
	if err := st.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := st.Write(context.Background(), genRows(1, "logs", 0, 9999, t0, 0)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if _, err := st.Stats(context.Background(), StatsRequest{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Stats after Close: %v, want ErrClosed", err)
	}

	st = openTest(t, path)
	if s := mustStats(t, st, StatsRequest{}); s.Events != 4000 {
		t.Errorf("after reopen Stats.Events = %d, want 4000", s.Events)
	}
	for _, c := range []struct {
		tp   transport.TopicPartition
		want int64
	}{{transport.TopicPartition{Topic: "logs", Partition: 0}, 3000}, {transport.TopicPartition{Topic: "other", Partition: 2}, 1007}} {
		next, ok, err := st.NextOffset(context.Background(), c.tp)
		if err != nil || !ok || next != c.want {
			t.Errorf("after reopen NextOffset(%v) = %d, %v, %v; want %d", c.tp, next, ok, err, c.want)
		}
	}
	// Replaying the whole log after the restart stores nothing twice.
	if n := mustWrite(t, st, genRows(3000, "logs", 0, 0, t0, time.Millisecond)); n != 0 {
		t.Errorf("replay after reopen stored %d, want 0", n)
	}
}

func TestOpenDirectoryFails(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(dir, Options{DisableMaintenance: true})
	if err == nil {
		t.Fatal("Open of a directory succeeded, want an error")
	}
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name the path %s", err, dir)
	}
}

func registry(t *testing.T, st *Store) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(st.Collector()); err != nil {
		t.Fatalf("register store collector: %v", err)
	}
	return reg
}

func TestCollectorExportsStoreMetrics(t *testing.T) {
	st := openTest(t, tempDB(t))
	mustWrite(t, st, genRows(10, "logs", 0, 0, t0, time.Second))
	if _, err := st.EnforceRetention(context.Background(), t0); err != nil {
		t.Fatal(err)
	}
	n, err := testutil.GatherAndCount(registry(t, st), "wirelog_store_rows_written_total",
		"wirelog_store_write_seconds", "wirelog_store_batch_rows")
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("found %d of the 3 write metrics", n)
	}
	if got := testutil.ToFloat64(st.metrics.rowsWritten); got != 10 {
		t.Errorf("rows written = %v, want 10", got)
	}
}

func TestWriteRepairsInvalidUTF8(t *testing.T) {
	st := openTest(t, tempDB(t))
	rows := genRows(3, "logs", 0, 0, t0, time.Second)
	rows[1].Event.Message = "bad \xff\xfe bytes"
	rows[1].Event.Service = "svc\xc3"
	rows[1].Event.Attrs = []byte("{\"k\":\"\xff\"}")
	if n := mustWrite(t, st, rows); n != 3 {
		t.Fatalf("stored %d of 3 rows; invalid UTF-8 must not fail the batch", n)
	}
	res, err := st.Search(context.Background(), SearchRequest{Query: "bad"})
	if err != nil || len(res.Events) != 1 {
		t.Fatalf("Search = %v, %v; want the repaired event", res, err)
	}
	e := res.Events[0]
	if e.Message != "bad \uFFFD bytes" || e.Service != "svc\uFFFD" {
		t.Errorf("repaired fields = %q, %q", e.Message, e.Service)
	}
	var attrs map[string]string
	if err := json.Unmarshal(e.Attrs, &attrs); err != nil || attrs["k"] != "\uFFFD" {
		t.Errorf("attrs = %s (%v), want {\"k\":\"\uFFFD\"}", e.Attrs, err)
	}
}
