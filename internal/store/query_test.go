package store

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"testing"
	"time"
)

// knownStore holds 3 batches over 10 minutes of event time, on 2 partitions.
func knownStore(t *testing.T) (*Store, []Row) {
	t.Helper()
	st := openTest(t, tempDB(t))
	var all []Row
	for i, b := range [][]Row{
		genRows(1200, "logs", 0, 0, t0, 250*time.Millisecond),                    // 12:00:00 .. 12:05:00
		genRows(1200, "logs", 1, 0, t0.Add(5*time.Minute), 250*time.Millisecond), // 12:05:00 .. 12:10:00
		genRows(600, "logs", 0, 1200, t0, 500*time.Millisecond),                  // overlaps the first window
	} {
		if n := mustWrite(t, st, b); n != len(b) {
			t.Fatalf("batch %d stored %d of %d", i, n, len(b))
		}
		all = append(all, b...)
	}
	return st, all
}

func expectStats(rows []Row, from, to time.Time, tenant string) (events, bytes int64, byLevel, byService map[string]int64) {
	byLevel, byService = map[string]int64{}, map[string]int64{}
	for _, r := range rows {
		ts := r.Event.Time
		if (!from.IsZero() && ts.Before(from)) || (!to.IsZero() && !ts.Before(to)) {
			continue
		}
		if tenant != "" && r.Event.Tenant != tenant {
			continue
		}
		events++
		bytes += int64(r.Bytes)
		byLevel[r.Event.Level.String()]++
		byService[r.Event.Service]++
	}
	return
}

func TestStatsMatchKnownData(t *testing.T) {
	st, rows := knownStore(t)
	for _, c := range []struct {
		name     string
		from, to time.Time
		tenant   string
	}{
		{"everything", time.Time{}, time.Time{}, ""},
		{"first minute", t0, t0.Add(time.Minute), ""},
		{"open start", time.Time{}, t0.Add(90 * time.Second), ""},
		{"open end", t0.Add(7 * time.Minute), time.Time{}, ""},
		{"empty window", t0.Add(time.Hour), t0.Add(2 * time.Hour), ""},
		{"tenant acme", time.Time{}, time.Time{}, "acme"},
		{"tenant globex, first minute", t0, t0.Add(time.Minute), "globex"},
		{"unknown tenant", time.Time{}, time.Time{}, "initech"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, compacted := range []bool{false, true} {
				if compacted {
					if err := st.Compact(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
				got := mustStats(t, st, StatsRequest{From: c.from, To: c.to, Tenant: c.tenant})
				events, bytes, byLevel, byService := expectStats(rows, c.from, c.to, c.tenant)
				if got.Events != events || got.Bytes != bytes {
					t.Errorf("compacted=%v: events, bytes = %d, %d; want %d, %d", compacted, got.Events, got.Bytes, events, bytes)
				}
				for l, n := range got.ByLevel {
					if n != byLevel[l] {
						t.Errorf("compacted=%v: by_level[%s] = %d, want %d", compacted, l, n, byLevel[l])
					}
				}
				for _, l := range []string{"trace", "debug", "info", "warn", "error", "fatal"} {
					if _, ok := got.ByLevel[l]; !ok {
						t.Errorf("by_level lacks %q; every level is listed, zero included", l)
					}
				}
				nonZero := map[string]int64{}
				for s, n := range got.ByService {
					nonZero[s] = n
				}
				if len(byService) > 0 && !reflect.DeepEqual(nonZero, byService) {
					t.Errorf("compacted=%v: by_service = %v, want %v", compacted, got.ByService, byService)
				}
			}
		})
	}
}

func TestRollupsMatchKnownData(t *testing.T) {
	st, rows := knownStore(t)
	ctx := context.Background()
	type key struct {
		svc, lvl, ten string
		bucket        int64
	}
	expect := func(by []string, service, level, tenant string, from, to time.Time, step int64) map[key][2]int64 {
		m := map[key][2]int64{}
		for _, r := range rows {
			ts := r.Event.Time
			if ts.Before(from) || !ts.Before(to) {
				continue
			}
			if (service != "" && r.Event.Service != service) || (level != "" && r.Event.Level.String() != level) ||
				(tenant != "" && r.Event.Tenant != tenant) {
				continue
			}
			var k key
			for _, d := range by {
				if d == ByService {
					k.svc = r.Event.Service
				}
				if d == ByLevel {
					k.lvl = r.Event.Level.String()
				}
				if d == ByTenant {
					k.ten = r.Event.Tenant
				}
			}
			sec := ts.Unix()
			k.bucket = sec - sec%step
			v := m[k]
			v[0]++
			v[1] += int64(r.Bytes)
			m[k] = v
		}
		return m
	}
	for _, c := range []struct {
		name                   string
		by                     []string
		service, level, tenant string
		from, to               time.Time
		step                   time.Duration
	}{
		{"total per minute", nil, "", "", "", t0, t0.Add(10 * time.Minute), time.Minute},
		{"by service per 30s", []string{ByService}, "", "", "", t0, t0.Add(10 * time.Minute), 30 * time.Second},
		{"by service and level per 7s", []string{ByService, ByLevel}, "", "", "", t0.Add(-time.Hour), t0.Add(time.Hour), 7 * time.Second},
		{"level filter by service per second", []string{ByService}, "", "error", "", t0, t0.Add(3 * time.Minute), time.Second},
		{"service filter by level", []string{ByLevel}, "payments", "", "", t0.Add(2 * time.Minute), t0.Add(8 * time.Minute), 45 * time.Second},
		{"by tenant per minute", []string{ByTenant}, "", "", "", t0, t0.Add(10 * time.Minute), time.Minute},
		{"by service, level, tenant per 13s", []string{ByService, ByLevel, ByTenant}, "", "", "", t0, t0.Add(10 * time.Minute), 13 * time.Second},
		{"tenant filter by level", []string{ByLevel}, "", "", "acme", t0, t0.Add(10 * time.Minute), 30 * time.Second},
		{"tenant filter by tenant", []string{ByTenant}, "", "", "globex", t0, t0.Add(10 * time.Minute), time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, compacted := range []bool{false, true} {
				if compacted {
					if err := st.Compact(ctx); err != nil {
						t.Fatal(err)
					}
				}
				got, err := st.Rollups(ctx, RollupsRequest{From: c.from, To: c.to, Step: c.step, By: c.by, Service: c.service, Level: c.level, Tenant: c.tenant})
				if err != nil {
					t.Fatal(err)
				}
				m := map[key][2]int64{}
				for _, s := range got.Series {
					var k key
					if s.Service != nil {
						k.svc = *s.Service
					}
					if s.Level != nil {
						k.lvl = *s.Level
					}
					if s.Tenant != nil {
						k.ten = *s.Tenant
					}
					if !sort.SliceIsSorted(s.Points, func(i, j int) bool { return s.Points[i].Time.Before(s.Points[j].Time) }) {
						t.Errorf("points of %+v are not sorted by time", k)
					}
					for _, p := range s.Points {
						k.bucket = p.Time.Unix()
						if _, dup := m[k]; dup {
							t.Errorf("bucket %+v appears twice", k)
						}
						m[k] = [2]int64{p.Count, p.Bytes}
					}
				}
				want := expect(c.by, c.service, c.level, c.tenant, c.from, c.to, int64(c.step/time.Second))
				if !reflect.DeepEqual(m, want) {
					t.Errorf("compacted=%v: got %d buckets, want %d; mismatch", compacted, len(m), len(want))
					for k, v := range want {
						if m[k] != v {
							t.Errorf("  %+v: got %v want %v", k, m[k], v)
							break
						}
					}
				}
			}
		})
	}
}

func TestCompactShrinksRollupsKeepingSums(t *testing.T) {
	st := openTest(t, tempDB(t))
	// 20 batches of the same 2 seconds: 20 partial rows per key.
	for i := range 20 {
		mustWrite(t, st, genRows(100, "logs", 0, int64(i*100), t0, 20*time.Millisecond))
	}
	rollupRows := func() (n int64) {
		st.db.QueryRow(`SELECT count(*) FROM rollups`).Scan(&n)
		return n
	}
	before := rollupRows()
	statsBefore := mustStats(t, st, StatsRequest{})
	acmeBefore := mustStats(t, st, StatsRequest{Tenant: "acme"})
	if err := st.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := rollupRows()
	var keys int64
	st.db.QueryRow(`SELECT count(*) FROM (SELECT DISTINCT sec, service, level, tenant FROM rollups)`).Scan(&keys)
	if after != keys || after >= before {
		t.Errorf("rollups rows: %d before, %d after compaction, %d distinct keys; want after == keys < before", before, after, keys)
	}
	if got := mustStats(t, st, StatsRequest{Tenant: "acme"}); !reflect.DeepEqual(got, acmeBefore) || got.Events == 0 || got.Events == statsBefore.Events {
		t.Errorf("acme's stats changed by compaction (tenants must stay apart): %+v -> %+v", acmeBefore, got)
	}
	if got := mustStats(t, st, StatsRequest{}); !reflect.DeepEqual(got, statsBefore) {
		t.Errorf("stats changed by compaction: %+v -> %+v", statsBefore, got)
	}
}

func TestSearchFilters(t *testing.T) {
	st, rows := knownStore(t)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		req  SearchRequest
		keep func(r Row) bool
	}{
		{"default limit", SearchRequest{}, func(Row) bool { return true }},
		{"service", SearchRequest{Service: "payments", Limit: 10000}, func(r Row) bool { return r.Event.Service == "payments" }},
		{"level", SearchRequest{Level: "warn", Limit: 10000}, func(r Row) bool { return r.Event.Level.String() == "warn" }},
		{"query is a case-insensitive substring", SearchRequest{Query: "ORDERS/12", Limit: 10000}, func(r Row) bool { return containsFold(r.Event.Message, "orders/12") }},
		{"trace id", SearchRequest{TraceID: rows[42].Event.TraceID}, func(r Row) bool { return r.Event.TraceID == rows[42].Event.TraceID }},
		{"tenant and level", SearchRequest{Tenant: "globex", Level: "error", Limit: 10000}, func(r Row) bool {
			return r.Event.Tenant == "globex" && r.Event.Level.String() == "error"
		}},
		{"window", SearchRequest{From: t0.Add(time.Minute), To: t0.Add(2 * time.Minute), Limit: 10000}, func(r Row) bool {
			return !r.Event.Time.Before(t0.Add(time.Minute)) && r.Event.Time.Before(t0.Add(2*time.Minute))
		}},
		{"limit 7", SearchRequest{Service: "auth", Limit: 7}, func(r Row) bool { return r.Event.Service == "auth" }},
		{"no match", SearchRequest{Query: "no such text"}, func(Row) bool { return false }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var want []Row
			for _, r := range rows {
				if c.keep(r) {
					want = append(want, r)
				}
			}
			sort.SliceStable(want, func(i, j int) bool {
				a, b := want[i], want[j]
				if !a.Event.Time.Equal(b.Event.Time) {
					return a.Event.Time.After(b.Event.Time)
				}
				if a.Partition != b.Partition {
					return a.Partition > b.Partition
				}
				return a.Offset > b.Offset
			})
			limit := c.req.Limit
			if limit == 0 {
				limit = DefaultSearchLimit
			}
			more := len(want) > limit
			if more {
				want = want[:limit]
			}
			got, err := st.Search(ctx, c.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Events) != len(want) || got.More != more || got.Limit != limit {
				t.Fatalf("got %d events (more=%v, limit=%d), want %d (more=%v, limit=%d)", len(got.Events), got.More, got.Limit, len(want), more, limit)
			}
			for i := range want {
				g, w := got.Events[i], want[i]
				if g.Partition != w.Partition || g.Offset != w.Offset || !g.Time.Equal(w.Event.Time) || g.Message != w.Event.Message {
					t.Fatalf("event %d = %s/%d@%d %s, want %d@%d %s", i, g.Topic, g.Partition, g.Offset, g.Time, w.Partition, w.Offset, w.Event.Time)
				}
			}
		})
	}
}

func TestRequestErrorsNameTheField(t *testing.T) {
	st := openTest(t, tempDB(t))
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		call  func() error
		field string
	}{
		{"search limit too big", func() error { _, err := st.Search(ctx, SearchRequest{Limit: MaxSearchLimit + 1}); return err }, "limit"},
		{"search negative limit", func() error { _, err := st.Search(ctx, SearchRequest{Limit: -1}); return err }, "limit"},
		{"search unknown level", func() error { _, err := st.Search(ctx, SearchRequest{Level: "loud"}); return err }, "level"},
		{"search to before from", func() error { _, err := st.Search(ctx, SearchRequest{From: t0, To: t0.Add(-1)}); return err }, "to"},
		{"stats to before from", func() error { _, err := st.Stats(ctx, StatsRequest{From: t0, To: t0.Add(-time.Hour)}); return err }, "to"},
		{"rollups without from", func() error { _, err := st.Rollups(ctx, RollupsRequest{To: t0, Step: time.Second}); return err }, "from"},
		{"rollups without to", func() error { _, err := st.Rollups(ctx, RollupsRequest{From: t0, Step: time.Second}); return err }, "to"},
		{"rollups fractional step", func() error {
			_, err := st.Rollups(ctx, RollupsRequest{From: t0, To: t0.Add(time.Hour), Step: 1500 * time.Millisecond})
			return err
		}, "step"},
		{"rollups too many buckets", func() error {
			_, err := st.Rollups(ctx, RollupsRequest{From: t0, To: t0.Add(24 * time.Hour), Step: time.Second})
			return err
		}, "step"},
		{"rollups unknown dimension", func() error {
			_, err := st.Rollups(ctx, RollupsRequest{From: t0, To: t0.Add(time.Hour), Step: time.Minute, By: []string{"host"}})
			return err
		}, "by"},
	} {
		err := c.call()
		var re *RequestError
		if !errors.Is(err, ErrInvalidRequest) || !errors.As(err, &re) || re.Field != c.field {
			t.Errorf("%s: err = %v, want a RequestError for field %q", c.name, err, c.field)
		}
	}
}

func TestRetentionDeletesOldEventsAndRollups(t *testing.T) {
	st, err := Open(tempDB(t), Options{DisableMaintenance: true, Retention: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rows := genRows(600, "logs", 0, 0, t0, time.Second) // 12:00:00 .. 12:09:59
	mustWrite(t, st, rows)
	now := t0.Add(10*time.Minute + 500*time.Millisecond) // cutoff 12:07:00
	d, err := st.EnforceRetention(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Events != 420 {
		t.Errorf("retention deleted %d events, want 420", d.Events)
	}
	if got := countEvents(t, st); got != 180 {
		t.Errorf("%d events left, want 180", got)
	}
	s := mustStats(t, st, StatsRequest{})
	if s.Events != 180 {
		t.Errorf("Stats.Events after retention = %d, want 180 (rollups must expire with the events)", s.Events)
	}
	res, err := st.Search(context.Background(), SearchRequest{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	oldest := res.Events[len(res.Events)-1].Time
	if want := t0.Add(7 * time.Minute); !oldest.Equal(want) {
		t.Errorf("oldest event left is %s, want %s", oldest, want)
	}
	// Offsets stay: retention must not make the processor re-read the log.
	next, ok, _ := st.NextOffset(context.Background(), rows[0].tp())
	if !ok || next != 600 {
		t.Errorf("NextOffset after retention = %d, %v; want 600", next, ok)
	}
}

func TestRetentionRunsInTheBackground(t *testing.T) {
	st, err := Open(tempDB(t), Options{Retention: time.Hour, RetentionInterval: 50 * time.Millisecond, CompactInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	old := genRows(100, "logs", 0, 0, time.Now().Add(-2*time.Hour), time.Millisecond)
	fresh := genRows(100, "logs", 0, 100, time.Now().Add(-time.Minute), time.Millisecond)
	mustWrite(t, st, old)
	mustWrite(t, st, fresh)
	deadline := time.Now().Add(20 * time.Second)
	for countEvents(t, st) != 100 {
		if time.Now().After(deadline) {
			t.Fatalf("background retention did not delete the old events within 20s (%d left)", countEvents(t, st))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for len(st.dirtyMinutes()) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("background compaction did not run within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
