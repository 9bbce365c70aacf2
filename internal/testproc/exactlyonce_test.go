package testproc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/store"
)

// storeWith writes one event per id (event_id attribute), each at its own
// offset, into a new stopped store, and returns its data directory.
func storeWith(t *testing.T, ids ...string) string {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "wirelog.duckdb"), store.Options{DisableMaintenance: true})
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]store.Row, len(ids))
	for i, id := range ids {
		rows[i] = store.Row{Topic: "t", Offset: int64(i), Bytes: 10, Event: event.Event{
			Time: time.Unix(1_700_000_000+int64(i), 0), Service: "s", Level: event.LevelInfo, Message: "m",
			Attrs: []byte(`{"event_id":"` + id + `"}`)}}
	}
	if _, err := st.Write(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func ackLog(t *testing.T, ids ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "acked.txt")
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(id + "\n")
	}
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The check counts what a user relies on: an acknowledged event stored
// twice (a replay the store did not skip) or not at all fails it, and a
// stored event that was never acknowledged (durable, its answer cut off by
// a kill) does not. Two stores (Kafka processors) are counted together.
func TestCheckExactlyOnce(t *testing.T) {
	clean := CheckExactlyOnce(t, ackLog(t, "r-0", "r-1", "r-2"), storeWith(t, "r-0", "r-1", "r-2", "r-3"))
	if !clean.OK() || clean.Acked != 3 || clean.Rows != 4 || clean.RollupCount != 4 {
		t.Errorf("every acknowledged event once (and one unacknowledged): %v, OK %v", clean, clean.OK())
	}
	bad := CheckExactlyOnce(t, ackLog(t, "r-0", "r-1", "r-2", "r-9"), storeWith(t, "r-0", "r-1", "r-2", "r-1"))
	if bad.OK() || bad.Duplicated != 1 || bad.Missing != 1 || bad.Rows != 4 || bad.Distinct != 3 {
		t.Errorf("r-1 twice and r-9 missing: %v", bad)
	}
	if !strings.Contains(bad.String(), "stored 2 times: r-1") || !strings.Contains(bad.String(), "missing: r-9") {
		t.Errorf("the report does not name the ids: %v", bad)
	}
	across := CheckExactlyOnce(t, ackLog(t, "r-0", "r-1"), storeWith(t, "r-0", "r-1"), storeWith(t, "r-1"))
	if across.OK() || across.Duplicated != 1 {
		t.Errorf("r-1 in two stores: %v", across)
	}
	if none := CheckExactlyOnce(t, ackLog(t), storeWith(t, "r-0")); none.OK() {
		t.Errorf("nothing acknowledged proves nothing, yet OK: %v", none)
	}
}
