package store

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
)

func matchRow(r *Row, f Filter) bool {
	e := &r.Event
	if (f.Service != "" && e.Service != f.Service) || (f.Level != "" && e.Level.String() != f.Level) || (f.Host != "" && e.Host != f.Host) {
		return false
	}
	if (!f.From.IsZero() && e.Time.Before(f.From)) || (!f.To.IsZero() && !e.Time.Before(f.To)) {
		return false
	}
	for _, m := range f.Exclude {
		if m.Field == "service" && e.Service == m.Value || m.Field == "level" && e.Level.String() == m.Value {
			return false
		}
		if m.Field == "latency_ms" && fmt.Sprint(r.Offset%97) == m.Value {
			return false
		}
	}
	for _, m := range f.Attrs {
		if m.Field == "latency_ms" && fmt.Sprint(r.Offset%97) != m.Value {
			return false
		}
	}
	return true
}

func TestHistogramMatchesRows(t *testing.T) {
	st, rows := knownStore(t)
	for _, f := range []Filter{
		{},
		{Service: "checkout", Exclude: []FieldMatch{{"level", "debug"}}}, // rollups
		{Host: "node-3.cluster.local"},                                   // events
		{Attrs: []FieldMatch{{"latency_ms", "5"}}, Exclude: []FieldMatch{{"service", "auth"}}},
	} {
		f.From, f.To = t0.Add(30*time.Second), t0.Add(8*time.Minute)
		h, err := st.Histogram(context.Background(), HistogramRequest{Filter: f, Step: time.Minute})
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		want := map[string]map[int64]int64{}
		var total int64
		for i := range rows {
			if matchRow(&rows[i], f) {
				l := rows[i].Event.Level.String()
				if want[l] == nil {
					want[l] = map[int64]int64{}
				}
				want[l][rows[i].Event.Time.Unix()/60*60]++
				total++
			}
		}
		if h.Total != total || total == 0 {
			t.Errorf("%+v (%s): total %d, want %d (>0)", f, h.Source, h.Total, total)
		}
		for l, col := range h.Levels {
			for i, c := range col {
				if c != want[l][h.Times[i]] {
					t.Errorf("%+v (%s): %s at %d = %d, want %d", f, h.Source, l, h.Times[i], c, want[l][h.Times[i]])
				}
			}
		}
	}
}

func TestFieldsCountEveryMatch(t *testing.T) {
	st, rows := knownStore(t)
	f := Filter{Level: "info"}
	res, err := st.Fields(context.Background(), FieldsRequest{Filter: f, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	svc := map[string]int64{}
	var total int64
	for i := range rows {
		if matchRow(&rows[i], f) {
			svc[rows[i].Event.Service]++
			total++
		}
	}
	if res.Total != total {
		t.Errorf("total %d, want %d", res.Total, total)
	}
	if res.Fields[0].Name != "service" || len(res.Fields[0].Values) != 3 {
		t.Fatalf("first field %+v, want the top 3 services", res.Fields[0])
	}
	for _, v := range res.Fields[0].Values {
		if v.Count != svc[v.Value] {
			t.Errorf("service %s: %d, want %d", v.Value, v.Count, svc[v.Value])
		}
	}
	var route *FieldStats
	for i := range res.Fields {
		if res.Fields[i].Name == "route" && res.Fields[i].Attr {
			route = &res.Fields[i]
		}
	}
	if route == nil || route.Values[0].Value != "/api/v1/orders" || route.Values[0].Count != min(total, AttrSampleSize) {
		t.Errorf("attribute route: %+v, want /api/v1/orders on every sampled event", route)
	}
}

func TestContextAndExport(t *testing.T) {
	st, rows := knownStore(t)
	hit := rows[600] // partition 0, service testServices[600%5]
	res, err := st.Context(context.Background(), ContextRequest{Topic: "logs", Partition: 0, Offset: hit.Offset, N: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Hit.Offset != hit.Offset || len(res.Before) != 4 || len(res.After) != 4 {
		t.Fatalf("context: hit %d, %d before, %d after", res.Hit.Offset, len(res.Before), len(res.After))
	}
	for _, e := range append(res.Before, res.After...) {
		if e.Service != hit.Event.Service {
			t.Errorf("context line from service %s, want %s", e.Service, hit.Event.Service)
		}
	}
	if !res.Before[3].Time.Before(res.Hit.Time) && res.Before[3].Time != res.Hit.Time || res.After[0].Time.Before(res.Hit.Time) {
		t.Errorf("context out of order around %s: before ends %s, after starts %s", res.Hit.Time, res.Before[3].Time, res.After[0].Time)
	}
	if _, err := st.Context(context.Background(), ContextRequest{Topic: "logs", Partition: 9, Offset: 1}); err == nil {
		t.Error("context of a missing event: no error")
	}
	n := 0
	if err := st.Export(context.Background(), Filter{Service: "cart"}, func(e *StoredEvent) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	want := 0
	for i := range rows {
		if rows[i].Event.Service == "cart" {
			want++
		}
	}
	if n != want {
		t.Errorf("export: %d rows, want %d", n, want)
	}
	sr, err := st.Search(context.Background(), SearchRequest{Host: "node-2.cluster.local", Attrs: []FieldMatch{{"status", "200"}}, Exclude: []FieldMatch{{"level", "info"}}, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	want = 0
	for i := range rows {
		if rows[i].Event.Host == "node-2.cluster.local" && rows[i].Event.Level.String() != "info" {
			want++
		}
	}
	if len(sr.Events) != want {
		t.Errorf("search host+attr+exclude: %d, want %d", len(sr.Events), want)
	}
	if _, err := st.Search(context.Background(), SearchRequest{Attrs: []FieldMatch{{`a"b`, "1"}}}); err == nil {
		t.Error("attribute key with a quote: no error")
	}
}

// The field sidebar samples the newest matches from a cut the per-second
// rollups give (no scan of the events); a filter the rollups cannot see is
// counted over the matches among the same newest events, and redone from
// the matches themselves when those are too few.
func TestFieldsSampleFromRollupCut(t *testing.T) {
	st := openTest(t, tempDB(t))
	const n = FieldSampleSize + FieldSampleSize/2
	step := 4 * time.Millisecond // 250 events a second over 10 minutes
	var rows []Row
	for i := 0; i < n; i += 10000 {
		b := genRows(min(10000, n-i), "logs", 0, int64(i), t0.Add(time.Duration(i)*step), step)
		mustWrite(t, st, b)
		rows = append(rows, b...)
	}
	win := Filter{From: t0, To: t0.Add(time.Hour)}
	// The cut: the second of the FieldSampleSize-th newest event.
	cut := rows[len(rows)-FieldSampleSize].Event.Time.Truncate(time.Second)
	for _, c := range []struct {
		name    string
		f       Filter
		sampled bool
	}{
		{"rollup filter", win, true},
		{"host filter (coarse cut)", Filter{From: win.From, To: win.To, Host: "node-3.cluster.local"}, true},
		{"rare filter (scan)", Filter{From: win.From, To: win.To, Host: "node-3.cluster.local", Attrs: []FieldMatch{{"latency_ms", "5"}}}, false},
	} {
		res, err := st.Fields(context.Background(), FieldsRequest{Filter: c.f, Limit: 10})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		svc := map[string]int64{}
		var total int64
		for i := range rows {
			if matchRow(&rows[i], c.f) && (!c.sampled || !rows[i].Event.Time.Before(cut)) {
				svc[rows[i].Event.Service]++
				total++
			}
		}
		if res.Sampled != c.sampled || res.Total != total || total == 0 {
			t.Errorf("%s: total %d sampled %v, want %d (>0) sampled %v", c.name, res.Total, res.Sampled, total, c.sampled)
		}
		for _, v := range res.Fields[0].Values {
			if v.Count != svc[v.Value] {
				t.Errorf("%s: service %s counted %d, want %d", c.name, v.Value, v.Count, svc[v.Value])
			}
		}
		var lat *FieldStats
		for i := range res.Fields {
			if res.Fields[i].Name == "latency_ms" {
				lat = &res.Fields[i]
			}
		}
		if lat == nil || res.AttrSample == 0 {
			t.Errorf("%s: no latency_ms attribute from a sample of %d", c.name, res.AttrSample)
		}
	}
}

// SearchNewest narrows the window from the rollups and must answer exactly
// as Search does: the same events in the same order, the same More.
func TestSearchNewestAnswersAsSearch(t *testing.T) {
	st, _ := knownStore(t)
	from, to := t0.Add(-time.Hour), t0.Add(time.Hour)
	for _, req := range []SearchRequest{
		{Limit: 10},
		{Limit: 1},
		{Service: "checkout", Limit: 25},
		{Level: "error", Exclude: []FieldMatch{{"service", "auth"}}, Limit: 50},
		{Host: "node-3.cluster.local", Limit: 40},                                             // coarse: widened
		{Query: "orders/17", Limit: 5},                                                        // rare: widened, then the whole window
		{Attrs: []FieldMatch{{"latency_ms", "5"}}, Limit: 100},                                // fewer matches than the limit
		{Service: "checkout", Limit: 5000},                                                    // more than the window holds
		{Service: "nope", Limit: 10},                                                          // nothing
		{Limit: 10, From: t0.Add(9 * time.Minute), To: t0.Add(9*time.Minute + 2*time.Second)}, // a narrow window
	} {
		if req.From.IsZero() {
			req.From, req.To = from, to
		}
		want, err := st.Search(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.SearchNewest(context.Background(), req)
		if err != nil {
			t.Fatalf("%+v: %v", req, err)
		}
		if len(got.Events) != len(want.Events) || got.More != want.More {
			t.Errorf("%+v: %d events more=%v, Search %d more=%v", req, len(got.Events), got.More, len(want.Events), want.More)
			continue
		}
		for i := range want.Events {
			if got.Events[i].Offset != want.Events[i].Offset || got.Events[i].Partition != want.Events[i].Partition {
				t.Errorf("%+v: event %d is %d/%d, Search has %d/%d", req, i, got.Events[i].Partition, got.Events[i].Offset, want.Events[i].Partition, want.Events[i].Offset)
				break
			}
		}
	}
}

// An attribute filter answers exactly what json_extract_string(attrs, key)
// = value selects, however the sender spelled the value: the raw-text
// prefilter in front of it (explore.go, rawAttrPrefilter) must never drop
// an escaped string, a re-serialised number or an object.
func TestAttrFilterPrefilterKeepsEverySpelling(t *testing.T) {
	// Both formats: over segment files the prefilter runs inside the
	// Parquet scan on the raw text (filterSource), not on the view.
	for _, format := range []string{FormatTable, FormatParquet} {
		t.Run(format, func(t *testing.T) { attrFilterPrefilterKeepsEverySpelling(t, format) })
	}
}

func attrFilterPrefilterKeepsEverySpelling(t *testing.T, format string) {
	st := openTest(t, tempDB(t))
	if format == FormatParquet {
		st = openSegmentStore(t, tempDB(t), Options{})
	}
	spellings := []string{
		`{"k":"Abc"}`, `{"k":"\u0041bc"}`, `{"k":"abc"}`,
		`{"n":42}`, `{"n":4.2e1}`, `{"n":42.0}`, `{"n":"42"}`, `{"n":-0}`, `{"n":0}`,
		`{"o":{"a":1}}`, `{"o": {"a": 1}}`,
		`{"s":"a\\b"}`, `{"s":"a\u005cb"}`,
		`{"u":"日本"}`, `{"u":"\u65e5\u672c"}`,
		`{"t":true}`, `{"t":"true"}`,
		`{"q":"say \"hi\""}`,
	}
	var rows []Row
	for i, a := range spellings {
		rows = append(rows, Row{Topic: "logs", Offset: int64(i), Bytes: len(a), Event: event.Event{
			Time: t0.Add(time.Duration(i) * time.Second), Service: "s", Level: event.LevelInfo, Message: "m", Attrs: []byte(a)}})
	}
	mustWrite(t, st, rows)
	if err := st.FlushSegments(context.Background()); err != nil {
		t.Fatal(err)
	}
	win := Filter{From: t0, To: t0.Add(time.Hour)}
	for _, c := range []struct{ key, value string }{
		{"k", "Abc"}, {"k", "abc"}, {"n", "42"}, {"n", "42.0"}, {"n", "0"}, {"o", `{"a":1}`},
		{"s", `a\b`}, {"u", "日本"}, {"t", "true"}, {"q", `say "hi"`},
	} {
		// The reference: the extraction alone, without the prefilter.
		var want int64
		if err := st.query(context.Background(), "test", `SELECT count(*) FROM events WHERE json_extract_string(attrs, $1) = $2`,
			[]any{`$."` + c.key + `"`, c.value}, func(r *sql.Rows) error { return r.Scan(&want) }); err != nil {
			t.Fatal(err)
		}
		f := win
		f.Attrs = []FieldMatch{{c.key, c.value}}
		h, err := st.Histogram(context.Background(), HistogramRequest{Filter: f, Step: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if h.Total != want || want == 0 {
			t.Errorf("%s=%s: histogram counts %d, json_extract_string selects %d (want > 0)", c.key, c.value, h.Total, want)
		}
		var exported int64
		if err := st.Export(context.Background(), f, func(*StoredEvent) error { exported++; return nil }); err != nil {
			t.Fatal(err)
		}
		if exported != want {
			t.Errorf("%s=%s: export returns %d events, json_extract_string selects %d", c.key, c.value, exported, want)
		}
	}
}
