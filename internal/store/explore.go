package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Explore defaults.
const (
	// DefaultTopValues is how many values per field Fields returns.
	DefaultTopValues = 10
	// MaxTopValues bounds FieldsRequest.Limit.
	MaxTopValues = 100
	// FieldSampleSize is how many of the newest matching events Fields
	// counts column values over: grouping every match by four columns
	// took 2.8 s at 10M events (docs/BENCHMARKS.md), and a sidebar of top
	// values needs the shape, not the last digit (Kibana samples 500).
	// FieldsResult.Total is exact only when Sampled is false; the histogram
	// has the exact count.
	FieldSampleSize = 100_000
	// AttrSampleSize is how many of the newest matching events Fields reads
	// attribute keys and values from: attributes are free-form JSON, and
	// unnesting every row's keys over millions of events costs seconds, so
	// attribute counts are those of a sample (FieldsResult.AttrSample says
	// how many events it held). Columns (service, level, host, tenant) are
	// always counted over every match.
	AttrSampleSize = 5000
	// DefaultContextLines and MaxContextLines bound ContextRequest.N.
	DefaultContextLines = 10
	MaxContextLines     = 500
	// MaxHistogramBuckets bounds (to-from)/step of one Histogram.
	MaxHistogramBuckets = MaxRollupBuckets
	// maxAttrKeyLen bounds an attribute key in a filter.
	maxAttrKeyLen = 256
)

// PatternField in a FieldMatch selects (or, in Exclude, hides) the events
// whose message matches the mined template with that id (GET /api/v1/patterns).
const PatternField = "_pattern"

// patternMatch is true for the events of a mined template: its service, and
// tenant, and a message its regular expression matches.
const patternMatch = `service = (SELECT service FROM ` + latestPatterns + ` WHERE id = TRY_CAST(? AS BIGINT)) AND
	tenant = (SELECT tenant FROM ` + latestPatterns + ` WHERE id = TRY_CAST(? AS BIGINT)) AND
	regexp_full_match(message, (SELECT regex FROM ` + latestPatterns + ` WHERE id = TRY_CAST(? AS BIGINT)))`

// columns are the event fields a FieldMatch can name directly; any other
// name is an attribute key.
var columns = map[string]string{"service": "service", "level": "level", "host": "host", "tenant": "tenant", "trace_id": "trace_id"}

// FieldMatch is one field = value (or, in Exclude, field != value). Field is
// a column (service, level, host, tenant, trace_id) or an attribute key;
// attribute values compare as text (a number 200 matches "200").
type FieldMatch struct {
	Field string
	Value string
}

// ParseFieldMatch reads "field=value" (the API's attr and exclude parameters).
func ParseFieldMatch(s string) (FieldMatch, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return FieldMatch{}, fmt.Errorf("%q is not field=value", s)
	}
	return FieldMatch{Field: k, Value: v}, nil
}

// Filter selects events for the Explore queries. Every non-zero field must
// match: the columns exactly, Query as a case-insensitive substring of the
// message, each of Attrs, and none of Exclude; the window is [From, To).
type Filter struct {
	Service, Level, Host, TraceID, Tenant, Query string
	Attrs, Exclude                               []FieldMatch
	From, To                                     time.Time
}

// Filter is the part of a search request that selects events.
func (r SearchRequest) Filter() Filter {
	return Filter{Service: r.Service, Level: r.Level, Host: r.Host, TraceID: r.TraceID, Tenant: r.Tenant, Query: r.Query,
		Attrs: r.Attrs, Exclude: r.Exclude, From: r.From, To: r.To}
}

// onlyRollupDims reports whether the rollups table can answer for f: it
// filters on service, level and tenant only.
func (f *Filter) onlyRollupDims() bool {
	if f.Host != "" || f.TraceID != "" || f.Query != "" || len(f.Attrs) > 0 {
		return false
	}
	for _, m := range f.Exclude {
		if m.Field != "service" && m.Field != "level" && m.Field != "tenant" {
			return false
		}
	}
	return true
}

func attrPath(key string) (string, error) {
	if key == "" || len(key) > maxAttrKeyLen || strings.ContainsAny(key, "\"\\\x00") {
		return "", fmt.Errorf("attribute key %q must be 1..%d characters without quotes or backslashes", key, maxAttrKeyLen)
	}
	return `$."` + key + `"`, nil
}

// addMatches adds the attribute and exclusion conditions of a filter; the
// column filters are added by the caller (Search has its own).
func addMatches(w *where, field string, attrs, exclude []FieldMatch) error {
	for _, m := range attrs {
		if m.Field == PatternField {
			w.addN(patternMatch, m.Value, m.Value, m.Value)
			continue
		}
		if col, ok := columns[m.Field]; ok {
			if m.Field == "level" {
				if err := checkLevel(m.Value); err != nil {
					return err
				}
			}
			w.add(col+" = ?", m.Value)
			continue
		}
		p, err := attrPath(m.Field)
		if err != nil {
			return badField(field, "%v", err)
		}
		if rawAttrPrefilter(m.Value) {
			// Parsing every row's JSON is what an attribute filter costs
			// at 10M events (docs/BENCHMARKS.md); a substring test on the
			// raw text first lets DuckDB parse only the rows it passes
			// (the terms of a conjunction run in turn on the rows still
			// selected). Attributes are stored as the sender wrote them,
			// so a row with an escape (a backslash) may spell the value
			// otherwise and always passes.
			w.add2("(contains(attrs::VARCHAR, ?) OR contains(attrs::VARCHAR, ?))", m.Value, `\`)
		}
		w.add2("json_extract_string(attrs, ?) = ?", p, m.Value)
	}
	for _, m := range exclude {
		if m.Field == PatternField {
			w.addN("("+patternMatch+") IS NOT TRUE", m.Value, m.Value, m.Value)
			continue
		}
		if col, ok := columns[m.Field]; ok {
			if m.Field == "level" {
				if err := checkLevel(m.Value); err != nil {
					return err
				}
			}
			w.add(col+" <> ?", m.Value)
			continue
		}
		p, err := attrPath(m.Field)
		if err != nil {
			return badField("exclude", "%v", err)
		}
		w.add2("json_extract_string(attrs, ?) IS DISTINCT FROM ?", p, m.Value)
	}
	return nil
}

// jsonNumber is JSON's number grammar; canonicalInt the one spelling of an
// integer JSON allows.
var (
	jsonNumber   = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
	canonicalInt = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)
)

// rawAttrPrefilter says whether every event whose attribute extracts (as
// json_extract_string does) to v has v in its raw attribute text, or a
// backslash there. A string value is verbatim unless escaped; an integer
// has one spelling; but a real number or an object is re-serialised on
// extraction (4.2e1 extracts as 42.0), so those values get no prefilter.
func rawAttrPrefilter(v string) bool {
	if v == "" || v[0] == '{' || v[0] == '[' {
		return false
	}
	return !jsonNumber.MatchString(v) || canonicalInt.MatchString(v)
}

// add2 is add for a condition with two parameters.
func (w *where) add2(cond string, a, b any) { w.addN(cond, a, b) }

// addN is add for a condition with a parameter per "?".
func (w *where) addN(cond string, args ...any) {
	for _, arg := range args {
		if s, ok := arg.(string); ok {
			arg = validString(s)
		}
		w.args = append(w.args, arg)
		cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(w.args)), 1)
	}
	w.conds = append(w.conds, cond)
}

// eventsWhere is the WHERE clause of f over the events table.
func (f *Filter) eventsWhere() (*where, error) {
	if err := checkWindow(f.From, f.To); err != nil {
		return nil, err
	}
	if err := checkLevel(f.Level); err != nil {
		return nil, err
	}
	w := &where{}
	for _, c := range []struct{ col, v string }{{"service", f.Service}, {"level", f.Level}, {"host", f.Host}, {"trace_id", f.TraceID}, {"tenant", f.Tenant}} {
		if c.v != "" {
			w.add(c.col+" = ?", c.v)
		}
	}
	if !f.From.IsZero() {
		w.add("ts >= ?", f.From.UTC())
	}
	if !f.To.IsZero() {
		w.add("ts < ?", f.To.UTC())
	}
	if f.Query != "" {
		// Not ILIKE: at 10M events it took 9.4 s against this form's 5.8 s
		// (docs/BENCHMARKS.md).
		w.add("contains(lower(message), lower(?))", f.Query)
	}
	if err := addMatches(w, "attr", f.Attrs, f.Exclude); err != nil {
		return nil, err
	}
	return w, nil
}

// HistogramRequest asks for event counts per Step bucket by level over
// [From, To) (both required) of the events Filter selects.
type HistogramRequest struct {
	Filter
	Step time.Duration
	// NoPartial: see StatsRequest.
	NoPartial bool
}

// Histogram is columnar, the shape charts take: Times[i] is the start of
// bucket i (Unix seconds), Levels[l][i] its count of level l. Every bucket of
// the window is present. Total is the sum of all counts.
type Histogram struct {
	From        time.Time          `json:"from"`
	To          time.Time          `json:"to"`
	StepSeconds int64              `json:"step_seconds"`
	Times       []int64            `json:"times"`
	Levels      map[string][]int64 `json:"levels"`
	Total       int64              `json:"total"`
	// Source is "rollups" when the per-second rollups answered (filters on
	// service, level and tenant only), "events" when the events were scanned.
	Source string `json:"source"`
	Coverage
}

// Histogram counts matching events per bucket and level.
func (s *Store) Histogram(ctx context.Context, req HistogramRequest) (*Histogram, error) {
	step, from, to, err := BucketWindow(req.From, req.To, req.Step)
	if err != nil {
		return nil, err
	}
	// Buckets are aligned to the epoch, so an unaligned window may span
	// one more than its length allows for.
	first := floorDiv(from, step) * step
	n := (to - first + step - 1) / step
	h := &Histogram{From: time.Unix(from, 0).UTC(), To: time.Unix(to, 0).UTC(), StepSeconds: step,
		Times: make([]int64, n), Levels: map[string][]int64{}}
	for i := range h.Times {
		h.Times[i] = first + int64(i)*step
	}
	var q string
	var w *where
	if req.onlyRollupDims() {
		// Rollups: a few rows per second (or per minute, per 10 s)
		// instead of every event.
		if err := checkLevel(req.Level); err != nil {
			return nil, err
		}
		w = &where{}
		src, _ := s.rollupSource(w, from, to, step) // rollup_minutes.go: minutes or 10 s spans where the step allows
		for _, c := range []struct{ col, v string }{{"service", req.Service}, {"level", req.Level}, {"tenant", req.Tenant}} {
			if c.v != "" {
				w.add(c.col+" = ?", c.v)
			}
		}
		if err := addMatches(w, "exclude", nil, req.Exclude); err != nil {
			return nil, err
		}
		w.args = append(w.args, step)
		sa := "$" + strconv.Itoa(len(w.args))
		q = `SELECT (sec - ((sec % ` + sa + `) + ` + sa + `) % ` + sa + `) AS b, level::VARCHAR, sum(count)::BIGINT
			FROM ` + src + w.String() + ` GROUP BY 1, 2`
		h.Source = "rollups"
	} else {
		f := req.Filter
		f.From, f.To = time.Unix(from, 0), time.Unix(to, 0)
		var err error
		if w, err = f.eventsWhere(); err != nil {
			return nil, err
		}
		w.src = s.filterSource(&f)
		w.args = append(w.args, step)
		sa := "$" + strconv.Itoa(len(w.args))
		q = `SELECT (floor(epoch(ts) / ` + sa + `) * ` + sa + `)::BIGINT AS b, level::VARCHAR, count(*)::BIGINT
			FROM ` + w.source() + w.String() + ` GROUP BY 1, 2`
		h.Source = "events"
	}
	err = s.query(ctx, "histogram", q, w.args, func(rows *sql.Rows) error {
		var b, c int64
		var level string
		if err := rows.Scan(&b, &level, &c); err != nil {
			return err
		}
		i := (b - first) / step
		if i < 0 || i >= n {
			return nil
		}
		col := h.Levels[level]
		if col == nil {
			col = make([]int64, n)
			h.Levels[level] = col
		}
		col[i] += c
		h.Total += c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// FieldsRequest asks for the top values of the fields of the matching events.
type FieldsRequest struct {
	Filter
	// Limit is how many values per field (0: DefaultTopValues).
	Limit int
	// NoPartial: see StatsRequest.
	NoPartial bool
}

// FieldValue is one value of a field and how many matching events have it.
type FieldValue struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// FieldStats are the top values of one field.
type FieldStats struct {
	Name string `json:"name"`
	// Attr is true for an attribute key (counted over the sample).
	Attr   bool         `json:"attr"`
	Values []FieldValue `json:"values"`
}

// FieldsResult lists service, level, host and tenant (counted over the
// newest FieldSampleSize matches), then attribute keys by how many of the
// newest AttrSampleSize matches carry them.
type FieldsResult struct {
	// Total is how many events the columns were counted over; Sampled is
	// true when more events matched (then Total is FieldSampleSize).
	Total      int64        `json:"total"`
	Sampled    bool         `json:"sampled"`
	AttrSample int64        `json:"attr_sample"`
	Fields     []FieldStats `json:"fields"`
	Coverage
}

// Fields returns the top values per field of the events f selects.
func (s *Store) Fields(ctx context.Context, req FieldsRequest) (*FieldsResult, error) {
	limit := req.Limit
	switch {
	case limit == 0:
		limit = DefaultTopValues
	case limit < 0 || limit > MaxTopValues:
		return nil, badField("limit", "%d is out of range 1..%d", limit, MaxTopValues)
	}
	w, err := req.eventsWhere()
	if err != nil {
		return nil, err
	}
	w.src = s.filterSource(&req.Filter)
	res := &FieldsResult{Fields: []FieldStats{}}
	idx := map[string]int{}
	for _, name := range []string{"service", "level", "host", "tenant"} {
		idx[name] = len(res.Fields)
		res.Fields = append(res.Fields, FieldStats{Name: name, Values: []FieldValue{}})
	}
	// The sample is the matches at or after a cut time, so the wide columns
	// are read only for the sample; see fieldsCut for how the cut is found.
	cutF, coarse, err := s.fieldsCut(ctx, req.Filter, w, FieldSampleSize, 0)
	if err != nil {
		return nil, err
	}
	if err := s.fieldColumns(ctx, w, cutF, limit, res, idx); err != nil {
		return nil, err
	}
	if coarse && res.Total < minFieldSample {
		// A filter the rollups cannot see (host, text, attributes) matched
		// too few of the newest events: find the cut by the matches
		// themselves (a scan) and count again.
		if cutF, _, err = s.fieldsCut(ctx, req.Filter, w, FieldSampleSize, FieldSampleSize); err != nil {
			return nil, err
		}
		for i := range res.Fields {
			res.Fields[i].Values = res.Fields[i].Values[:0]
		}
		if err := s.fieldColumns(ctx, w, cutF, limit, res, idx); err != nil {
			return nil, err
		}
	}
	sortValues(res.Fields)

	cutA, coarse, err := s.fieldsCut(ctx, req.Filter, w, AttrSampleSize, 0)
	if err != nil {
		return nil, err
	}
	n, err := s.fieldAttrs(ctx, w, cutA, limit, res, idx, true)
	if err != nil {
		return nil, err
	}
	if coarse && n < minAttrSample {
		if cutA, _, err = s.fieldsCut(ctx, req.Filter, w, AttrSampleSize, AttrSampleSize); err != nil {
			return nil, err
		}
		if _, err := s.fieldAttrs(ctx, w, cutA, limit, res, idx, false); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// Sample floors under which a coarse cut (one the rollups found without the
// host, text or attribute part of the filter) is redone by a scan.
const (
	minFieldSample = 1000
	minAttrSample  = 200
)

// fieldsCut finds the time from which the sample of n matches starts (zero:
// every match is in the sample). With scan == 0 it reads the per-second
// rollups, a few rows per second instead of every event: the newest second
// from which the events of the rollup part of the filter (service, level,
// tenant) number at least n. When that is the whole filter the sample holds
// about n matches; otherwise (coarse) it holds the matches among the newest
// n events of the rollup part, which for a selective filter may be few —
// then the caller asks again with scan = n: the timestamp of the n-th newest
// match, a top-N over every match (2.8–5.4 s at 10M events, BENCHMARKS.md).
func (s *Store) fieldsCut(ctx context.Context, f Filter, w *where, n, scan int) (cut time.Time, coarse bool, err error) {
	if scan > 0 {
		cut, err = s.sampleCut(ctx, w, scan)
		return cut, false, err
	}
	rw := &where{}
	if !f.From.IsZero() {
		rw.add("sec >= ?", floorDiv(f.From.Unix(), 1))
	}
	if !f.To.IsZero() {
		rw.add("sec < ?", f.To.Unix()+1)
	}
	for _, c := range []struct{ col, v string }{{"service", f.Service}, {"level", f.Level}, {"tenant", f.Tenant}} {
		if c.v != "" {
			rw.add(c.col+" = ?", c.v)
		}
	}
	var rollupEx []FieldMatch
	for _, m := range f.Exclude {
		if m.Field == "service" || m.Field == "level" || m.Field == "tenant" {
			rollupEx = append(rollupEx, m)
		}
	}
	if err := addMatches(rw, "exclude", nil, rollupEx); err != nil {
		return time.Time{}, false, err
	}
	// The per-minute rollups say from which minute on (rollup_minutes.go).
	if floor, ok, err := s.cutFloor(ctx, rw, f.To, n); err != nil {
		return time.Time{}, false, err
	} else if ok {
		rw.add("sec >= ?", floor)
	}
	rw.args = append(rw.args, n)
	var sec int64
	found := false
	err = s.query(ctx, "fields", `SELECT sec FROM (
			SELECT sec, sum(sum(count)) OVER (ORDER BY sec DESC ROWS UNBOUNDED PRECEDING) AS cum
			FROM rollups`+rw.String()+` GROUP BY sec)
		WHERE cum >= $`+strconv.Itoa(len(rw.args))+` ORDER BY sec DESC LIMIT 1`, rw.args,
		func(rows *sql.Rows) error { found = true; return rows.Scan(&sec) })
	if err != nil || !found {
		return time.Time{}, false, err
	}
	return time.Unix(sec, 0).UTC(), !f.onlyRollupDims(), nil
}

// fieldColumns counts service, level, host and tenant over the matches at
// or after cut (all when cut is zero) into res.
func (s *Store) fieldColumns(ctx context.Context, w *where, cutF time.Time, limit int, res *FieldsResult, idx map[string]int) error {
	args := append(append([]any{}, w.args...), limit)
	la := "$" + strconv.Itoa(len(args))
	sw := w.String()
	if !cutF.IsZero() {
		args = append(args, cutF)
		sw = andWhere(sw, "ts >= $"+strconv.Itoa(len(args)))
	}
	// One pass over the sample: the grouping sets count each column;
	// grouping() tells them apart and () is the total.
	q := `WITH m AS (SELECT service, level::VARCHAR AS level, host, tenant FROM ` + w.source() + sw + `),
		g AS (SELECT grouping(service, level, host, tenant) AS g, service, level, host, tenant, count(*)::BIGINT AS c
			FROM m GROUP BY GROUPING SETS ((service), (level), (host), (tenant), ()))
		SELECT g, coalesce(service, level, host, tenant, ''), c FROM g
		QUALIFY g = 15 OR row_number() OVER (PARTITION BY g ORDER BY c DESC, coalesce(service, level, host, tenant)) <= ` + la
	res.Total, res.Sampled = 0, !cutF.IsZero()
	return s.query(ctx, "fields", q, args, func(rows *sql.Rows) error {
		var g int
		var v string
		var c int64
		if err := rows.Scan(&g, &v, &c); err != nil {
			return err
		}
		// grouping() sets a bit for each column NOT grouped, first column highest.
		name := map[int]string{7: "service", 11: "level", 13: "host", 14: "tenant"}[g]
		if g == 15 {
			res.Total = c
			return nil
		}
		if name != "" {
			fs := &res.Fields[idx[name]]
			fs.Values = append(fs.Values, FieldValue{Value: v, Count: c})
		}
		return nil
	})
}

// fieldAttrs adds the attribute keys and their top values over the matches
// at or after cut into res (replacing those of an earlier call), and
// returns how many events the sample held. When keepEmpty is false a
// sample of none leaves res as it was.
func (s *Store) fieldAttrs(ctx context.Context, w *where, cutA time.Time, limit int, res *FieldsResult, idx map[string]int, keepEmpty bool) (int64, error) {
	var sample int64
	var attrs []FieldStats
	seen := map[string]int{}
	sargs := append(append([]any{}, w.args...), limit)
	la2 := "$" + strconv.Itoa(len(sargs))
	aw := andWhere(w.String(), "attrs IS NOT NULL")
	if !cutA.IsZero() {
		sargs = append(sargs, cutA)
		aw = andWhere(aw, "ts >= $"+strconv.Itoa(len(sargs)))
	}
	q := `WITH s AS (SELECT attrs FROM ` + w.source() + aw + `),
		k AS (SELECT attrs, unnest(json_keys(attrs)) AS k FROM s),
		kv AS (SELECT k, json_extract_string(attrs, '$."' || k || '"') AS v FROM k WHERE NOT contains(k, '"') AND NOT contains(k, '\')),
		c AS (SELECT k, v, count(*)::BIGINT AS c, sum(count(*)) OVER (PARTITION BY k)::BIGINT AS kc FROM kv WHERE v IS NOT NULL GROUP BY k, v)
		SELECT (SELECT count(*) FROM s)::BIGINT, k, v, c, kc FROM c
		QUALIFY row_number() OVER (PARTITION BY k ORDER BY c DESC, v) <= ` + la2 + `
		ORDER BY kc DESC, k, c DESC, v`
	err := s.query(ctx, "fields", q, sargs, func(rows *sql.Rows) error {
		var c, kc int64
		var k, v string
		if err := rows.Scan(&sample, &k, &v, &c, &kc); err != nil {
			return err
		}
		i, ok := seen[k]
		if !ok {
			i = len(attrs)
			seen[k] = i
			attrs = append(attrs, FieldStats{Name: k, Attr: true, Values: []FieldValue{}})
		}
		attrs[i].Values = append(attrs[i].Values, FieldValue{Value: v, Count: c})
		return nil
	})
	if err != nil || (sample == 0 && !keepEmpty) {
		return sample, err
	}
	// Drop an earlier call's attributes: the columns come first.
	n := 0
	for _, fs := range res.Fields {
		if !fs.Attr {
			res.Fields[n] = fs
			n++
		}
	}
	res.Fields = append(res.Fields[:n], attrs...)
	for k := range idx {
		if strings.HasPrefix(k, "attr:") {
			delete(idx, k)
		}
	}
	for i, fs := range attrs {
		idx["attr:"+fs.Name] = n + i
	}
	res.AttrSample = sample
	return sample, nil
}

// sampleCut is the timestamp of the n-th newest event w selects, or zero
// when fewer match (then the sample is every match).
func (s *Store) sampleCut(ctx context.Context, w *where, n int) (time.Time, error) {
	args := append(append([]any{}, w.args...), n-1)
	var cut time.Time
	err := s.query(ctx, "fields", `SELECT ts FROM `+w.source()+w.String()+` ORDER BY ts DESC LIMIT 1 OFFSET $`+strconv.Itoa(len(args)), args,
		func(rows *sql.Rows) error { return rows.Scan(&cut) })
	return cut, err
}

func andWhere(where, cond string) string {
	if where == "" {
		return " WHERE " + cond
	}
	return where + " AND " + cond
}

func sortValues(fs []FieldStats) {
	for i := range fs {
		v := fs[i].Values
		for a := 1; a < len(v); a++ {
			for b := a; b > 0 && (v[b].Count > v[b-1].Count || (v[b].Count == v[b-1].Count && v[b].Value < v[b-1].Value)); b-- {
				v[b], v[b-1] = v[b-1], v[b]
			}
		}
	}
}

// ContextRequest asks for the events around one stored event (named by
// where it came from) from the same service, or the same host when ByHost.
type ContextRequest struct {
	Topic     string
	Partition int32
	Offset    int64
	N         int // lines before and after; 0 = DefaultContextLines
	ByHost    bool
	// Tenant, when set, must be the hit's tenant (a tenant token reads only
	// its own events).
	Tenant string
}

// ContextResult is the hit with up to N events before (oldest first) and
// after it, in the order (ts, partition, offset).
type ContextResult struct {
	Before []StoredEvent `json:"before"`
	Hit    StoredEvent   `json:"hit"`
	After  []StoredEvent `json:"after"`
}

const eventCols = `ts, service, level, message, host, trace_id, span_id, tenant, attrs::VARCHAR, bytes, topic, "partition", "offset"`

func scanEvent(rows *sql.Rows) (StoredEvent, error) {
	var e StoredEvent
	var attrs sql.NullString
	err := rows.Scan(&e.Time, &e.Service, &e.Level, &e.Message, &e.Host, &e.TraceID, &e.SpanID,
		&e.Tenant, &attrs, &e.Bytes, &e.Topic, &e.Partition, &e.Offset)
	e.Time = e.Time.UTC()
	if attrs.Valid {
		e.Attrs = json.RawMessage(attrs.String)
	}
	return e, err
}

// ErrNotFound means the event a request named is not stored (expired, or
// never was).
var ErrNotFound = fmt.Errorf("store: %w: no such event", ErrInvalidRequest)

// Context returns the events around the one req names.
func (s *Store) Context(ctx context.Context, req ContextRequest) (*ContextResult, error) {
	n := req.N
	switch {
	case n == 0:
		n = DefaultContextLines
	case n < 0 || n > MaxContextLines:
		return nil, badField("n", "%d is out of range 1..%d", n, MaxContextLines)
	}
	var hit *StoredEvent
	err := s.query(ctx, "context", `SELECT `+eventCols+` FROM events WHERE topic = $1 AND "partition" = $2 AND "offset" = $3 LIMIT 1`,
		[]any{req.Topic, req.Partition, req.Offset}, func(rows *sql.Rows) error {
			e, err := scanEvent(rows)
			hit = &e
			return err
		})
	if err != nil {
		return nil, err
	}
	if hit != nil && req.Tenant != "" && hit.Tenant != req.Tenant {
		hit = nil // another tenant's event is, to this caller, not there
	}
	if hit == nil {
		return nil, &RequestError{Field: "offset", Reason: fmt.Sprintf("no event stored at %s/%d offset %d (expired by retention, or never stored)", req.Topic, req.Partition, req.Offset)}
	}
	col, val := "service", hit.Service
	if req.ByHost {
		col, val = "host", hit.Host
	}
	res := &ContextResult{Hit: *hit, Before: []StoredEvent{}, After: []StoredEvent{}}
	ts := hit.Time
	for _, side := range []struct {
		cmp, order string
		out        *[]StoredEvent
	}{{"<", "DESC", &res.Before}, {">", "ASC", &res.After}} {
		q := `SELECT ` + eventCols + ` FROM events WHERE ` + col + ` = $1 AND tenant = $2 AND
			(ts ` + side.cmp + ` $3 OR (ts = $3 AND ("partition" ` + side.cmp + ` $4 OR ("partition" = $4 AND "offset" ` + side.cmp + ` $5))))
			ORDER BY ts ` + side.order + `, "partition" ` + side.order + `, "offset" ` + side.order + ` LIMIT $6`
		err := s.query(ctx, "context", q, []any{val, hit.Tenant, ts, hit.Partition, hit.Offset, n}, func(rows *sql.Rows) error {
			e, err := scanEvent(rows)
			*side.out = append(*side.out, e)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	for i, j := 0, len(res.Before)-1; i < j; i, j = i+1, j-1 {
		res.Before[i], res.Before[j] = res.Before[j], res.Before[i]
	}
	return res, nil
}

// Export calls each for every event f selects, newest first, with no row
// cap. It holds a query slot for the whole export but not the query
// timeout: an export of millions of rows runs as long as the client reads
// (cancel ctx to stop it).
func (s *Store) Export(ctx context.Context, f Filter, each func(*StoredEvent) error) error {
	w, err := f.eventsWhere()
	if err != nil {
		return err
	}
	w.src = s.filterSource(&f)
	if s.isClosed.Load() {
		return ErrClosed
	}
	select {
	case s.readers <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wait for a query slot: %w", ctx.Err())
	}
	defer func() { <-s.readers }()
	rows, err := s.db.QueryContext(ctx, `SELECT `+eventCols+` FROM `+w.source()+w.String()+` ORDER BY ts DESC, "partition" DESC, "offset" DESC`, w.args...)
	if err != nil {
		s.metrics.queryErrors.WithLabelValues("export").Inc()
		return fmt.Errorf("export query in DuckDB: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return fmt.Errorf("export: read a row: %w", err)
		}
		if err := each(&e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// searchWiden is how much more of the newest events each SearchNewest step
// looks through when the one before held too few matches.
const (
	searchWiden     = 16
	searchWidenStep = 3
	// searchIndexedRows is the most events the blocks a text's words may
	// be in can hold for SearchNewest to search them all at once rather
	// than the newest seconds first: ~16 blocks, well under 100 ms of
	// scanning on one core.
	searchIndexedRows = 16 * TraceBlockRows
)

// SearchNewest answers like Search, faster when the window holds many
// events: Search's ORDER BY ts DESC LIMIT n over the events view (a UNION
// ALL of the store's two files) sorts every match in the window — seconds
// at 10M events (docs/BENCHMARKS.md). The per-second rollups say from which
// second the newest Limit+1 events of the rollup part of the filter
// (service, level, tenant) start; searching from there reads a few row
// groups. A result with more than Limit events there is the same as the
// whole window's (every event before the cut is older than all of them);
// with fewer (a host, text or attribute filter matched few of those), the
// next step looks through 16 times more, and after three steps the whole
// window is searched.
func (s *Store) SearchNewest(ctx context.Context, req SearchRequest) (*SearchResult, error) {
	limit := req.Limit
	if limit == 0 {
		limit = DefaultSearchLimit
	}
	if limit < 0 || limit > MaxSearchLimit {
		return s.Search(ctx, req) // refused there, with the field named
	}
	if req.TraceID != "" {
		// The rollups know nothing of trace ids; the trace index
		// (traceindex.go) narrows the search to the id's blocks instead.
		return s.Search(ctx, req)
	}
	// A text with whole words: the token index (tokenindex.go) says which
	// blocks may hold them. Few: search those. Many (a common word): the
	// newest seconds below hold a first page sooner.
	plan, err := s.planSearch(ctx, req)
	if err != nil {
		return nil, err
	}
	if _, rows := plan.within(req.From, req.To); plan.indexed && rows <= searchIndexedRows {
		return s.search(ctx, req, &plan)
	}
	n := limit + 1
	for range searchWidenStep {
		cut, _, err := s.fieldsCut(ctx, req.Filter(), nil, n, 0)
		if err != nil {
			return nil, err
		}
		if cut.IsZero() || !cut.After(req.From) {
			break // the window holds fewer: search it all
		}
		narrow := req
		narrow.From = cut
		res, err := s.search(ctx, narrow, &plan)
		if err != nil || res.More {
			return res, err
		}
		n *= searchWiden
	}
	return s.search(ctx, req, &plan)
}
