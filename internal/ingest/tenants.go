package ingest

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/wirelog/wirelog/internal/authz"
)

// Tenants authenticates ingest requests by bearer token and applies each
// tenant's rate limits. It is loaded from the --auth-tokens file:
//
//	{"tokens": [
//	  {"token": "s3cr3t", "tenant": "acme", "events_per_second": 50000, "bytes_per_second": 20000000},
//	  {"token": "other", "tenant": "globex"}
//	]}
//
// A limit of 0 (or absent) means unlimited. Several tokens may name the same
// tenant; they then share its limits. The tenant is stored with every event
// the token sends, overriding any "tenant" field in the event itself, so a
// sender cannot write into another tenant.
type Tenants struct {
	byHash map[[32]byte]*tenant
	byName map[string]*tenant
}

type tenant struct {
	name   string
	events *rate.Limiter // nil = unlimited
	bytes  *rate.Limiter
}

type tokensFile struct {
	Tokens []struct {
		Token           string  `json:"token"`
		Tenant          string  `json:"tenant"`
		EventsPerSecond float64 `json:"events_per_second"`
		BytesPerSecond  float64 `json:"bytes_per_second"`
	} `json:"tokens"`
}

// LoadTenants reads a tokens file. Errors name the file and the entry.
func LoadTenants(path string) (*Tenants, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --auth-tokens file: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var f tokensFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse --auth-tokens file %s: %w (want {\"tokens\":[{\"token\":…,\"tenant\":…}]})", path, err)
	}
	if len(f.Tokens) == 0 {
		return nil, fmt.Errorf("--auth-tokens file %s lists no tokens; every request would be refused", path)
	}
	t := &Tenants{byHash: make(map[[32]byte]*tenant), byName: make(map[string]*tenant)}
	byName := t.byName
	for i, e := range f.Tokens {
		if len(e.Token) < 8 {
			return nil, fmt.Errorf("--auth-tokens file %s: entry %d: token shorter than 8 characters", path, i+1)
		}
		if e.Tenant == "" {
			return nil, fmt.Errorf("--auth-tokens file %s: entry %d: tenant is empty", path, i+1)
		}
		if e.EventsPerSecond < 0 || e.BytesPerSecond < 0 {
			return nil, fmt.Errorf("--auth-tokens file %s: entry %d: negative rate limit", path, i+1)
		}
		h := sha256.Sum256([]byte(e.Token))
		if _, dup := t.byHash[h]; dup {
			return nil, fmt.Errorf("--auth-tokens file %s: entry %d: token listed twice", path, i+1)
		}
		tn := byName[e.Tenant]
		if tn == nil {
			tn = &tenant{name: e.Tenant}
			byName[e.Tenant] = tn
		}
		if e.EventsPerSecond > 0 {
			tn.events = rate.NewLimiter(rate.Limit(e.EventsPerSecond), int(math.Max(e.EventsPerSecond, 1)))
		}
		if e.BytesPerSecond > 0 {
			tn.bytes = rate.NewLimiter(rate.Limit(e.BytesPerSecond), int(math.Max(e.BytesPerSecond, 1)))
		}
		t.byHash[h] = tn
	}
	return t, nil
}

// lookup finds the tenant of an Authorization header. Tokens are looked up
// by their SHA-256, so the lookup time does not reveal how much of a guessed
// token is right.
// The scheme is matched case-insensitively (RFC 7235).
func (t *Tenants) lookup(header string) (*tenant, bool) {
	tok, ok := authz.BearerToken(header)
	if !ok {
		return nil, false
	}
	tn, ok := t.byHash[sha256.Sum256([]byte(tok))]
	return tn, ok
}

// TenantOf returns the tenant of a token; it makes Tenants an
// authz.TenantTokens.
func (t *Tenants) TenantOf(token string) (string, bool) {
	tn, ok := t.byHash[sha256.Sum256([]byte(token))]
	if !ok {
		return "", false
	}
	return tn.name, true
}

// named returns the tenant called name, for a principal another
// authenticator (mTLS) resolved; unknown names get no rate limits.
func (t *Tenants) named(name string) *tenant {
	if tn, ok := t.byName[name]; ok {
		return tn
	}
	return &tenant{name: name}
}

// admit takes events and bytes from the tenant's buckets. It returns 0 when
// admitted, or the status and Retry-After to answer with.
func (tn *tenant) admit(now time.Time, events, bytes int) (int, time.Duration, string) {
	var delays [2]time.Duration
	var res [2]*rate.Reservation
	for i, lim := range []*rate.Limiter{tn.events, tn.bytes} {
		if lim == nil {
			continue
		}
		n := events
		unit := "events"
		if i == 1 {
			n, unit = bytes, "bytes"
		}
		if n > lim.Burst() {
			for _, r := range res {
				if r != nil {
					r.CancelAt(now)
				}
			}
			return http.StatusRequestEntityTooLarge, 0, fmt.Sprintf("request of %d %s is more than tenant %q may send in one second (%d); send smaller batches", n, unit, tn.name, lim.Burst())
		}
		res[i] = lim.ReserveN(now, n)
		delays[i] = res[i].DelayFrom(now)
	}
	d := max(delays[0], delays[1])
	if d > 0 {
		for _, r := range res {
			if r != nil {
				r.CancelAt(now)
			}
		}
		return http.StatusTooManyRequests, d, fmt.Sprintf("tenant %q is over its rate limit; retry after the Retry-After delay", tn.name)
	}
	return 0, 0, ""
}
