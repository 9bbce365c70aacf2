package store

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/transport"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func openTest(t testing.TB, path string) *Store {
	t.Helper()
	st, err := Open(path, Options{DisableMaintenance: true, Retention: -1})
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func tempDB(t testing.TB) string { return filepath.Join(t.TempDir(), "wirelog.duckdb") }

var (
	testServices = []string{"checkout", "payments", "search", "auth", "cart"}
	testLevels   = []event.Level{event.LevelInfo, event.LevelInfo, event.LevelInfo, event.LevelDebug, event.LevelWarn, event.LevelError}
)

// genRows makes n realistic rows (~250 bytes each as JSON) of one
// partition starting at offset first, one every step of event time from start.
func genRows(n int, topic string, partition int32, first int64, start time.Time, step time.Duration) []Row {
	rows := make([]Row, n)
	for i := range rows {
		off := first + int64(i)
		e := event.Event{
			Time:    start.Add(time.Duration(i) * step),
			Service: testServices[int(off)%len(testServices)],
			Level:   testLevels[int(off)%len(testLevels)],
			Message: fmt.Sprintf("GET /api/v1/orders/%d completed status=200 in %dms for user u-%d", off, off%97, off%1013),
			Host:    fmt.Sprintf("node-%d.cluster.local", off%7),
			TraceID: fmt.Sprintf("%032x", off*7919),
			SpanID:  fmt.Sprintf("%016x", off*104729),
			Tenant:  []string{"acme", "globex"}[off%2],
			Attrs:   []byte(fmt.Sprintf(`{"latency_ms":%d,"route":"/api/v1/orders","status":200}`, off%97)),
		}
		var buf []byte
		buf = event.AppendJSON(buf, &e)
		rows[i] = Row{Topic: topic, Partition: partition, Offset: off, Bytes: len(buf), Event: e}
	}
	return rows
}

func mustWrite(t testing.TB, st *Store, rows []Row) int {
	t.Helper()
	n, err := st.Write(context.Background(), rows)
	if err != nil {
		t.Fatalf("Write(%d rows): %v", len(rows), err)
	}
	return n
}

func mustStats(t testing.TB, st *Store, req StatsRequest) *Stats {
	t.Helper()
	s, err := st.Stats(context.Background(), req)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

func countEvents(t testing.TB, st *Store) int64 {
	t.Helper()
	var n int64
	if err := st.db.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func (r Row) tp() transport.TopicPartition {
	return transport.TopicPartition{Topic: r.Topic, Partition: r.Partition}
}

func (s *Store) dirtyMinutes() []int64 {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var m []int64
	for _, d := range s.dirty {
		for k := range d {
			m = append(m, k)
		}
	}
	return m
}

// waitCheckpoint waits for a background checkpoint to end.
func (s *Store) waitCheckpoint() {
	s.writeMu.Lock()
	done := s.ckDone
	s.writeMu.Unlock()
	if done != nil {
		<-done
	}
}

// sameAnswer returns a check that a query gives the same answer on the
// table and on the segment store holding the same events.
func sameAnswer(t *testing.T, table, seg *Store) func(name string, q func(st *Store) (any, error)) {
	return func(name string, q func(st *Store) (any, error)) {
		t.Helper()
		a, err := q(table)
		if err != nil {
			t.Fatalf("%s on the table: %v", name, err)
		}
		b, err := q(seg)
		if err != nil {
			t.Fatalf("%s on segments: %v", name, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s differs:\n table    %+v\n segments %+v", name, a, b)
		}
	}
}
