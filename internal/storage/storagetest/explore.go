package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/storage"
	"github.com/wirelog/wirelog/internal/store"
)

// Explorer is what the dashboard's Explore page needs of a store (the
// api package's Explorer); both stores implement it.
type Explorer interface {
	Histogram(context.Context, store.HistogramRequest) (*store.Histogram, error)
	Fields(context.Context, store.FieldsRequest) (*store.FieldsResult, error)
	Context(context.Context, store.ContextRequest) (*store.ContextResult, error)
	Export(context.Context, store.Filter, func(*store.StoredEvent) error) error
}

// keep reports whether a fixture row matches f (the Filter semantics of
// internal/store: columns exactly, q a case-insensitive substring, the
// window [From, To)).
func keep(r store.Row, f store.Filter) bool {
	e := r.Event
	switch {
	case f.Service != "" && e.Service != f.Service,
		f.Level != "" && e.Level.String() != f.Level,
		f.Host != "" && e.Host != f.Host,
		f.Tenant != "" && e.Tenant != f.Tenant,
		f.TraceID != "" && e.TraceID != f.TraceID,
		f.Query != "" && !strings.Contains(strings.ToLower(e.Message), strings.ToLower(f.Query)),
		!f.From.IsZero() && e.Time.Before(f.From),
		!f.To.IsZero() && !e.Time.Before(f.To):
		return false
	}
	return true
}

// newestFirst orders rows as every answer does: time, partition, offset,
// descending.
func newestFirst(rows []store.Row) []store.Row {
	out := slices.Clone(rows)
	slices.SortStableFunc(out, func(a, b store.Row) int {
		if c := b.Event.Time.Compare(a.Event.Time); c != 0 {
			return c
		}
		if a.Partition != b.Partition {
			return int(b.Partition - a.Partition)
		}
		return int(b.Offset - a.Offset)
	})
	return out
}

func ids(evs []store.StoredEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = fmt.Sprintf("%d/%d", e.Partition, e.Offset)
	}
	return out
}

func rowIDs(rows []store.Row) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = fmt.Sprintf("%d/%d", r.Partition, r.Offset)
	}
	return out
}

// exploreContract holds both stores to the same Explore answers: the
// histogram, field statistics, context and export.
func exploreContract(t *testing.T, st storage.Store, rows []store.Row, base time.Time) {
	ctx := context.Background()
	ex, ok := st.(Explorer)
	if !ok {
		t.Fatalf("%T does not answer the Explore queries (histogram, fields, context, export)", st)
	}
	t.Run("histogram", func(t *testing.T) {
		for _, f := range []store.Filter{
			{},
			{Tenant: "acme"},
			{Query: "CHARGE 1"},
			{Host: "web-3", Exclude: []store.FieldMatch{{Field: "level", Value: "warn"}}},
		} {
			f.From, f.To = base.Add(-5*time.Second), base.Add(70*time.Second)
			got, err := ex.Histogram(ctx, store.HistogramRequest{Filter: f, Step: 10 * time.Second})
			if err != nil {
				t.Fatalf("histogram %+v: %v", f, err)
			}
			step := int64(10)
			first := f.From.Unix() - ((f.From.Unix()%step)+step)%step
			n := (f.To.Unix() - first + step - 1) / step
			want := map[string][]int64{}
			var total int64
			for _, r := range rows {
				if !keep(r, f) || (f.Host != "" && r.Event.Level == event.LevelWarn) {
					continue
				}
				l := r.Event.Level.String()
				if want[l] == nil {
					want[l] = make([]int64, n)
				}
				want[l][(r.Event.Time.Unix()-first)/step]++
				total++
			}
			if len(got.Times) != int(n) || got.Times[0] != first || got.StepSeconds != step {
				t.Errorf("histogram %+v: %d buckets from %d step %d, want %d from %d step %d", f, len(got.Times), got.Times[0], got.StepSeconds, n, first, step)
			}
			if got.Total != total || !reflect.DeepEqual(got.Levels, want) {
				t.Errorf("histogram %+v:\n got total %d %v\nwant total %d %v", f, got.Total, got.Levels, total, want)
			}
		}
	})
	t.Run("fields", func(t *testing.T) {
		f := store.Filter{From: base.Add(-time.Minute), To: base.Add(2 * time.Minute), Exclude: []store.FieldMatch{{Field: "service", Value: "search"}}}
		got, err := ex.Fields(ctx, store.FieldsRequest{Filter: f, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		want := expectFields(rows, func(r store.Row) bool { return keep(r, f) && r.Event.Service != "search" }, 3)
		if !reflect.DeepEqual(got.Fields, want.Fields) || got.Total != want.Total || got.Sampled || got.AttrSample != want.AttrSample {
			t.Errorf("fields:\n got total %d attr_sample %d %+v\nwant total %d attr_sample %d %+v", got.Total, got.AttrSample, got.Fields, want.Total, want.AttrSample, want.Fields)
		}
	})
	t.Run("context", func(t *testing.T) {
		for _, c := range []struct {
			hit    int
			n      int
			byHost bool
		}{{60, 3, false}, {61, 4, true}, {2, 5, false}, {118, 2, false}} {
			h := rows[c.hit]
			got, err := ex.Context(ctx, store.ContextRequest{Topic: h.Topic, Partition: h.Partition, Offset: h.Offset, N: c.n, ByHost: c.byHost})
			if err != nil {
				t.Fatalf("context of %d: %v", c.hit, err)
			}
			var same []store.Row
			for _, r := range rows {
				if r.Event.Tenant == h.Event.Tenant && (c.byHost && r.Event.Host == h.Event.Host || !c.byHost && r.Event.Service == h.Event.Service) {
					same = append(same, r)
				}
			}
			same = newestFirst(same)
			slices.Reverse(same) // oldest first
			i := slices.IndexFunc(same, func(r store.Row) bool { return r.Partition == h.Partition && r.Offset == h.Offset })
			before, after := same[max(0, i-c.n):i], same[i+1:min(len(same), i+1+c.n)]
			checkEvent(t, got.Hit, h)
			if !reflect.DeepEqual(ids(got.Before), rowIDs(before)) || !reflect.DeepEqual(ids(got.After), rowIDs(after)) {
				t.Errorf("context of row %d (n=%d by host %v):\n got before %v after %v\nwant before %v after %v",
					c.hit, c.n, c.byHost, ids(got.Before), ids(got.After), rowIDs(before), rowIDs(after))
			}
		}
		// A tenant reads only its own events' context.
		h := rows[1] // tenant ""
		var re *store.RequestError
		if _, err := ex.Context(ctx, store.ContextRequest{Topic: h.Topic, Partition: h.Partition, Offset: h.Offset, Tenant: "acme"}); !errors.As(err, &re) {
			t.Errorf("context of another tenant's event: %v, want a RequestError (not found)", err)
		}
		if _, err := ex.Context(ctx, store.ContextRequest{Topic: h.Topic, Partition: 7, Offset: 0}); !errors.As(err, &re) {
			t.Errorf("context of an event never stored: %v, want a RequestError (not found)", err)
		}
	})
	t.Run("export", func(t *testing.T) {
		for _, f := range []store.Filter{
			{},
			{Level: "error"},
			{Tenant: "acme", From: base.Add(3 * time.Second), To: base.Add(41 * time.Second)},
			{Attrs: []store.FieldMatch{{Field: "ok", Value: "true"}}},
		} {
			var got []store.StoredEvent
			err := ex.Export(ctx, f, func(e *store.StoredEvent) error { got = append(got, *e); return nil })
			if err != nil {
				t.Fatalf("export %+v: %v", f, err)
			}
			var want []store.Row
			for _, r := range rows {
				if keep(r, f) && (len(f.Attrs) == 0 || strings.Contains(string(r.Event.Attrs), `"ok":true`)) {
					want = append(want, r)
				}
			}
			want = newestFirst(want)
			if !reflect.DeepEqual(ids(got), rowIDs(want)) {
				t.Errorf("export %+v: got %d events %v\nwant %d %v", f, len(got), ids(got), len(want), rowIDs(want))
				continue
			}
			for i := range got {
				checkEvent(t, got[i], want[i])
			}
		}
		// The consumer stops the export.
		stop := errors.New("enough")
		n := 0
		err := ex.Export(ctx, store.Filter{}, func(*store.StoredEvent) error {
			if n++; n == 3 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != 3 {
			t.Errorf("export stopped by its consumer after 3 rows: err %v after %d rows", err, n)
		}
	})
}

// expectFields computes FieldsResult for the rows kept (fewer than the
// sample sizes): top limit values per column, then attribute keys by how
// many events carry them, values as text, nulls left out.
func expectFields(rows []store.Row, kept func(store.Row) bool, limit int) store.FieldsResult {
	cols := []string{"service", "level", "host", "tenant"}
	counts := make([]map[string]int64, len(cols))
	for i := range counts {
		counts[i] = map[string]int64{}
	}
	attrs := map[string]map[string]int64{}
	keyN := map[string]int64{}
	var res store.FieldsResult
	for _, r := range rows {
		if !kept(r) {
			continue
		}
		res.Total++
		e := r.Event
		for i, v := range []string{e.Service, e.Level.String(), e.Host, e.Tenant} {
			counts[i][v]++
		}
		if len(e.Attrs) == 0 {
			continue
		}
		res.AttrSample++
		m := map[string]any{}
		if err := jsonUnmarshal(e.Attrs, &m); err != nil {
			panic(err)
		}
		for k, v := range m {
			if v == nil {
				continue
			}
			s := fmt.Sprint(v)
			if attrs[k] == nil {
				attrs[k] = map[string]int64{}
			}
			attrs[k][s]++
			keyN[k]++
		}
	}
	top := func(name string, attr bool, m map[string]int64) store.FieldStats {
		fs := store.FieldStats{Name: name, Attr: attr, Values: []store.FieldValue{}}
		for v, c := range m {
			fs.Values = append(fs.Values, store.FieldValue{Value: v, Count: c})
		}
		slices.SortFunc(fs.Values, func(a, b store.FieldValue) int {
			if a.Count != b.Count {
				return int(b.Count - a.Count)
			}
			return strings.Compare(a.Value, b.Value)
		})
		if len(fs.Values) > limit {
			fs.Values = fs.Values[:limit]
		}
		return fs
	}
	for i, c := range cols {
		res.Fields = append(res.Fields, top(c, false, counts[i]))
	}
	var keys []string
	for k := range attrs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if keyN[a] != keyN[b] {
			return int(keyN[b] - keyN[a])
		}
		return strings.Compare(a, b)
	})
	for _, k := range keys {
		res.Fields = append(res.Fields, top(k, true, attrs[k]))
	}
	return res
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
