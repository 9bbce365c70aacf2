package store

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"
)

// TestMinuteRollupsMatchSeconds: stats and rollups read whole minutes from
// rollups_minute; their answers must equal sums of the per-second rows for
// any window, before and after compaction, after a retention cut in the
// middle of a minute, and after a restart.
func TestMinuteRollupsMatchSeconds(t *testing.T) {
	path := tempDB(t)
	st, err := Open(path, Options{DisableMaintenance: true, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	start := t0.Add(17 * time.Second)
	for off := int64(0); off < 12000; off += 1000 { // ten minutes, a partial row set per batch
		mustWrite(t, st, genRows(1000, "logs", 0, off, start.Add(time.Duration(off)*50*time.Millisecond), 50*time.Millisecond))
	}
	windows := [][2]time.Time{
		{},
		{t0.Add(37 * time.Second), t0.Add(7*time.Minute + 13*time.Second)},
		{t0.Add(time.Minute), t0.Add(5 * time.Minute)},
		{t0.Add(2 * time.Minute), {}},
		{{}, t0.Add(4*time.Minute + time.Second)},
	}
	check := func(when string) {
		t.Helper()
		for _, w := range windows {
			from, to := int64(math.MinInt64), int64(math.MaxInt64)
			if !w[0].IsZero() {
				from = w[0].Unix()
			}
			if !w[1].IsZero() {
				to = w[1].Unix()
			}
			var want, wantBytes int64
			if err := st.db.QueryRow(`SELECT coalesce(sum(count), 0)::BIGINT, coalesce(sum(bytes), 0)::BIGINT FROM rollups WHERE sec >= $1 AND sec < $2`, from, to).Scan(&want, &wantBytes); err != nil {
				t.Fatal(err)
			}
			got := mustStats(t, st, StatsRequest{From: w[0], To: w[1]})
			if got.Events != want || got.Bytes != wantBytes {
				t.Fatalf("%s: stats over %v: %d events, %d bytes; the per-second rows hold %d, %d", when, w, got.Events, got.Bytes, want, wantBytes)
			}
			var byLevel int64
			for _, n := range got.ByLevel {
				byLevel += n
			}
			if byLevel != want {
				t.Fatalf("%s: stats over %v: levels sum to %d, want %d", when, w, byLevel, want)
			}
		}
		// A series at step 1m over the whole store, by service.
		r, err := st.Rollups(ctx, RollupsRequest{From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Step: time.Minute, By: []string{ByService}})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, s := range r.Series {
			for _, p := range s.Points {
				got[fmt.Sprintf("%s@%d", *s.Service, p.Time.Unix())] += p.Count
			}
		}
		rows, err := st.db.Query(`SELECT service, (sec - ((sec % 60) + 60) % 60) AS b, sum(count)::BIGINT FROM rollups GROUP BY ALL`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var svc string
			var b, c int64
			if err := rows.Scan(&svc, &b, &c); err != nil {
				t.Fatal(err)
			}
			if k := fmt.Sprintf("%s@%d", svc, b); got[k] != c {
				t.Fatalf("%s: rollups step 1m: %s = %d, the per-second rows hold %d", when, k, got[k], c)
			}
			n++
		}
		if n != len(got) {
			t.Fatalf("%s: rollups step 1m: %d points, the per-second rows make %d", when, len(got), n)
		}
	}
	check("before compaction")
	if err := st.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	check("after compaction")
	var minuteRows, keys int64
	st.db.QueryRow(`SELECT count(*), count(DISTINCT (minute, service, level, tenant)) FROM rollups_minute`).Scan(&minuteRows, &keys)
	if minuteRows != keys {
		t.Fatalf("after compaction: %d minute rows for %d keys", minuteRows, keys)
	}
	// Retention cuts at 3m25s after t0: inside a minute.
	if _, err := st.EnforceRetention(ctx, t0.Add(3*time.Minute+25*time.Second).Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	check("after retention")
	st.Close()
	st, err = Open(path, Options{DisableMaintenance: true, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	check("after a restart")
	mustWrite(t, st, genRows(500, "logs", 0, 12000, start.Add(-2*time.Minute), 10*time.Millisecond)) // late events
	check("after late events")
}
