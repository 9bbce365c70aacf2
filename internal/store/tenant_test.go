package store

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// TestOpenMigratesRollupsWithoutTenant opens a database written before
// rollups had a tenant: its rows count as tenant "", new rows keep their
// tenants apart from them, compaction of a minute holding both keeps every
// sum, and opening again changes nothing.
func TestOpenMigratesRollupsWithoutTenant(t *testing.T) {
	path := tempDB(t)
	old, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE rollups (sec BIGINT NOT NULL, service VARCHAR NOT NULL,
			level ` + levelEnum + ` NOT NULL, count BIGINT NOT NULL, bytes BIGINT NOT NULL)`,
		// Two partial rows of one key, as Write appended them before compaction.
		`INSERT INTO rollups VALUES (1772366400, 'checkout', 'info', 3, 300), (1772366400, 'checkout', 'info', 2, 200),
			(1772366401, 'payments', 'error', 1, 100)`,
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatalf("build the old database: %s: %v", q, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if got := time.Unix(1772366400, 0).UTC(); !got.Equal(t0) {
		t.Fatalf("test data is at %s, want t0 %s", got, t0)
	}

	st, err := Open(path, Options{DisableMaintenance: true, Retention: -1})
	if err != nil {
		t.Fatalf("Open of a database without rollups.tenant: %v", err)
	}
	if s := mustStats(t, st, StatsRequest{}); s.Events != 6 || s.Bytes != 600 {
		t.Fatalf("after migration: %d events, %d bytes; want the old 6 and 600", s.Events, s.Bytes)
	}
	if s := mustStats(t, st, StatsRequest{Tenant: "acme"}); s.Events != 0 {
		t.Fatalf("old rows counted for tenant acme: %d", s.Events)
	}
	// New rows in the same minute, tenants acme and globex alternating.
	mustWrite(t, st, genRows(10, "logs", 0, 0, t0, 100*time.Millisecond))
	if err := st.Compact(context.Background()); err != nil {
		t.Fatalf("Compact over old and new rows: %v", err)
	}
	st.Close()

	st = openTest(t, path) // the migration again: must be a no-op
	want := map[string]int64{"": 6, "acme": 5, "globex": 5}
	r, err := st.Rollups(context.Background(), RollupsRequest{From: t0, To: t0.Add(time.Minute), Step: time.Minute, By: []string{ByTenant}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, s := range r.Series {
		if s.Tenant == nil {
			t.Fatalf("series without a tenant in a by=tenant answer: %+v", s)
		}
		for _, p := range s.Points {
			got[*s.Tenant] += p.Count
		}
	}
	if len(got) != len(want) || got[""] != want[""] || got["acme"] != want["acme"] || got["globex"] != want["globex"] {
		t.Errorf("rollups by tenant after migration, write, compaction and reopen = %v, want %v", got, want)
	}
	var rows, keys int64
	st.db.QueryRow(`SELECT count(*), count(DISTINCT (sec, service, level, tenant)) FROM rollups`).Scan(&rows, &keys)
	if rows != keys {
		t.Errorf("rollups after compaction: %d rows for %d keys, want one row per key", rows, keys)
	}
	var nulls int64
	st.db.QueryRow(`SELECT count(*) FROM rollups WHERE tenant IS NULL`).Scan(&nulls)
	if nulls != 0 {
		t.Errorf("%d rollup rows with a NULL tenant; old rows must get ''", nulls)
	}
}
