package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wirelog/wirelog/internal/event"
)

// RequestError is a bad field of a query request. It matches
// ErrInvalidRequest with errors.Is; Field names the field the caller must fix.
type RequestError struct {
	Field  string
	Reason string
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("store: invalid %s: %s", e.Field, e.Reason)
}

// Unwrap lets errors.Is(err, ErrInvalidRequest) match.
func (e *RequestError) Unwrap() error { return ErrInvalidRequest }

func badField(field, format string, args ...any) error {
	return &RequestError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ValidLevel reports whether name is a level the store can hold
// ("trace" … "fatal", or "unknown").
func ValidLevel(name string) bool {
	for l := event.LevelUnknown; l <= event.LevelFatal; l++ {
		if l.String() == name {
			return true
		}
	}
	return false
}

func checkWindow(from, to time.Time) error {
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return badField("to", "%s is before from %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	return nil
}

func checkLevel(level string) error {
	if level != "" && !ValidLevel(level) {
		return badField("level", "%q is not one of trace, debug, info, warn, error, fatal, unknown", level)
	}
	return nil
}

// where builds a parameterised WHERE clause. Only fixed column names are
// ever written into SQL text; every value is a bind parameter.
type where struct {
	conds []string
	args  []any
	// src is the FROM source the conditions apply to (filterSource);
	// empty is the events view.
	src string
}

// source is w's FROM source.
func (w *where) source() string {
	if w.src == "" {
		return "events"
	}
	return w.src
}

func (w *where) add(cond string, arg any) {
	if s, ok := arg.(string); ok {
		// DuckDB cannot bind invalid UTF-8; stored strings were repaired
		// the same way, so a repaired filter still finds them.
		arg = validString(s)
	}
	w.args = append(w.args, arg)
	w.conds = append(w.conds, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(w.args))))
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// query runs sql on a reader connection with the query timeout and records
// latency and DuckDB failures under kind.
func (s *Store) query(ctx context.Context, kind, q string, args []any, scan func(*sql.Rows) error) error {
	if s.isClosed.Load() {
		return ErrClosed
	}
	start := time.Now()
	qctx, release, err := s.acquireReader(ctx)
	if err != nil {
		return err
	}
	defer release()
	err = func() error {
		rows, err := s.db.QueryContext(qctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}()
	s.metrics.querySeconds.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	if err != nil {
		s.metrics.queryErrors.WithLabelValues(kind).Inc()
		return fmt.Errorf("%s query in DuckDB: %w", kind, err)
	}
	return nil
}

// Coverage says whether an answer covers all the stored data. DuckDB always
// does; a VictoriaLogs cluster with a storage node down answers from the
// nodes it reaches, and then says so: Partial with the Missing nodes.
type Coverage struct {
	Partial bool     `json:"partial,omitempty"`
	Missing []string `json:"missing,omitempty"`
}

// StatsRequest selects the window of Stats; a zero From or To leaves that
// side open, so the zero request covers everything retained. A non-empty
// Tenant counts only that tenant's events.
type StatsRequest struct {
	From, To time.Time
	Tenant   string
	// NoPartial refuses an answer that misses part of the data (a store
	// that cannot read everything fails instead of answering Partial).
	NoPartial bool
}

// Stats are totals of stored events. The window is resolved to whole seconds
// (From rounded down, To rounded up), the resolution of the rollups.
type Stats struct {
	From      *time.Time       `json:"from,omitempty"`
	To        *time.Time       `json:"to,omitempty"`
	Events    int64            `json:"events"`
	Bytes     int64            `json:"bytes"`
	ByLevel   map[string]int64 `json:"by_level"`
	ByService map[string]int64 `json:"by_service"`
	Coverage
}

// BucketWindow checks a query window [from, to) and its bucket step, as
// rollups and histograms take them on every store, and returns the step
// and the window's ends in whole seconds. The window's length decides the
// bucket count, not its alignment: 10,000 s at step=1s is 10,000 buckets
// even when its ends fall inside seconds.
func BucketWindow(from, to time.Time, step time.Duration) (stepSec, fromSec, toSec int64, err error) {
	switch {
	case from.IsZero():
		return 0, 0, 0, badField("from", "is required")
	case to.IsZero():
		return 0, 0, 0, badField("to", "is required")
	case !to.After(from):
		return 0, 0, 0, badField("to", "%s must be after from %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	case step < time.Second || step%time.Second != 0:
		return 0, 0, 0, badField("step", "%s must be a whole number of seconds, at least 1s", step)
	}
	if n := int64((to.Sub(from) + step - 1) / step); n > MaxRollupBuckets {
		return 0, 0, 0, badField("step", "%s gives %d buckets over the window; at most %d are allowed, use a larger step", step, n, MaxRollupBuckets)
	}
	return int64(step / time.Second), secFloor(from), secCeil(to), nil
}

func secFloor(t time.Time) int64 { return t.Truncate(time.Second).Unix() }

func secCeil(t time.Time) int64 {
	s := t.Truncate(time.Second)
	if s.Equal(t) {
		return s.Unix()
	}
	return s.Unix() + 1
}

// Stats returns event and byte totals, by level and by service.
func (s *Store) Stats(ctx context.Context, req StatsRequest) (*Stats, error) {
	if err := checkWindow(req.From, req.To); err != nil {
		return nil, err
	}
	st := &Stats{ByLevel: make(map[string]int64), ByService: make(map[string]int64)}
	for _, l := range event.Levels() {
		st.ByLevel[l] = 0
	}
	var w where
	from, to := int64(math.MinInt64), int64(math.MaxInt64)
	if !req.From.IsZero() {
		t := req.From.UTC()
		st.From = &t
		from = secFloor(req.From)
	}
	if !req.To.IsZero() {
		t := req.To.UTC()
		st.To = &t
		to = secCeil(req.To)
	}
	src, _ := s.rollupSource(&w, from, to, 0) // rollup_minutes.go
	if req.Tenant != "" {
		w.add("tenant = ?", req.Tenant)
	}
	// One scan: per-level and per-service sums, plus the total.
	q := `SELECT grouping(level, service) AS g, level, service,
			sum(count)::BIGINT, sum(bytes)::BIGINT
		FROM ` + src + w.String() + `
		GROUP BY GROUPING SETS ((level), (service), ())`
	err := s.query(ctx, "stats", q, w.args, func(rows *sql.Rows) error {
		var g int
		var level, service sql.NullString
		var count, bytes sql.NullInt64
		if err := rows.Scan(&g, &level, &service, &count, &bytes); err != nil {
			return err
		}
		switch g {
		case 1: // grouped by level (service not grouped)
			st.ByLevel[level.String] += count.Int64
		case 2: // grouped by service
			st.ByService[service.String] += count.Int64
		case 3:
			st.Events, st.Bytes = count.Int64, bytes.Int64
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// Rollup dimensions.
const (
	ByService = "service"
	ByLevel   = "level"
	ByTenant  = "tenant"
)

// Dimensions are the names Rollups splits by, in the order of RollupsRequest.By.
var Dimensions = []string{ByService, ByLevel, ByTenant}

// RollupsRequest selects a time series of counts. From and To are required;
// Step is a whole number of seconds (at least one); buckets are aligned to
// multiples of Step since the Unix epoch. By splits the series by any of
// service, level and tenant; Service, Level and Tenant filter.
type RollupsRequest struct {
	From, To time.Time
	Step     time.Duration
	By       []string
	Service  string
	Level    string
	Tenant   string
	// NoPartial: see StatsRequest.
	NoPartial bool
}

// Rollups is the answer of Rollups: one series per combination of the By
// dimensions (one series in total when By is empty). Points are sorted by
// time; a bucket without events has no point (its count is zero).
type Rollups struct {
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	StepSeconds int64     `json:"step_seconds"`
	By          []string  `json:"by"`
	Series      []Series  `json:"series"`
	Coverage
}

// Series is the points of one (service, level, tenant) combination; a
// dimension that is not split on is left out.
type Series struct {
	Service *string `json:"service,omitempty"`
	Level   *string `json:"level,omitempty"`
	Tenant  *string `json:"tenant,omitempty"`
	Points  []Point `json:"points"`
}

// Point is the count and bytes of one bucket starting at Time.
type Point struct {
	Time  time.Time `json:"ts"`
	Count int64     `json:"count"`
	Bytes int64     `json:"bytes"`
}

// Rollups returns counts and bytes per Step bucket in [From, To).
func (s *Store) Rollups(ctx context.Context, req RollupsRequest) (*Rollups, error) {
	step, from, to, err := BucketWindow(req.From, req.To, req.Step)
	if err != nil {
		return nil, err
	}
	bySvc, byLvl, byTen := false, false, false
	for _, d := range req.By {
		switch d {
		case ByService:
			bySvc = true
		case ByLevel:
			byLvl = true
		case ByTenant:
			byTen = true
		default:
			return nil, badField("by", "%q is not a dimension; use any of service, level, tenant", d)
		}
	}
	if err := checkLevel(req.Level); err != nil {
		return nil, err
	}
	var w where
	src, width := s.rollupSource(&w, from, to, step) // rollup_minutes.go
	if req.Service != "" {
		w.add("service = ?", req.Service)
	}
	if req.Level != "" {
		w.add("level = ?", req.Level)
	}
	if req.Tenant != "" {
		w.add("tenant = ?", req.Tenant)
	}
	svcCol, lvlCol, tenCol := "NULL::VARCHAR", "NULL::VARCHAR", "NULL::VARCHAR"
	if bySvc {
		svcCol = "service"
	}
	if byLvl {
		lvlCol = "level"
	}
	if byTen {
		tenCol = "tenant"
	}
	// Floor division that is also right before 1970.
	// The bucket as its number from the window's first bucket, an INTEGER:
	// most are below 256, which Go boxes without allocating (listPoints).
	// sec - first >= 0 in the window, so plain division floors.
	first := floorDiv(from, step) * step
	stepArg := len(w.args) + 1
	bucket := fmt.Sprintf("((sec - $%d) // $%d)::INTEGER", stepArg, stepArg+1)
	w.args = append(w.args, first, step)
	// One row per series, its buckets, counts and bytes as three lists:
	// a 1 h rollup by service and level at step 10 s is ~50-65k points,
	// and fetching them as rows through database/sql cost more than
	// DuckDB's aggregation. The lists are not ordered in DuckDB (an
	// ordered aggregate sorts every series on its own, and cost more than
	// the rest of the query): listPoints sorts them, and sums the rows of
	// one bucket. When the source's rows are as wide as the step (step
	// 10 s from rollups_10s), they are nearly the points already, and
	// summing them per bucket in DuckDB first (a hash aggregate of as many
	// groups as rows) was the largest part of the query: listPoints sums
	// the few that share a bucket (partial rows not compacted yet, rows of
	// both twins). Series come in the order of (service, level, tenant),
	// level in its ENUM order, NULLs (a dimension not split on) last
	// (docs/bench/store.md, issue 12).
	rows := `SELECT ` + svcCol + ` AS s, ` + lvlCol + ` AS l, ` + tenCol + ` AS t, ` + bucket + ` AS b,
			count AS c, bytes AS y FROM ` + src + w.String()
	if width != step {
		rows = `SELECT ` + svcCol + ` AS s, ` + lvlCol + ` AS l, ` + tenCol + ` AS t, ` + bucket + ` AS b,
				sum(count)::BIGINT AS c, sum(bytes)::BIGINT AS y
			FROM ` + src + w.String() + `
			GROUP BY 1, 2, 3, 4`
	}
	q := `SELECT s, l, t, list(b), list(c), list(y) FROM (` + rows + `) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`

	res := &Rollups{From: time.Unix(from, 0).UTC(), To: time.Unix(to, 0).UTC(), StepSeconds: step, By: []string{}, Series: []Series{}}
	if bySvc {
		res.By = append(res.By, ByService)
	}
	if byLvl {
		res.By = append(res.By, ByLevel)
	}
	if byTen {
		res.By = append(res.By, ByTenant)
	}
	err = s.query(ctx, "rollups", q, w.args, func(rows *sql.Rows) error {
		var svc, lvl, ten sql.NullString
		var bs, cs, ys any
		if err := rows.Scan(&svc, &lvl, &ten, &bs, &cs, &ys); err != nil {
			return err
		}
		ser := Series{}
		if svc.Valid {
			ser.Service = &svc.String
		}
		if lvl.Valid {
			ser.Level = &lvl.String
		}
		if ten.Valid {
			ser.Tenant = &ten.String
		}
		var err error
		ser.Points, err = listPoints(bs, cs, ys, first, step)
		res.Series = append(res.Series, ser)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// listPoints zips the three lists of a series (bucket numbers from the
// bucket starting at first, counts, bytes, in any order, a bucket possibly
// more than once) into its points, sorted by time, one per bucket.
func listPoints(bs, cs, ys any, first, step int64) ([]Point, error) {
	b, okb := bs.([]any)
	c, okc := cs.([]any)
	y, oky := ys.([]any)
	if !okb || !okc || !oky || len(c) != len(b) || len(y) != len(b) {
		return nil, fmt.Errorf("rollups: DuckDB returned %T/%T/%T lists of unequal length for one series", bs, cs, ys)
	}
	type bucketPoint struct {
		n            int32
		count, bytes int64
	}
	bp := make([]bucketPoint, len(b))
	for i := range b {
		n, ok1 := b[i].(int32)
		count, ok2 := c[i].(int64)
		by, ok3 := y[i].(int64)
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("rollups: DuckDB returned %T/%T/%T for a point, want INTEGER/BIGINT/BIGINT", b[i], c[i], y[i])
		}
		bp[i] = bucketPoint{n, count, by}
	}
	// By the integer, not by time.Time (a third of the answer's cost);
	// rows of one bucket summed.
	slices.SortFunc(bp, func(p, q bucketPoint) int { return cmp.Compare(p.n, q.n) })
	pts := make([]Point, 0, len(bp))
	for i, p := range bp {
		if i > 0 && p.n == bp[i-1].n {
			pts[len(pts)-1].Count += p.count
			pts[len(pts)-1].Bytes += p.bytes
			continue
		}
		pts = append(pts, Point{Time: time.Unix(first+int64(p.n)*step, 0).UTC(), Count: p.count, Bytes: p.bytes})
	}
	return pts, nil
}

// SearchRequest filters stored events. Every non-zero field must match:
// Service, Level, TraceID and Tenant exactly, Query as a case-insensitive
// substring of the message; the window is [From, To). Limit is 1 …
// MaxSearchLimit, 0 meaning DefaultSearchLimit.
type SearchRequest struct {
	Service string
	Level   string
	Query   string
	TraceID string
	Tenant  string
	From    time.Time
	To      time.Time
	Limit   int
	// Host matches exactly; Attrs must all match and Exclude must not
	// (see Filter, explore.go).
	Host           string
	Attrs, Exclude []FieldMatch
	// NoPartial: see StatsRequest.
	NoPartial bool
}

// StoredEvent is one event as stored, with where it came from.
type StoredEvent struct {
	Time      time.Time       `json:"ts"`
	Service   string          `json:"service"`
	Level     string          `json:"level"`
	Message   string          `json:"message"`
	Host      string          `json:"host"`
	TraceID   string          `json:"trace_id"`
	SpanID    string          `json:"span_id"`
	Tenant    string          `json:"tenant"`
	Attrs     json.RawMessage `json:"attrs"`
	Bytes     int             `json:"bytes"`
	Topic     string          `json:"topic"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
}

// SearchResult holds the matching events, newest first. More is true when
// more events matched than Limit.
type SearchResult struct {
	Events []StoredEvent `json:"events"`
	Limit  int           `json:"limit"`
	More   bool          `json:"more"`
	Coverage
}

// Search returns the newest events matching req.
func (s *Store) Search(ctx context.Context, req SearchRequest) (*SearchResult, error) {
	return s.search(ctx, req, nil)
}

// search is Search with the skip index's answer for req already asked
// (plan; nil: ask it here).
func (s *Store) search(ctx context.Context, req SearchRequest, plan *skipPlan) (*SearchResult, error) {
	limit := req.Limit
	switch {
	case limit == 0:
		limit = DefaultSearchLimit
	case limit < 0 || limit > MaxSearchLimit:
		return nil, badField("limit", "%d is out of range 1..%d", limit, MaxSearchLimit)
	}
	if err := checkWindow(req.From, req.To); err != nil {
		return nil, err
	}
	if err := checkLevel(req.Level); err != nil {
		return nil, err
	}
	var w where
	if req.Service != "" {
		w.add("service = ?", req.Service)
	}
	if req.Level != "" {
		w.add("level = ?", req.Level)
	}
	if req.TraceID != "" {
		w.add("trace_id = ?", req.TraceID)
	}
	// Only the time ranges whose blooms may hold the trace id or the words
	// of the text (traceindex.go, tokenindex.go).
	if plan == nil {
		p, err := s.planSearch(ctx, req)
		if err != nil {
			return nil, err
		}
		plan = &p
	}
	ranges, _ := plan.within(req.From, req.To)
	if plan.indexed && len(ranges) == 0 {
		return &SearchResult{Events: []StoredEvent{}, Limit: limit}, nil
	}
	if req.Tenant != "" {
		w.add("tenant = ?", req.Tenant)
	}
	if !req.From.IsZero() {
		w.add("ts >= ?", req.From.UTC())
	}
	if !req.To.IsZero() {
		w.add("ts < ?", req.To.UTC())
	}
	if req.Query != "" {
		w.add("contains(lower(message), lower(?))", req.Query)
	}
	if req.Host != "" {
		w.add("host = ?", req.Host)
	}
	if err := addMatches(&w, "attr", req.Attrs, req.Exclude); err != nil {
		return nil, err
	}
	src := s.eventsSource(req.From, req.To)
	if len(ranges) > 0 {
		src = s.rangeSource(&w, ranges)
	}
	w.args = append(w.args, limit+1)
	q := `SELECT ts, service, level, message, host, trace_id, span_id, tenant, attrs::VARCHAR,
			bytes, topic, "partition", "offset"
		FROM ` + src + w.String() + `
		ORDER BY ts DESC, "partition" DESC, "offset" DESC LIMIT $` + strconv.Itoa(len(w.args))
	res := &SearchResult{Events: make([]StoredEvent, 0, min(limit, 256)), Limit: limit}
	err := s.query(ctx, "search", q, w.args, func(rows *sql.Rows) error {
		var e StoredEvent
		var attrs sql.NullString
		if err := rows.Scan(&e.Time, &e.Service, &e.Level, &e.Message, &e.Host, &e.TraceID, &e.SpanID,
			&e.Tenant, &attrs, &e.Bytes, &e.Topic, &e.Partition, &e.Offset); err != nil {
			return err
		}
		e.Time = e.Time.UTC()
		if attrs.Valid {
			e.Attrs = json.RawMessage(attrs.String)
		}
		res.Events = append(res.Events, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(res.Events) > limit {
		res.Events = res.Events[:limit]
		res.More = true
	}
	return res, nil
}
