package victorialogs

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/storage"
	"github.com/wirelog/wirelog/internal/store"
)

// Explore defaults of the VictoriaLogs store.
const (
	// DefaultExportSliceRows bounds the rows one export query sorts: an
	// export walks the window backwards in time slices that hold about this
	// many rows, so VictoriaLogs never sorts the whole match set in memory.
	DefaultExportSliceRows = 20_000
	// contextWindow is the time around a hit Context searches first; only
	// when it holds fewer than n neighbours on a side is the whole store
	// searched (a neighbour-less hit is rare, a full scan costly).
	contextWindow = time.Hour
)

// errNoPatterns is the documented limit behind GET /api/v1/patterns on this
// store (docs/ARCHITECTURE.md).
var errNoPatterns = fmt.Errorf("%w: log patterns are mined by the processor into the DuckDB store's patterns table "+
	"(Drain templates with stable ids the _pattern filter uses); VictoriaLogs keeps no miner state and LogsQL's "+
	"collapse_nums is not the same templates, so the VictoriaLogs store answers no patterns; run the processor "+
	"with --store duckdb for the Patterns page", storage.ErrNotSupported)

// Patterns answers 501 with the reason (errNoPatterns).
func (s *Store) Patterns(context.Context, store.PatternsRequest) (*store.PatternsResult, error) {
	return nil, errNoPatterns
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Histogram implements the Explore histogram as the DuckDB store does:
// counts per level per bucket aligned to the epoch, every bucket present,
// each stored id once.
func (s *Store) Histogram(ctx context.Context, req store.HistogramRequest) (*store.Histogram, error) {
	step, from, to, err := store.BucketWindow(req.From, req.To, req.Step)
	if err != nil {
		return nil, err
	}
	first := floorDiv(from, step) * step
	n := (to - first + step - 1) / step
	h := &store.Histogram{From: time.Unix(from, 0).UTC(), To: time.Unix(to, 0).UTC(), StepSeconds: step,
		Times: make([]int64, n), Levels: map[string][]int64{}, Source: "events"}
	for i := range h.Times {
		h.Times[i] = first + int64(i)*step
	}
	f := req.Filter
	f.From, f.To = time.Unix(from, 0), time.Unix(to, 0)
	lf, err := filterOf(f)
	if err != nil {
		return nil, err
	}
	bucket := " | math floor(_time / 1e9 / " + strconv.FormatInt(step, 10) + ") * " + strconv.FormatInt(step, 10) + " as wl_bucket"
	h.Coverage, err = s.countDistinctOpt(ctx, s.scope(f.Tenant), "histogram", lf.String(), bucket, []string{"level", "wl_bucket"}, !req.NoPartial, false,
		func(g []string, c, _ int64) {
			sec, _ := strconv.ParseFloat(g[1], 64)
			i := (int64(sec) - first) / step
			if i < 0 || i >= n || c == 0 {
				return
			}
			level := g[0]
			if level == "" {
				level = event.LevelUnknown.String()
			}
			col := h.Levels[level]
			if col == nil {
				col = make([]int64, n)
				h.Levels[level] = col
			}
			col[i] += c
			h.Total += c
		})
	if err != nil {
		return nil, err
	}
	for l, col := range h.Levels {
		if !slices.ContainsFunc(col, func(c int64) bool { return c != 0 }) {
			delete(h.Levels, l) // only repeats were counted there
		}
	}
	return h, nil
}

// Fields implements the Explore field statistics: service, level, host
// and tenant counted over every match (DuckDB counts the newest
// store.FieldSampleSize), attribute keys and values over the newest
// store.AttrSampleSize, as DuckDB does.
func (s *Store) Fields(ctx context.Context, req store.FieldsRequest) (*store.FieldsResult, error) {
	limit := req.Limit
	switch {
	case limit == 0:
		limit = store.DefaultTopValues
	case limit < 0 || limit > store.MaxTopValues:
		return nil, &store.RequestError{Field: "limit", Reason: fmt.Sprintf("%d is out of range 1..%d", limit, store.MaxTopValues)}
	}
	lf, err := filterOf(req.Filter)
	if err != nil {
		return nil, err
	}
	accts := s.scope(req.Tenant)
	allowPartial := !req.NoPartial
	// service, level, host and tenant are stream fields, constant inside a
	// block, so VictoriaLogs groups every match by them faster than it
	// finds the 100,000th newest (0.1 s vs 6.8 s at 2M rows here): this
	// store counts them over every match, never a sample.
	columns := []string{"service", "level", "host", "tenant"}
	counts := make([]map[string]int64, len(columns))
	for i := range counts {
		counts[i] = map[string]int64{}
	}
	res := &store.FieldsResult{Fields: []store.FieldStats{}}
	cov, err := s.countDistinctOpt(ctx, accts, "fields", lf.String(), "", columns, allowPartial, false, func(g []string, c, _ int64) {
		if g[1] == "" {
			g[1] = event.LevelUnknown.String()
		}
		for i := range columns {
			counts[i][g[i]] += c
		}
		res.Total += c
	})
	if err != nil {
		return nil, err
	}
	for i, name := range columns {
		fs := store.FieldStats{Name: name, Values: []store.FieldValue{}}
		for v, c := range counts[i] {
			if c > 0 {
				fs.Values = append(fs.Values, store.FieldValue{Value: v, Count: c})
			}
		}
		res.Fields = append(res.Fields, topValues(fs, limit))
	}

	attrs, c, err := s.attrStats(ctx, accts, lf, limit, allowPartial)
	if err != nil {
		return nil, err
	}
	res.AttrSample = attrs.sample
	res.Fields = append(res.Fields, attrs.fields...)
	res.Coverage = mergeCoverage(cov, c)
	return res, nil
}

// topValues sorts values by count (then value) and keeps limit.
func topValues(fs store.FieldStats, limit int) store.FieldStats {
	slices.SortFunc(fs.Values, func(a, b store.FieldValue) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Value, b.Value)
	})
	if len(fs.Values) > limit {
		fs.Values = fs.Values[:limit]
	}
	return fs
}

// newestWindow is the start of a window ending at the newest event lf
// selects in accts that holds at least n of them (at most about 4n), zero
// when fewer than n match. VictoriaLogs finds the newest event fast
// (sort by _time alone, limit 1) and counts a time range fast, but a sort
// that keeps n rows is slow for large n (6.8 s for the 100,000th at 2M
// rows here), so the window grows from a second until it holds n.
func (s *Store) newestWindow(ctx context.Context, accts []Account, lf filter, n int64, allowPartial bool) (time.Time, store.Coverage, error) {
	var cov store.Coverage
	count := func(f filter) (int64, error) {
		var total int64
		for _, a := range accts {
			c, err := s.run(inAccount(ctx, a), "fields", f.String()+" | stats count() as c", allowPartial, func(v *fastjson.Value) error {
				total += num(v, "c")
				return nil
			})
			cov = mergeCoverage(cov, c)
			if err != nil {
				return 0, err
			}
		}
		return total, nil
	}
	all, err := count(lf)
	if err != nil || all < n {
		return time.Time{}, cov, err
	}
	var newest time.Time
	for _, a := range accts {
		c, err := s.run(inAccount(ctx, a), "fields", lf.String()+" | sort by (_time desc) limit 1 | fields _time", allowPartial, func(v *fastjson.Value) error {
			t, err := time.Parse(time.RFC3339Nano, string(v.GetStringBytes("_time")))
			if err == nil && t.After(newest) {
				newest = t
			}
			return err
		})
		cov = mergeCoverage(cov, c)
		if err != nil {
			return time.Time{}, cov, err
		}
	}
	for w := time.Second; ; w *= 4 {
		start := newest.Add(-w)
		got, err := count(append(slices.Clone(lf), "_time:>="+start.UTC().Format(time.RFC3339Nano)))
		if err != nil {
			return time.Time{}, cov, err
		}
		if got >= n || got >= all {
			return start, cov, nil
		}
	}
}

type attrResult struct {
	sample int64
	fields []store.FieldStats
}

// attrStats counts attribute keys and values over the newest
// store.AttrSampleSize matches (those that carry attributes), with the
// values as DuckDB's json_extract_string gives them: strings as they are,
// other JSON values as their JSON text, nulls left out.
func (s *Store) attrStats(ctx context.Context, accts []Account, lf filter, limit int, allowPartial bool) (attrResult, store.Coverage, error) {
	// The sample is "at or after the AttrSampleSize-th newest match's
	// time", as in DuckDB: that time is found with the fast sort by _time
	// alone, and the sample read unsorted (a sort by more columns reads
	// every match: 15 s at 10M rows).
	cut, cov, err := s.newestWindow(ctx, accts, lf, store.AttrSampleSize, allowPartial)
	if err != nil {
		return attrResult{}, cov, err
	}
	sf := lf
	if !cut.IsZero() {
		sf = append(slices.Clone(lf), "_time:>="+cut.UTC().Format(time.RFC3339Nano))
	}
	type row struct {
		t     time.Time
		attrs string // "" for none
	}
	var rows []row
	seen := map[string]struct{}{}
	q := sf.String() + " | fields _time, " + fieldAttrs + ", " + idFields
	for _, a := range accts {
		c, err := s.run(inAccount(ctx, a), "fields", q, allowPartial, func(v *fastjson.Value) error {
			id := string(v.GetStringBytes(fieldTopic)) + "/" + string(v.GetStringBytes(fieldPartition)) + "/" + string(v.GetStringBytes(fieldOffset))
			if _, dup := seen[id]; dup {
				return nil
			}
			seen[id] = struct{}{}
			t, err := time.Parse(time.RFC3339Nano, string(v.GetStringBytes("_time")))
			if err != nil {
				return fmt.Errorf("VictoriaLogs answered _time %q: %w", v.GetStringBytes("_time"), err)
			}
			rows = append(rows, row{t, string(v.GetStringBytes(fieldAttrs))})
			return nil
		})
		if err != nil {
			return attrResult{}, cov, err
		}
		cov = mergeCoverage(cov, c)
	}
	type kv struct{ k, v string }
	counts := map[kv]int64{}
	keyCounts := map[string]int64{}
	var res attrResult
	var p fastjson.Parser
	// The newest AttrSampleSize, and those as old as the last of them (as
	// DuckDB's "ts at or after the AttrSampleSize-th newest").
	slices.SortFunc(rows, func(a, b row) int { return b.t.Compare(a.t) })
	if len(rows) > store.AttrSampleSize {
		last := rows[store.AttrSampleSize-1].t
		n := store.AttrSampleSize
		for n < len(rows) && rows[n].t.Equal(last) {
			n++
		}
		rows = rows[:n]
	}
	for _, r := range rows {
		if r.attrs == "" {
			continue
		}
		o, err := p.Parse(r.attrs)
		if err != nil {
			continue
		}
		obj, err := o.Object()
		if err != nil {
			continue
		}
		res.sample++
		obj.Visit(func(key []byte, v *fastjson.Value) {
			k := string(key)
			if strings.ContainsAny(k, "\"\\") || v.Type() == fastjson.TypeNull {
				return
			}
			val := v.String()
			if v.Type() == fastjson.TypeString {
				val = string(v.GetStringBytes())
			}
			counts[kv{k, val}]++
			keyCounts[k]++
		})
	}
	byKey := map[string]*store.FieldStats{}
	for e, c := range counts {
		fs := byKey[e.k]
		if fs == nil {
			fs = &store.FieldStats{Name: e.k, Attr: true, Values: []store.FieldValue{}}
			byKey[e.k] = fs
		}
		fs.Values = append(fs.Values, store.FieldValue{Value: e.v, Count: c})
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if keyCounts[a] != keyCounts[b] {
			if keyCounts[a] > keyCounts[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, k := range keys {
		res.fields = append(res.fields, topValues(*byKey[k], limit))
	}
	return res, cov, nil
}

// idFilter selects one stored event by its id.
func idFilter(topic string, partition int32, offset int64) string {
	return fmt.Sprintf("%s:=%s %s:=%d %s:=%d", fieldTopic, quote(topic), fieldPartition, partition, fieldOffset, offset)
}

// Context implements the Explore context as the DuckDB store does: the hit
// and up to N events of the same service (or host) and tenant before and
// after it in (time, partition, offset) order. It needs a complete answer
// (a storage node down: 503), as a partial context would be wrong lines,
// not fewer.
func (s *Store) Context(ctx context.Context, req store.ContextRequest) (*store.ContextResult, error) {
	n := req.N
	switch {
	case n == 0:
		n = store.DefaultContextLines
	case n < 0 || n > store.MaxContextLines:
		return nil, &store.RequestError{Field: "n", Reason: fmt.Sprintf("%d is out of range 1..%d", n, store.MaxContextLines)}
	}
	var hit *store.StoredEvent
	var hitAcct Account
	q := idFilter(req.Topic, req.Partition, req.Offset) + " | limit 1 | fields " + resultFields
	for _, a := range s.scope(req.Tenant) {
		_, err := s.run(inAccount(ctx, a), "context", q, false, func(v *fastjson.Value) error {
			e, err := storedEvent(v)
			if err == nil && hit == nil {
				hit, hitAcct = &e, a
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if hit != nil {
			break
		}
	}
	if hit != nil && req.Tenant != "" && hit.Tenant != req.Tenant {
		hit = nil // another tenant's event is, to this caller, not there
	}
	if hit == nil {
		return nil, &store.RequestError{Field: "offset", Reason: fmt.Sprintf("no event stored at %s/%d offset %d (expired by retention, or never stored)", req.Topic, req.Partition, req.Offset)}
	}
	col, val := "service", hit.Service
	if req.ByHost {
		col, val = "host", hit.Host
	}
	res := &store.ContextResult{Hit: *hit, Before: []store.StoredEvent{}, After: []store.StoredEvent{}}
	ts := hit.Time.UTC().Format(time.RFC3339Nano)
	actx := inAccount(ctx, hitAcct)
	for _, side := range []struct {
		cmp, order string
		out        *[]store.StoredEvent
		bound      func(time.Duration) string
	}{
		{"<", "desc", &res.Before, func(w time.Duration) string { return "_time:>=" + hit.Time.Add(-w).UTC().Format(time.RFC3339Nano) }},
		{">", "asc", &res.After, func(w time.Duration) string { return "_time:<=" + hit.Time.Add(w).UTC().Format(time.RFC3339Nano) }},
	} {
		base := fmt.Sprintf("%s:=%s tenant:=%s (_time:%s%s or (_time:[%s, %s] (%s:%s%d or (%s:=%d %s:%s%d))))",
			col, quote(val), quote(hit.Tenant), side.cmp, ts, ts, ts,
			fieldPartition, side.cmp, hit.Partition, fieldPartition, hit.Partition, fieldOffset, side.cmp, hit.Offset)
		for _, w := range []time.Duration{contextWindow, 0} {
			qf := base
			if w > 0 {
				qf += " " + side.bound(w)
			}
			q := qf + " | sort by (_time " + side.order + ", " + fieldPartition + " " + side.order + ", " + fieldOffset + " " + side.order + ") limit " +
				strconv.Itoa(n+DefaultSearchSlack) + " | fields " + resultFields
			var got []store.StoredEvent
			seen := map[string]struct{}{}
			_, err := s.run(actx, "context", q, false, func(v *fastjson.Value) error {
				e, err := storedEvent(v)
				if err != nil {
					return err
				}
				id := fmt.Sprintf("%d/%d", e.Partition, e.Offset)
				if _, dup := seen[id]; !dup {
					seen[id] = struct{}{}
					got = append(got, e)
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			if len(got) >= n || w == 0 {
				sortEvents(got)
				if side.order == "desc" {
					// newest first: the n nearest before the hit
					if len(got) > n {
						got = got[:n]
					}
					slices.Reverse(got)
				} else {
					slices.Reverse(got) // oldest first
					if len(got) > n {
						got = got[:n]
					}
				}
				*side.out = append(*side.out, got...)
				break
			}
		}
	}
	return res, nil
}

// Export implements the Explore export: every event f selects, newest
// first (time, partition, offset), each id once, with no row cap. It walks
// the window backwards in time slices of about Options.ExportSliceRows rows, each
// sorted by VictoriaLogs, so memory stays bounded at any size. A partial
// export would look whole, so it needs every storage node (503 otherwise).
func (s *Store) Export(ctx context.Context, f store.Filter, each func(*store.StoredEvent) error) error {
	lf, err := filterOf(f)
	if err != nil {
		return err
	}
	accts := s.scope(f.Tenant)
	// The span and size of what matches.
	var lo, hi time.Time
	var total int64
	for _, a := range accts {
		_, err := s.run(inAccount(ctx, a), "export", lf.String()+" | stats min(_time) as a, max(_time) as b, count() as c", false, func(v *fastjson.Value) error {
			c := num(v, "c")
			if c == 0 {
				return nil
			}
			a, err1 := time.Parse(time.RFC3339Nano, string(v.GetStringBytes("a")))
			b, err2 := time.Parse(time.RFC3339Nano, string(v.GetStringBytes("b")))
			if err1 != nil || err2 != nil {
				return fmt.Errorf("VictoriaLogs answered a time span %q..%q", v.GetStringBytes("a"), v.GetStringBytes("b"))
			}
			if total == 0 || a.Before(lo) {
				lo = a
			}
			if total == 0 || b.After(hi) {
				hi = b
			}
			total += c
			return nil
		})
		if err != nil {
			return err
		}
	}
	if total == 0 {
		return nil
	}
	// Slices are [start, end); the first ends just after the newest row.
	end := hi.Add(time.Nanosecond)
	width := time.Duration(float64(end.Sub(lo)) * float64(s.opts.ExportSliceRows) / float64(total))
	width = max(width, time.Millisecond)
	for !end.Before(lo) && end != lo {
		start := end.Add(-width)
		if start.Before(lo) {
			start = lo
		}
		evs, full, err := s.exportSlice(ctx, accts, lf, start, end)
		if err != nil {
			return err
		}
		if full && end.Sub(start) > time.Nanosecond {
			width = max(end.Sub(start)/4, time.Nanosecond) // too dense here: narrower
			continue
		}
		for i := range evs {
			if err := each(&evs[i]); err != nil {
				return err
			}
		}
		if len(evs) < s.opts.ExportSliceRows/4 {
			width *= 2
		}
		end = start
	}
	return nil
}

// exportSlice reads the events of [start, end), sorted newest first and
// each id once; full says a slice held more than Options.ExportSliceRows in some
// account (read again narrower), except for a one-nanosecond slice, which
// is read whole.
func (s *Store) exportSlice(ctx context.Context, accts []Account, lf filter, start, end time.Time) ([]store.StoredEvent, bool, error) {
	sf := append(slices.Clone(lf), fmt.Sprintf("_time:[%s, %s)", start.UTC().Format(time.RFC3339Nano), end.UTC().Format(time.RFC3339Nano)))
	q := sf.String() + " | sort by (_time desc, " + fieldPartition + " desc, " + fieldOffset + " desc)"
	single := end.Sub(start) <= time.Nanosecond
	if !single {
		q += " limit " + strconv.Itoa(s.opts.ExportSliceRows+1)
	}
	q += " | fields " + resultFields
	var evs []store.StoredEvent
	seen := map[string]struct{}{}
	for _, a := range accts {
		rows := 0
		_, err := s.run(inAccount(ctx, a), "export", q, false, func(v *fastjson.Value) error {
			rows++
			id := string(v.GetStringBytes(fieldTopic)) + "/" + string(v.GetStringBytes(fieldPartition)) + "/" + string(v.GetStringBytes(fieldOffset))
			if _, dup := seen[id]; dup {
				return nil
			}
			seen[id] = struct{}{}
			e, err := storedEvent(v)
			if err != nil {
				return err
			}
			evs = append(evs, e)
			return nil
		})
		if err != nil {
			return nil, false, err
		}
		if !single && rows > s.opts.ExportSliceRows {
			return nil, true, nil
		}
	}
	sortEvents(evs)
	return evs, false, nil
}
