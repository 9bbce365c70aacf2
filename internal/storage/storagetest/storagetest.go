// Package storagetest is the store contract as a test suite: the same rows
// written to a store answer the same stats, rollups and searches, whichever
// store holds them, and a replayed batch is counted once. Each store's
// tests call Run with a way to open it.
package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/storage"
	"github.com/wirelog/wirelog/internal/store"
)

// Harness opens an empty store and waits until written rows are visible.
type Harness struct {
	// Open returns an empty store; the suite closes it.
	Open func(t *testing.T) storage.Store
	// Settle returns once the rows written so far answer queries (want is
	// how many distinct events were written); nil means at once.
	Settle func(t *testing.T, st storage.Store, want int64)
}

const topic = "events"

// fixture is the rows every store gets: two partitions, three services,
// every level, two tenants, attributes of several JSON types, an empty
// message, and timestamps spread over 60 s an hour ago.
func fixture(base time.Time) []store.Row {
	services := []string{"checkout", "payments", "search"}
	levels := []event.Level{event.LevelInfo, event.LevelWarn, event.LevelError, event.LevelDebug, event.LevelUnknown}
	var rows []store.Row
	offs := [2]int64{}
	for i := 0; i < 120; i++ {
		p := int32(i % 2)
		e := event.Event{
			Time:    base.Add(time.Duration(i) * 500 * time.Millisecond),
			Service: services[i%3],
			Level:   levels[i%5],
			Message: fmt.Sprintf("Charge %d captured for order %d", i, 1000+i),
			Host:    fmt.Sprintf("web-%d", i%4),
			TraceID: fmt.Sprintf("%032x", i),
			SpanID:  fmt.Sprintf("%016x", i),
		}
		if i%4 == 0 {
			e.Tenant = "acme"
		}
		if i%7 == 0 {
			e.Attrs = []byte(fmt.Sprintf(`{"status":%d,"ok":true,"path":"/pay/%d","n":null}`, 200+i, i))
		}
		if i == 5 {
			e.Message = ""
		}
		rows = append(rows, store.Row{Topic: topic, Partition: p, Offset: offs[p], Bytes: 100 + i, Event: e})
		offs[p]++
	}
	return rows
}

// Run runs the contract against the store h opens.
func Run(t *testing.T, h Harness) {
	ctx := context.Background()
	st := h.Open(t)
	t.Cleanup(func() { st.Close() })
	base := time.Now().Add(-time.Hour).Truncate(time.Minute).UTC()
	rows := fixture(base)
	// Written in two batches, then the second batch again, as a processor
	// replays after a crash: the replay must not count.
	half := len(rows) / 2
	for _, b := range [][]store.Row{rows[:half], rows[half:], rows[half:]} {
		if _, err := st.Write(ctx, append([]store.Row(nil), b...)); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if h.Settle != nil {
		h.Settle(t, st, int64(len(rows)))
	}

	t.Run("stats", func(t *testing.T) {
		got, err := st.Stats(ctx, store.StatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		want := expectStats(rows, time.Time{}, time.Time{}, "")
		checkStats(t, got, want)
		if got.Partial {
			t.Errorf("answer marked partial with every node up: %+v", got.Coverage)
		}
	})
	t.Run("stats window and tenant", func(t *testing.T) {
		from, to := base.Add(10*time.Second), base.Add(20*time.Second)
		got, err := st.Stats(ctx, store.StatsRequest{From: from, To: to})
		if err != nil {
			t.Fatal(err)
		}
		checkStats(t, got, expectStats(rows, from, to, ""))
		got, err = st.Stats(ctx, store.StatsRequest{Tenant: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		checkStats(t, got, expectStats(rows, time.Time{}, time.Time{}, "acme"))
	})
	t.Run("rollups", func(t *testing.T) {
		req := store.RollupsRequest{From: base, To: base.Add(time.Minute), Step: 10 * time.Second, By: []string{store.ByService}}
		got, err := st.Rollups(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		want := expectRollups(rows, req)
		if !reflect.DeepEqual(flatten(got), want) {
			t.Errorf("rollups by service:\n got %v\nwant %v", flatten(got), want)
		}
		if got.StepSeconds != 10 || !reflect.DeepEqual(got.By, []string{"service"}) {
			t.Errorf("rollups header: step %d by %v", got.StepSeconds, got.By)
		}
		req = store.RollupsRequest{From: base, To: base.Add(time.Minute), Step: 7 * time.Second, By: []string{store.ByLevel, store.ByTenant}, Level: "error"}
		got, err = st.Rollups(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if want := expectRollups(rows, req); !reflect.DeepEqual(flatten(got), want) {
			t.Errorf("rollups level=error by level,tenant step 7s:\n got %v\nwant %v", flatten(got), want)
		}
	})
	t.Run("search", func(t *testing.T) {
		got, err := st.Search(ctx, store.SearchRequest{Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		if !got.More || len(got.Events) != 5 || got.Limit != 5 {
			t.Fatalf("search limit 5: %d events, more=%v limit=%d", len(got.Events), got.More, got.Limit)
		}
		for i, e := range got.Events {
			checkEvent(t, e, rows[len(rows)-1-i])
		}
		all, err := st.Search(ctx, store.SearchRequest{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(all.Events) != len(rows) || all.More {
			t.Fatalf("search everything: %d events (more=%v), want %d once each", len(all.Events), all.More, len(rows))
		}
		byID := map[string]store.StoredEvent{}
		for _, e := range all.Events {
			byID[fmt.Sprintf("%d/%d", e.Partition, e.Offset)] = e
		}
		for _, r := range rows {
			e, ok := byID[fmt.Sprintf("%d/%d", r.Partition, r.Offset)]
			if !ok {
				t.Fatalf("event %d/%d missing from search", r.Partition, r.Offset)
			}
			checkEvent(t, e, r)
		}
	})
	t.Run("search filters", func(t *testing.T) {
		cases := []struct {
			name string
			req  store.SearchRequest
			keep func(r store.Row) bool
		}{
			{"service", store.SearchRequest{Service: "payments"}, func(r store.Row) bool { return r.Event.Service == "payments" }},
			{"level", store.SearchRequest{Level: "warn"}, func(r store.Row) bool { return r.Event.Level == event.LevelWarn }},
			{"unknown level", store.SearchRequest{Level: "unknown"}, func(r store.Row) bool { return r.Event.Level == event.LevelUnknown }},
			{"q case-insensitive substring", store.SearchRequest{Query: "CHARGE 1"}, func(r store.Row) bool {
				return strings.Contains(strings.ToLower(r.Event.Message), "charge 1")
			}},
			{"q with regexp characters", store.SearchRequest{Query: "order 10(5"}, func(r store.Row) bool { return false }},
			{"trace id", store.SearchRequest{TraceID: fmt.Sprintf("%032x", 42)}, func(r store.Row) bool { return r.Event.TraceID == fmt.Sprintf("%032x", 42) }},
			{"tenant", store.SearchRequest{Tenant: "acme"}, func(r store.Row) bool { return r.Event.Tenant == "acme" }},
			{"host", store.SearchRequest{Host: "web-2"}, func(r store.Row) bool { return r.Event.Host == "web-2" }},
			{"attribute", store.SearchRequest{Attrs: []store.FieldMatch{{Field: "path", Value: "/pay/14"}}}, func(r store.Row) bool {
				return strings.Contains(string(r.Event.Attrs), `"path":"/pay/14"`)
			}},
			{"host, excluding a service", store.SearchRequest{Host: "web-1", Exclude: []store.FieldMatch{{Field: "service", Value: "checkout"}}}, func(r store.Row) bool {
				return r.Event.Host == "web-1" && r.Event.Service != "checkout"
			}},
			{"window", store.SearchRequest{From: base.Add(5 * time.Second), To: base.Add(9 * time.Second)}, func(r store.Row) bool {
				return !r.Event.Time.Before(base.Add(5*time.Second)) && r.Event.Time.Before(base.Add(9*time.Second))
			}},
		}
		for _, c := range cases {
			c.req.Limit = 1000
			got, err := st.Search(ctx, c.req)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			var want []string
			for _, r := range rows {
				if c.keep(r) {
					want = append(want, fmt.Sprintf("%d/%d", r.Partition, r.Offset))
				}
			}
			var have []string
			for _, e := range got.Events {
				have = append(have, fmt.Sprintf("%d/%d", e.Partition, e.Offset))
			}
			sort.Strings(want)
			sort.Strings(have)
			if !reflect.DeepEqual(have, want) {
				t.Errorf("search %s: got %d events %v, want %d %v", c.name, len(have), have, len(want), want)
			}
		}
	})
	exploreContract(t, st, rows, base)
	t.Run("bad requests", func(t *testing.T) {
		var re *store.RequestError
		if _, err := st.Search(ctx, store.SearchRequest{Level: "loud"}); !errors.As(err, &re) || re.Field != "level" {
			t.Errorf("search level=loud: %v, want a RequestError naming level", err)
		}
		if _, err := st.Search(ctx, store.SearchRequest{Limit: store.MaxSearchLimit + 1}); !errors.As(err, &re) || re.Field != "limit" {
			t.Errorf("search limit too big: %v, want a RequestError naming limit", err)
		}
		if _, err := st.Rollups(ctx, store.RollupsRequest{From: base, To: base.Add(time.Hour), Step: 1500 * time.Millisecond}); !errors.As(err, &re) || re.Field != "step" {
			t.Errorf("rollups step 1.5s: %v, want a RequestError naming step", err)
		}
		if _, err := st.Stats(ctx, store.StatsRequest{From: base, To: base.Add(-time.Second)}); !errors.As(err, &re) || re.Field != "to" {
			t.Errorf("stats to before from: %v, want a RequestError naming to", err)
		}
		// The window's length decides the bucket count, not where its
		// ends fall inside seconds: 10,000 s at step=1s is allowed, one
		// more second is not.
		odd := base.Add(500 * time.Millisecond)
		limit := time.Duration(store.MaxRollupBuckets) * time.Second
		if _, err := st.Rollups(ctx, store.RollupsRequest{From: odd, To: odd.Add(limit), Step: time.Second}); err != nil {
			t.Errorf("rollups of %v at step=1s from an unaligned start: %v, want an answer", limit, err)
		}
		if _, err := st.Rollups(ctx, store.RollupsRequest{From: odd, To: odd.Add(limit + time.Second), Step: time.Second}); !errors.As(err, &re) || re.Field != "step" {
			t.Errorf("rollups of %v at step=1s: %v, want a RequestError naming step", limit+time.Second, err)
		}
	})
	t.Run("ties", func(t *testing.T) { tiesContract(t, h, st, len(rows)) })
}

// tiesContract: events sharing one timestamp come back in (partition,
// offset) order, newest first, however many share it and wherever the page
// ends among them. Run last: it adds rows.
func tiesContract(t *testing.T, h Harness, st storage.Store, written int) {
	ctx := context.Background()
	at := time.Now().Add(-2 * time.Hour).Truncate(time.Second).Add(250 * time.Millisecond).UTC()
	var rows []store.Row
	// More than a store reads for one page, so the page is cut among them.
	for i := 0; i < 240; i++ {
		p := int32(i % 4)
		rows = append(rows, store.Row{Topic: "ties", Partition: p, Offset: int64(i / 4), Bytes: 10, Event: event.Event{
			Time: at, Service: "ties", Level: event.LevelInfo, Message: fmt.Sprintf("tie %d", i), Host: "h"}})
	}
	// One more a millisecond later, so the page starts above the ties.
	rows = append(rows, store.Row{Topic: "ties", Partition: 0, Offset: 60, Bytes: 10, Event: event.Event{
		Time: at.Add(time.Millisecond), Service: "ties", Level: event.LevelInfo, Message: "after the ties", Host: "h"}})
	if _, err := st.Write(ctx, rows); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if h.Settle != nil {
		h.Settle(t, st, int64(written+len(rows)))
	}
	want := newestFirst(rows)
	for _, limit := range []int{1, 7, 33, 100, 241} {
		got, err := st.Search(ctx, store.SearchRequest{Service: "ties", Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		if w := rowIDs(want[:limit]); !reflect.DeepEqual(ids(got.Events), w) || got.More != (limit < len(rows)) {
			t.Errorf("search limit %d among %d events at one timestamp:\n got %v more=%v\nwant %v", limit, len(rows)-1, ids(got.Events), got.More, w)
		}
	}
}

func expectStats(rows []store.Row, from, to time.Time, tenant string) store.Stats {
	st := store.Stats{ByLevel: map[string]int64{}, ByService: map[string]int64{}}
	for _, l := range event.Levels() {
		st.ByLevel[l] = 0
	}
	for _, r := range rows {
		sec := r.Event.Time.Truncate(time.Second)
		if !from.IsZero() && sec.Before(from.Truncate(time.Second)) || !to.IsZero() && !sec.Before(to) {
			continue
		}
		if tenant != "" && r.Event.Tenant != tenant {
			continue
		}
		st.Events++
		st.Bytes += int64(r.Bytes)
		st.ByLevel[r.Event.Level.String()]++
		st.ByService[r.Event.Service]++
	}
	return st
}

func checkStats(t *testing.T, got *store.Stats, want store.Stats) {
	t.Helper()
	if got.Events != want.Events || got.Bytes != want.Bytes || !reflect.DeepEqual(got.ByLevel, want.ByLevel) || !reflect.DeepEqual(got.ByService, want.ByService) {
		t.Errorf("stats:\n got events=%d bytes=%d by_level=%v by_service=%v\nwant events=%d bytes=%d by_level=%v by_service=%v",
			got.Events, got.Bytes, got.ByLevel, got.ByService, want.Events, want.Bytes, want.ByLevel, want.ByService)
	}
}

// flatten turns a Rollups answer into "service/level/tenant@unix=count/bytes".
func flatten(r *store.Rollups) []string {
	var out []string
	for _, s := range r.Series {
		k := deref(s.Service) + "/" + deref(s.Level) + "/" + deref(s.Tenant)
		for _, p := range s.Points {
			out = append(out, fmt.Sprintf("%s@%d=%d/%d", k, p.Time.Unix(), p.Count, p.Bytes))
		}
	}
	sort.Strings(out)
	return out
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

func expectRollups(rows []store.Row, req store.RollupsRequest) []string {
	step := int64(req.Step / time.Second)
	type agg struct{ c, b int64 }
	m := map[string]*agg{}
	has := func(d string) bool {
		for _, b := range req.By {
			if b == d {
				return true
			}
		}
		return false
	}
	for _, r := range rows {
		sec := r.Event.Time.Unix()
		if sec < req.From.Unix() || sec >= req.To.Unix() {
			continue
		}
		if req.Level != "" && r.Event.Level.String() != req.Level {
			continue
		}
		svc, lvl, ten := "-", "-", "-"
		if has(store.ByService) {
			svc = r.Event.Service
		}
		if has(store.ByLevel) {
			lvl = r.Event.Level.String()
		}
		if has(store.ByTenant) {
			ten = r.Event.Tenant
		}
		b := sec - ((sec%step)+step)%step
		k := fmt.Sprintf("%s/%s/%s@%d", svc, lvl, ten, b)
		if m[k] == nil {
			m[k] = &agg{}
		}
		m[k].c++
		m[k].b += int64(r.Bytes)
	}
	var out []string
	for k, a := range m {
		out = append(out, fmt.Sprintf("%s=%d/%d", k, a.c, a.b))
	}
	sort.Strings(out)
	return out
}

func checkEvent(t *testing.T, e store.StoredEvent, r store.Row) {
	t.Helper()
	want := store.StoredEvent{
		Time: r.Event.Time.UTC(), Service: r.Event.Service, Level: r.Event.Level.String(), Message: r.Event.Message,
		Host: r.Event.Host, TraceID: r.Event.TraceID, SpanID: r.Event.SpanID, Tenant: r.Event.Tenant,
		Bytes: r.Bytes, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
	}
	gotAttrs, wantAttrs := normJSON(e.Attrs), normJSON(r.Event.Attrs)
	e.Attrs = nil
	if !reflect.DeepEqual(e, want) || gotAttrs != wantAttrs {
		t.Errorf("event %d/%d:\n got %+v attrs %s\nwant %+v attrs %s", r.Partition, r.Offset, e, gotAttrs, want, wantAttrs)
	}
}

// normJSON compares attributes by value (key order and spacing aside);
// absent and null are the same.
func normJSON(b []byte) string {
	if len(b) == 0 || string(b) == "null" {
		return "null"
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return "invalid: " + string(b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}
