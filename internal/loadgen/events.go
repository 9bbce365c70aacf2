package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wirelog/wirelog/internal/event"
)

// The synthetic world: services, the routes they serve, the hosts they run
// on and what they log. Names are made up but shaped like a real shop's.
var services = []string{
	"checkout", "payments-api", "cart", "catalog", "search", "recommendations",
	"inventory", "shipping", "orders", "users", "auth", "sessions",
	"notifications", "email-sender", "sms-gateway", "billing", "invoices",
	"fraud-detection", "pricing", "promotions", "reviews", "media-resizer",
	"cdn-edge", "api-gateway", "graphql-gateway", "ledger", "reporting",
	"etl-runner", "scheduler", "webhooks", "feature-flags", "geo-ip",
	"currency-rates", "audit-log", "kafka-connect", "loyalty",
}

// Services returns the synthetic services' names, for benchmarks that build
// stored data of loadgen's shape without going through HTTP (the store's
// 100M-event BenchmarkStoreScale).
func Services() []string { return slices.Clone(services) }

var (
	httpMethods = []string{"GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH"}
	routeTails  = []string{"", "/{id}", "/{id}/items", "/search", "/{id}/status", "/batch"}
	regions     = []string{"eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-1"}
	tables      = []string{"orders", "users", "line_items", "payments", "sessions", "inventory", "events"}
	reasons     = []string{
		"card declined", "insufficient funds", "context deadline exceeded",
		"connection reset by peer", "no such host", "invalid signature",
		"too many open files", "EOF", "broken pipe", "quota exceeded",
	}
	filler = strings.Fields(`lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod
		tempor incididunt ut labore et dolore magna aliqua request context upstream retry cache
		shard replica partition offset commit batch queue worker pool tenant region zone`)
)

// levelMix is the share of each level, in per mille: mostly info, some
// debug and warn, few errors, very few fatals — what a healthy fleet logs.
var levelMix = []struct {
	level    event.Level
	perMille int
}{
	{event.LevelDebug, 100},
	{event.LevelInfo, 750},
	{event.LevelWarn, 100},
	{event.LevelError, 45},
	{event.LevelFatal, 5},
}

// tracedShare is the share of events carrying W3C trace context; real
// fleets have untraced batch jobs and startup logs next to traced requests.
// Trace context costs 75 bytes, more than small events can spare, so below
// 300 bytes the share shrinks (to a tenth at 200 bytes) to keep the
// mean event near --size.
func tracedShare(size int) float64 {
	const full, fullSize, floorSize = 0.3, 300, 200
	switch {
	case size >= fullSize:
		return full
	case size <= floorSize:
		return full / 3
	}
	return full/3 + (full-full/3)*float64(size-floorSize)/float64(fullSize-floorSize)
}

// variant is one pre-rendered event without its per-event fields: the
// JSON tail from `"service":…` up to and including the closing brace.
type variant struct {
	tail   []byte
	traced bool
}

// catalogue is the shared, read-only set of variants a run draws from.
type catalogue struct {
	variants []variant
}

// newCatalogue renders n variants sized so that a whole event (with the
// per-event head added by appendEvent) is about size bytes. headLen is the
// length of that head without trace context, for an id of typical length.
func newCatalogue(seed uint64, n, size, headLen int) *catalogue {
	rng := rand.New(rand.NewPCG(seed, 0x10adc0de))
	c := &catalogue{variants: make([]variant, n)}
	for i := range c.variants {
		traced := rng.Float64() < tracedShare(size)
		budget := size - headLen
		if traced {
			budget -= traceHeadLen
		}
		c.variants[i] = variant{tail: renderTail(rng, budget), traced: traced}
	}
	return c
}

// renderTail writes the fields after the per-event head: service, level,
// message and host always; then attributes while they fit the budget
// (duration_ms always, as every event is about something that took time);
// then padding up to the budget.
func renderTail(rng *rand.Rand, budget int) []byte {
	svc := services[rng.IntN(len(services))]
	lvl := pickLevel(rng)
	method := httpMethods[rng.IntN(len(httpMethods))]
	route := "/api/v1/" + routeNoun(svc) + routeTails[rng.IntN(len(routeTails))]
	status := pickStatus(rng, lvl)
	dur := pickDuration(rng, lvl)
	msg := pickMessage(rng, lvl, svc, method, route, status, dur)
	host := svc + "-" + podSuffix(rng)

	b := make([]byte, 0, max(budget, 256))
	b = append(b, `"service":`...)
	b = event.AppendString(b, svc)
	b = append(b, `,"level":"`...)
	b = append(b, lvl.String()...)
	b = append(b, `","message":`...)
	b = event.AppendString(b, msg)
	b = append(b, `,"host":`...)
	b = event.AppendString(b, host)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, dur, 'f', 3, 64)

	optional := [][]byte{
		fmt.Appendf(nil, `,"http_status":%d`, status),
		fmt.Appendf(nil, `,"http_route":%q`, route),
		fmt.Appendf(nil, `,"http_method":%q`, method),
		fmt.Appendf(nil, `,"region":%q`, regions[rng.IntN(len(regions))]),
		fmt.Appendf(nil, `,"version":"v%d.%d.%d"`, 1+rng.IntN(3), rng.IntN(20), rng.IntN(10)),
		fmt.Appendf(nil, `,"user_id":"u-%07d"`, rng.IntN(10_000_000)),
	}
	for _, o := range optional {
		if len(b)+len(o)+1 > budget {
			break
		}
		b = append(b, o...)
	}
	// Pad with words (compressible like real text, not random bytes) when
	// the gap is big enough to hold the field at all.
	const padField = `,"detail":""`
	if gap := budget - 1 - len(b) - len(padField); gap > 0 {
		b = append(b, `,"detail":"`...)
		start := len(b)
		for len(b)-start < gap {
			if len(b) > start {
				b = append(b, ' ')
			}
			b = append(b, filler[rng.IntN(len(filler))]...)
		}
		b = b[:start+gap]
		if b[len(b)-1] == ' ' {
			b[len(b)-1] = '.'
		}
		b = append(b, '"')
	}
	return append(b, '}')
}

func pickLevel(rng *rand.Rand) event.Level {
	r := rng.IntN(1000)
	for _, m := range levelMix {
		if r < m.perMille {
			return m.level
		}
		r -= m.perMille
	}
	return event.LevelInfo
}

func pickStatus(rng *rand.Rand, lvl event.Level) int {
	switch lvl {
	case event.LevelError, event.LevelFatal:
		return []int{500, 502, 503, 504}[rng.IntN(4)]
	case event.LevelWarn:
		return []int{400, 401, 404, 409, 429, 200}[rng.IntN(6)]
	default:
		return []int{200, 200, 200, 200, 201, 204, 304}[rng.IntN(7)]
	}
}

// pickDuration draws a latency in ms from a log-normal distribution
// (median ~8 ms, long right tail); failures take longer (timeouts).
func pickDuration(rng *rand.Rand, lvl event.Level) float64 {
	mu := math.Log(8)
	if lvl >= event.LevelError {
		mu = math.Log(120)
	}
	return math.Exp(mu + 1.1*rng.NormFloat64())
}

func routeNoun(svc string) string {
	if i := strings.IndexByte(svc, '-'); i > 0 {
		return svc[:i]
	}
	return svc
}

func podSuffix(rng *rand.Rand) string {
	const alnum = "bcdfghjklmnpqrstvwxz2456789"
	var s [5]byte
	for i := range s {
		s[i] = alnum[rng.IntN(len(alnum))]
	}
	return string(s[:])
}

// pickMessage fills a level-appropriate template with variable parts.
func pickMessage(rng *rand.Rand, lvl event.Level, svc, method, route string, status int, dur float64) string {
	id := func() string { return fmt.Sprintf("%x", rng.Uint32()) }
	peer := services[rng.IntN(len(services))]
	ms := int(dur)
	switch lvl {
	case event.LevelDebug:
		return pick(rng,
			fmt.Sprintf("cache lookup key=%s:%s hit=%t", routeNoun(svc), id(), rng.IntN(3) > 0),
			fmt.Sprintf("loaded %d rows from %s in %dms", rng.IntN(5000), tables[rng.IntN(len(tables))], ms),
			fmt.Sprintf("flag %s-v2 is %t for u-%07d", routeNoun(peer), rng.IntN(2) == 0, rng.IntN(10_000_000)),
			fmt.Sprintf("span started op=%s %s", method, route),
		)
	case event.LevelWarn:
		return pick(rng,
			fmt.Sprintf("slow query %dms: SELECT * FROM %s WHERE id=$1", ms*10, tables[rng.IntN(len(tables))]),
			fmt.Sprintf("retrying call to %s attempt=%d/3", peer, 1+rng.IntN(3)),
			fmt.Sprintf("rate limit at %d%% for tenant t-%d", 80+rng.IntN(20), rng.IntN(500)),
			fmt.Sprintf("connection pool at %d/64, waiting", 56+rng.IntN(9)),
			fmt.Sprintf("%s %s %d %dms", method, route, status, ms),
		)
	case event.LevelError:
		return pick(rng,
			fmt.Sprintf("upstream %s returned %d: %s", peer, status, reasons[rng.IntN(len(reasons))]),
			fmt.Sprintf("charge for order %s failed: %s", id(), reasons[rng.IntN(len(reasons))]),
			fmt.Sprintf("timeout after %dms calling %s", ms, peer),
			fmt.Sprintf("publish to %s.events failed: %s", routeNoun(svc), reasons[rng.IntN(len(reasons))]),
		)
	case event.LevelFatal:
		return pick(rng,
			fmt.Sprintf("panic: runtime error: index out of range [%d] with length %d", 5+rng.IntN(50), rng.IntN(5)),
			fmt.Sprintf("cannot open database %s: %s; exiting", tables[rng.IntN(len(tables))], reasons[rng.IntN(len(reasons))]),
			fmt.Sprintf("out of memory allocating %d bytes", 1<<(20+rng.IntN(10))),
		)
	default:
		return pick(rng,
			fmt.Sprintf("%s %s %d %dms", method, route, status, ms),
			fmt.Sprintf("%s %s %d %dms", method, route, status, ms),
			fmt.Sprintf("user u-%07d signed in from 198.51.100.%d", rng.IntN(10_000_000), 1+rng.IntN(254)),
			fmt.Sprintf("order %s created items=%d total=%d.%02d EUR", id(), 1+rng.IntN(9), rng.IntN(500), rng.IntN(100)),
			fmt.Sprintf("published %d messages to %s.events", 1+rng.IntN(500), routeNoun(svc)),
			fmt.Sprintf("job %s-%s finished in %dms", routeNoun(svc), id(), ms),
			fmt.Sprintf("connected to %s in %dms", peer, ms),
		)
	}
}

func pick(rng *rand.Rand, options ...string) string { return options[rng.IntN(len(options))] }

// traceHeadLen is the length of the trace context fields in the head.
const traceHeadLen = len(`"trace_id":"","span_id":"",`) + 32 + 16

// headLen is the length of the per-event head without trace context:
// `{"ts":"<30>","event_id":"<run-id>-<seq>",`.
func headLen(runID string, seqDigits int) int {
	return len(`{"ts":"","event_id":"-",`) + len("2006-01-02T15:04:05.000000000Z") + len(runID) + seqDigits
}

// generator stamps per-event fields onto catalogue variants. One per
// worker; not safe for concurrent use.
type generator struct {
	cat   *catalogue
	rng   *rand.Rand
	runID string

	// Events of one trace are consecutive: traceLeft more events share
	// trace, each with its own span id.
	trace     [2]uint64
	traceLeft int

	// tsSec/tsPrefix cache the formatted second of the last timestamp, so
	// a timestamp costs nine digits, not a time.Format.
	tsSec    int64
	tsPrefix []byte
}

func newGenerator(cat *catalogue, runID string, seed, stream uint64) *generator {
	return &generator{
		cat:   cat,
		rng:   rand.New(rand.NewPCG(seed, stream)),
		runID: runID,
		tsSec: math.MinInt64,
	}
}

// appendEvent appends one event: the head with ts (RFC 3339, nanoseconds,
// UTC), event_id "<run-id>-<seq>" and, for traced variants, a trace id
// (32 hex, shared by a few consecutive events) and a span id (16 hex),
// followed by a variant's tail.
func (g *generator) appendEvent(dst []byte, seq uint64, unixNano int64) []byte {
	v := &g.cat.variants[g.rng.IntN(len(g.cat.variants))]
	dst = append(dst, `{"ts":"`...)
	dst = g.appendTime(dst, unixNano)
	dst = append(dst, `","event_id":"`...)
	dst = append(dst, g.runID...)
	dst = append(dst, '-')
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `",`...)
	if v.traced {
		if g.traceLeft <= 0 {
			g.trace = [2]uint64{g.rng.Uint64(), g.rng.Uint64() | 1} // W3C forbids all-zero ids
			g.traceLeft = 1 + g.rng.IntN(8)
		}
		g.traceLeft--
		dst = append(dst, `"trace_id":"`...)
		dst = appendHex64(dst, g.trace[0])
		dst = appendHex64(dst, g.trace[1])
		dst = append(dst, `","span_id":"`...)
		dst = appendHex64(dst, g.rng.Uint64()|1)
		dst = append(dst, `",`...)
	}
	return append(dst, v.tail...)
}

func (g *generator) appendTime(dst []byte, unixNano int64) []byte {
	sec, nsec := unixNano/1e9, unixNano%1e9
	if nsec < 0 {
		sec, nsec = sec-1, nsec+1e9
	}
	if sec != g.tsSec {
		g.tsSec = sec
		g.tsPrefix = time.Unix(sec, 0).UTC().AppendFormat(g.tsPrefix[:0], "2006-01-02T15:04:05.")
	}
	dst = append(dst, g.tsPrefix...)
	var digits [9]byte
	for i := 8; i >= 0; i-- {
		digits[i] = byte('0' + nsec%10)
		nsec /= 10
	}
	dst = append(dst, digits[:]...)
	return append(dst, 'Z')
}

const hexDigits = "0123456789abcdef"

func appendHex64(dst []byte, v uint64) []byte {
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = hexDigits[v&0xf]
		v >>= 4
	}
	return append(dst, b[:]...)
}
