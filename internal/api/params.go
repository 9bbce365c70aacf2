package api

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wirelog/wirelog/internal/store"
)

// ParamError is a bad query parameter; the API answers it with 400 and a JSON
// body naming the parameter.
type ParamError struct {
	Param  string
	Reason string
}

func (e *ParamError) Error() string { return fmt.Sprintf("parameter %s: %s", e.Param, e.Reason) }

func badParam(param, format string, args ...any) *ParamError {
	return &ParamError{Param: param, Reason: fmt.Sprintf(format, args...)}
}

// ParseTime reads a time parameter: RFC 3339 ("2026-03-01T12:00:00Z"), Unix
// epoch seconds, milliseconds, microseconds or nanoseconds (told apart by
// magnitude: below 1e11 seconds, below 1e14 ms, below 1e17 µs), "now", or a
// time relative to now: "-15m", "now-15m", "-1h30m", "-7d".
func ParseTime(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, fmt.Errorf("empty time")
	}
	if v == "now" {
		return now, nil
	}
	rel := strings.TrimPrefix(v, "now")
	if strings.HasPrefix(rel, "-") || (rel != v && strings.HasPrefix(rel, "+")) {
		d, err := parseDuration(rel[1:])
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not a relative time like -15m, -1h30m or -7d", v)
		}
		if rel[0] == '-' {
			d = -d
		}
		return now.Add(d), nil
	}
	if isDigits(v) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is out of range for an epoch time", v)
		}
		switch {
		case n < 1e11:
			return time.Unix(n, 0).UTC(), nil
		case n < 1e14:
			return time.UnixMilli(n).UTC(), nil
		case n < 1e17:
			return time.UnixMicro(n).UTC(), nil
		default:
			return time.Unix(0, n).UTC(), nil
		}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not RFC 3339 (2026-03-01T12:00:00Z), epoch seconds or ms, or relative (-15m)", v)
	}
	return t.UTC(), nil
}

// parseDuration is time.ParseDuration plus a whole number of days ("7d").
func parseDuration(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok && isDigits(days) {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n > 100*365 {
			return 0, fmt.Errorf("%q: too many days", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", v)
	}
	return d, nil
}

// ParseStep reads a rollup step: a Go duration ("10s", "1m", "1d") or a whole
// number of seconds ("60"); at least one second, whole seconds.
func ParseStep(v string) (time.Duration, error) {
	var d time.Duration
	if isDigits(v) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > 1<<32 {
			return 0, fmt.Errorf("%q is too large", v)
		}
		d = time.Duration(n) * time.Second
	} else {
		var err error
		if d, err = parseDuration(v); err != nil {
			return 0, fmt.Errorf("%q is not a duration like 10s, 1m or 1h", v)
		}
	}
	if d < time.Second || d%time.Second != 0 {
		return 0, fmt.Errorf("%q must be a whole number of seconds, at least 1s", v)
	}
	return d, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// params reads the query string of one endpoint strictly: a parameter the
// endpoint does not know, or one given twice, is an error naming it, so a
// typo ("servcie=") is not silently ignored.
type params struct {
	q   url.Values
	now time.Time
	err *ParamError
}

func newParams(raw string, allowed []string, now time.Time) *params {
	p := &params{now: now}
	q, err := url.ParseQuery(raw)
	if err != nil {
		p.err = badParam("query", "cannot parse the query string: %v", err)
		return p
	}
	p.q = q
	for name, vs := range q {
		known := false
		for _, a := range allowed {
			if name == a {
				known = true
				break
			}
		}
		if !known {
			p.err = badParam(name, "unknown parameter; this endpoint takes %s", strings.Join(allowed, ", "))
			return p
		}
		if len(vs) > 1 && !repeatable[name] {
			p.err = badParam(name, "given %d times; give it once", len(vs))
			return p
		}
	}
	return p
}

// has reports whether the parameter was given (even empty).
func (p *params) has(name string) bool {
	_, ok := p.q[name]
	return p.err == nil && ok
}

// repeatable are the parameters that may be given more than once (each
// adds a condition).
var repeatable = map[string]bool{"attr": true, "exclude": true}

// matches reads every field=value of a repeatable parameter.
func (p *params) matches(name string) []store.FieldMatch {
	if p.err != nil {
		return nil
	}
	var out []store.FieldMatch
	for _, v := range p.q[name] {
		m, err := store.ParseFieldMatch(v)
		if err != nil {
			p.err = badParam(name, "%v", err)
			return nil
		}
		out = append(out, m)
	}
	return out
}

func (p *params) str(name string) string {
	if p.err != nil {
		return ""
	}
	return p.q.Get(name)
}

func (p *params) time(name string, def time.Time) time.Time {
	v := p.str(name)
	if p.err != nil || v == "" {
		return def
	}
	t, err := ParseTime(v, p.now)
	if err != nil {
		p.err = badParam(name, "%v", err)
	}
	// Nothing is stored before 1970, and the zero time.Time (0001-01-01)
	// means "not given" further down: an early bound is the epoch.
	if t.Before(epoch) {
		t = epoch
	}
	return t
}

var epoch = time.Unix(0, 0).UTC()

func (p *params) level(name string) string {
	v := p.str(name)
	if v != "" && !store.ValidLevel(v) {
		p.err = badParam(name, "%q is not one of trace, debug, info, warn, error, fatal, unknown", v)
	}
	return v
}

func (p *params) limit(name string) int {
	v := p.str(name)
	if p.err != nil || v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > store.MaxSearchLimit {
		p.err = badParam(name, "%q is not a number from 1 to %d", v, store.MaxSearchLimit)
		return 0
	}
	return n
}

// maxRate reads a tail's events-a-second cap (0 when absent).
func (p *params) maxRate(name string) int {
	v := p.str(name)
	if p.err != nil || v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxTailRate {
		p.err = badParam(name, "%q is not a number of events a second from 1 to %d", v, maxTailRate)
		return 0
	}
	return n
}

// maxTailRate bounds the max_rate parameter.
const maxTailRate = 1_000_000

// partial reads a boolean that defaults to true: whether the answer may miss
// data a store cannot reach right now (said in the answer as "partial").
func (p *params) partial(name string) bool {
	v := p.str(name)
	if p.err != nil || v == "" {
		return true
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.err = badParam(name, "%q is not true or false", v)
		return true
	}
	return b
}

func (p *params) step(name string) time.Duration {
	v := p.str(name)
	if p.err != nil || v == "" {
		return 0
	}
	d, err := ParseStep(v)
	if err != nil {
		p.err = badParam(name, "%v", err)
	}
	return d
}

func (p *params) dims(name string) []string {
	v := p.str(name)
	if p.err != nil || v == "" {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, d := range strings.Split(v, ",") {
		d = strings.TrimSpace(d)
		if !slices.Contains(store.Dimensions, d) {
			p.err = badParam(name, "%q is not a dimension; use any of service, level, tenant, comma-separated", d)
			return nil
		}
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// window checks that to is after from when both are given.
func (p *params) window(from, to time.Time) {
	if p.err == nil && !from.IsZero() && !to.IsZero() && to.Before(from) {
		p.err = badParam("to", "%s is before from %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
}

// autoStep is the smallest round step that gives at most maxAutoBuckets
// buckets over the window.
func autoStep(window time.Duration) time.Duration {
	for _, s := range []time.Duration{time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour,
		3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour} {
		if window/s <= maxAutoBuckets {
			return s
		}
	}
	return (window/maxAutoBuckets + 24*time.Hour - 1).Truncate(24 * time.Hour)
}
