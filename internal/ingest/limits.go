package ingest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirelog/wirelog/internal/authz"
)

// Limits of one request and one record. Every ingest route (NDJSON/JSON,
// OTLP protobuf and JSON, and the shipper-compatible routes) applies the
// same ones; syslog applies the record limits. Each is a flag of
// `wirelog run` and `wirelog ingest`, documented in docs/OPERATIONS.md.
const (
	// DefaultMaxBodyBytes bounds a request body, compressed and
	// decompressed alike (--max-body-bytes).
	DefaultMaxBodyBytes = 16 << 20
	// DefaultMaxLineBytes bounds one record: an NDJSON line or JSON element
	// as sent, and every record's encoded form (OTLP included) as stored
	// (--max-line-bytes).
	DefaultMaxLineBytes = 1 << 20
	// DefaultMaxAttributes bounds the attributes of one record, nested keys
	// and OTLP resource attributes included (--max-attributes). Elasticsearch
	// caps a mapping at 1000 fields for the same reason: beyond it, one
	// record costs the store more memory than a batch.
	DefaultMaxAttributes = 1000
	// DefaultMaxDepth bounds the nesting of one record's attributes
	// (--max-depth).
	DefaultMaxDepth = 32
	// DefaultMaxRecords bounds the records of one request (--max-records).
	// 16 MiB of 12-byte lines would be 1.4 million records whose encoded
	// form (about 70 bytes each) is larger than one log batch may be.
	DefaultMaxRecords = 100_000
	// DefaultMaxEventBytes bounds the encoded events of one request
	// (--max-request-event-bytes). It stays under the embedded log's 64 MiB
	// batch limit, so every request within the limits fits one durable
	// write and is acknowledged atomically.
	DefaultMaxEventBytes = 32 << 20
	// DefaultMaxDecompressionRatio bounds decompressed/compressed size once
	// a body decompresses past minRatioCheckBytes (--max-decompression-ratio).
	// Real logs compress 5-20x; a 16 KB gzip bomb expanding to 2.8 GB is
	// 175,000x.
	DefaultMaxDecompressionRatio = 1000
	// DefaultMemoryBudget bounds the memory all in-flight ingest requests
	// hold together: bodies, decoded events and OTLP structures
	// (--ingest-memory-budget). Over it: 503 with Retry-After.
	DefaultMemoryBudget = 128 << 20
	// DefaultMaxConcurrent bounds requests in flight at once (--max-concurrent).
	DefaultMaxConcurrent = 256
	// DefaultMaxPerClient bounds the requests in flight from one client
	// address, so one sender cannot hold every slot
	// (--max-inflight-per-client). One tenant's tokens together may hold
	// half of --max-inflight-requests (at least this many). Over it: 429.
	DefaultMaxPerClient = 32
	// DefaultBodyTimeout bounds the time to read one request body
	// (--body-read-timeout).
	DefaultBodyTimeout = 60 * time.Second
	// DefaultMinBodyRate is the slowest body upload accepted after
	// bodyRateGrace (--min-body-rate, bytes/s). Over it: 408.
	DefaultMinBodyRate = 16 << 10
	// bodyRateGrace is the time a body may take before the minimum rate
	// applies, for slow starts and small bodies.
	bodyRateGrace = 5 * time.Second
	// minRatioCheckBytes: bodies that decompress to less are never refused
	// for their ratio (small, very repetitive bodies are normal).
	minRatioCheckBytes = 1 << 20
	// budgetChunk is how much of the memory budget a request takes at a
	// time, so the shared counter is touched a few times per request.
	budgetChunk = 256 << 10
)

// Limits are the record and request limits; zero fields take the defaults.
type Limits struct {
	MaxBodyBytes          int64
	MaxLineBytes          int
	MaxAttributes         int
	MaxDepth              int
	MaxRecords            int
	MaxEventBytes         int64
	MaxDecompressionRatio int
}

func (l *Limits) setDefaults() {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.MaxLineBytes <= 0 {
		l.MaxLineBytes = DefaultMaxLineBytes
	}
	if l.MaxAttributes <= 0 {
		l.MaxAttributes = DefaultMaxAttributes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxRecords <= 0 {
		l.MaxRecords = DefaultMaxRecords
	}
	if l.MaxEventBytes <= 0 {
		l.MaxEventBytes = DefaultMaxEventBytes
	}
	if l.MaxDecompressionRatio <= 0 {
		l.MaxDecompressionRatio = DefaultMaxDecompressionRatio
	}
}

// requestCap is the memory one request at the limits may need: its body
// (twice: the buffer grows by doubling), its events (twice, likewise) and
// their records. The budget must hold at least one such request.
func (l *Limits) requestCap() int64 {
	return 2*l.MaxBodyBytes + 2*l.MaxEventBytes + int64(l.MaxRecords)*recordOverhead
}

// recordOverhead is the memory of one record beyond its bytes: offsets and
// a transport.Record.
const recordOverhead = 128

// Validate checks the limits agree with each other and with the budget.
func (l *Limits) Validate(budget int64) error {
	l.setDefaults()
	if l.MaxEventBytes >= 64<<20 {
		return fmt.Errorf("--max-request-event-bytes %d must stay under the embedded log's 64 MiB batch limit", l.MaxEventBytes)
	}
	if int64(l.MaxLineBytes) > l.MaxEventBytes {
		return fmt.Errorf("--max-line-bytes %d is larger than --max-request-event-bytes %d", l.MaxLineBytes, l.MaxEventBytes)
	}
	if budget > 0 && budget < l.requestCap() {
		return fmt.Errorf("--ingest-memory-budget %d is smaller than one request at the limits needs (%d: 2 x --max-body-bytes + 2 x --max-request-event-bytes + %d B x --max-records); raise it or lower those",
			budget, l.requestCap(), recordOverhead)
	}
	return nil
}

// Sentinel errors of admission.
var (
	// ErrRequestTooLarge: this request alone needs more memory than the
	// whole budget (413, do not retry as is).
	ErrRequestTooLarge = errors.New("ingest: request needs more memory than --ingest-memory-budget; split it")
	// ErrBudget: other requests hold the memory budget now (503, retry).
	ErrBudget = errors.New("ingest: in-flight memory budget (--ingest-memory-budget) is in use; retry after the Retry-After delay")
)

// Admission bounds what requests hold: a slot each (globally, per client
// address, per token) and a share of one memory budget. Every ingest route
// takes a Ticket before reading a body and returns it when answered.
type Admission struct {
	max, perClient int
	perTenant      int // for the token key: half the slots, so one tenant of many senders is not held to one sender's share
	budget         int64
	reqCap         int64
	inflight       atomic.Int64 // requests
	used           atomic.Int64 // bytes of the budget in use

	// proxies are --trusted-proxies: behind them the per-client slots go
	// to the address X-Forwarded-For names, not to the proxy, so one busy
	// client behind a load balancer cannot take every client's share.
	proxies []netip.Prefix

	mu      sync.Mutex
	clients map[string]int
}

// NewAdmission returns an admission with the given bounds (zero: default).
func NewAdmission(maxConcurrent, perClient int, budget int64, l Limits) *Admission {
	l.setDefaults()
	if maxConcurrent <= 0 {
		maxConcurrent = DefaultMaxConcurrent
	}
	if perClient <= 0 {
		perClient = DefaultMaxPerClient
	}
	if budget <= 0 {
		budget = DefaultMemoryBudget
	}
	// One request may use the whole budget when alone, never more: the 413
	// then depends on the request only, never on what else is running.
	return &Admission{max: maxConcurrent, perClient: perClient, perTenant: max(perClient, maxConcurrent/2),
		budget: budget, reqCap: budget, clients: make(map[string]int)}
}

// InUse is the memory the in-flight requests hold, in bytes.
func (a *Admission) InUse() int64 { return a.used.Load() }

// Ticket is one admitted request's hold on slots and memory.
type Ticket struct {
	a    *Admission
	keys [2]string
	held int64
	need int64
}

// Enter admits r or says why not (429 with a message). The keys are the
// client address and, with auth, the token's tenant.
func (a *Admission) Enter(r *http.Request) (*Ticket, error) {
	if a.inflight.Add(1) > int64(a.max) {
		a.inflight.Add(-1)
		return nil, errors.New("too many requests in flight; retry after the Retry-After delay")
	}
	t := &Ticket{a: a}
	t.keys[0] = "addr:" + clientKey(r, a.proxies)
	if p, ok := authz.FromContext(r.Context()); ok && p.Tenant != "" {
		t.keys[1] = "tenant:" + p.Tenant
	} else if tok, ok := authz.BearerToken(r.Header.Get("Authorization")); ok {
		t.keys[1] = "token:" + tok
	}
	a.mu.Lock()
	for i, k := range t.keys {
		limit := a.perClient
		if i == 1 {
			limit = a.perTenant
		}
		if k != "" && a.clients[k] >= limit {
			for _, kk := range t.keys[:i] {
				if kk != "" {
					a.dec(kk)
				}
			}
			a.mu.Unlock()
			a.inflight.Add(-1)
			return nil, fmt.Errorf("this client has %d requests in flight, the most one client address (--max-inflight-per-client) or one tenant (half of --max-inflight-requests) may; retry after the Retry-After delay", limit)
		}
		if k != "" {
			a.clients[k]++
		}
	}
	a.mu.Unlock()
	return t, nil
}

func (a *Admission) dec(k string) {
	if a.clients[k] <= 1 {
		delete(a.clients, k)
	} else {
		a.clients[k]--
	}
}

// Need records that the request now needs n bytes in total, taking more of
// the budget when that is more than it holds. It returns ErrRequestTooLarge
// past the per-request cap and ErrBudget when the budget is used up.
func (t *Ticket) Need(n int64) error {
	if n <= t.held {
		t.need = max(t.need, n)
		return nil
	}
	if n > t.a.reqCap {
		return ErrRequestTooLarge
	}
	want := min(((n+budgetChunk-1)/budgetChunk)*budgetChunk, t.a.reqCap) - t.held
	if t.a.used.Add(want) > t.a.budget {
		t.a.used.Add(-want)
		return ErrBudget
	}
	t.held += want
	t.need = n
	return nil
}

// Add is Need(current need + n).
func (t *Ticket) Add(n int64) error { return t.Need(t.need + n) }

// Done returns the ticket's slots and memory.
func (t *Ticket) Done() {
	if t == nil || t.a == nil {
		return
	}
	a := t.a
	t.a = nil
	a.used.Add(-t.held)
	a.inflight.Add(-1)
	a.mu.Lock()
	for _, k := range t.keys {
		if k != "" {
			a.dec(k)
		}
	}
	a.mu.Unlock()
}

// clientKey is the host of the request's client (ClientAddr: the peer, or
// what a trusted proxy forwarded for), or the raw peer address when it does
// not parse.
func clientKey(r *http.Request, proxies []netip.Prefix) string {
	if a := ClientAddr(r, proxies); a.IsValid() {
		return a.Addr().String()
	}
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}
