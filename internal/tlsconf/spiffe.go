package tlsconf

import (
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Role is a group of routes a SPIFFE ID may be allowed to use. Senders are
// not readers: an ingest ID cannot query, a query ID cannot send.
type Role string

// Roles of --allow-spiffe-id.
const (
	// RoleAny is a rule without a role: it allows every route.
	RoleAny Role = ""
	// RoleIngest is every route that takes events: POST /api/v1/logs,
	// POST /v1/logs, the shippers' ingest routes and syslog over TLS.
	RoleIngest Role = "ingest"
	// RoleQuery is the query API, live tail, dashboard and operator routes.
	RoleQuery Role = "query"
	// RoleMetrics is GET /metrics.
	RoleMetrics Role = "metrics"
)

// Rule is one --allow-spiffe-id value: an exact SPIFFE ID, or a prefix
// (pattern ending in "/*") that allows every ID below it.
type Rule struct {
	Role    Role
	Pattern string // as given
	exact   string // "spiffe://td/path" when exact
	prefix  string // "spiffe://td/ns/logs/sa/" when a prefix
}

// ParseRule parses "[ROLE=]PATTERN", where PATTERN is a SPIFFE ID
// (spiffe://cluster.local/ns/logs/sa/shipper) or one ending in "/*"
// (spiffe://cluster.local/ns/logs/sa/* — any service account in the
// namespace; spiffe://cluster.local/* — the whole trust domain).
func ParseRule(s string) (Rule, error) {
	var r Rule
	pat := strings.TrimSpace(s)
	if role, rest, ok := strings.Cut(pat, "="); ok {
		switch Role(role) {
		case RoleIngest, RoleQuery, RoleMetrics:
			r.Role = Role(role)
		default:
			return r, fmt.Errorf("--allow-spiffe-id %q: role %q is not one of ingest, query, metrics (or leave it out for every route)", s, role)
		}
		pat = rest
	}
	r.Pattern = pat
	if base, ok := strings.CutSuffix(pat, "/*"); ok {
		// "spiffe://td/*": the whole trust domain; "spiffe://td/a/b/*": below /a/b.
		if td, err := spiffeid.TrustDomainFromString(base); err == nil && !strings.Contains(strings.TrimPrefix(base, "spiffe://"), "/") {
			r.prefix = td.IDString() + "/"
			return r, nil
		}
		id, err := spiffeid.FromString(base)
		if err != nil {
			return r, fmt.Errorf("--allow-spiffe-id %q: %q is not a SPIFFE ID prefix like spiffe://cluster.local/ns/logs/sa/*: %v", s, pat, err)
		}
		r.prefix = id.String() + "/"
		return r, nil
	}
	id, err := spiffeid.FromString(pat)
	if err != nil {
		return r, fmt.Errorf("--allow-spiffe-id %q: not a SPIFFE ID (spiffe://trust-domain/path) nor a prefix ending in /*: %v", s, err)
	}
	r.exact = id.String()
	return r, nil
}

func (r Rule) String() string {
	if r.Role == RoleAny {
		return r.Pattern
	}
	return string(r.Role) + "=" + r.Pattern
}

func (r Rule) matches(id string) bool {
	if r.exact != "" {
		return id == r.exact
	}
	return strings.HasPrefix(id, r.prefix)
}

// Policy is the set of --allow-spiffe-id rules. An empty policy allows any
// certificate the client CA verified (authentication without authorization).
type Policy []Rule

// Allows reports whether id may use role's routes. RoleAny asks "is id
// allowed anything at all".
func (p Policy) Allows(role Role, id spiffeid.ID) bool {
	if len(p) == 0 {
		return true
	}
	if id.IsZero() {
		return false
	}
	s := id.String()
	for _, r := range p {
		if (r.Role == RoleAny || role == RoleAny || r.Role == role) && r.matches(s) {
			return true
		}
	}
	return false
}

// PeerID is the SPIFFE ID of a verified leaf certificate (its one spiffe://
// URI SAN, as the X.509-SVID format says), or the zero ID and an error when
// the certificate is not an SVID.
func PeerID(leaf *x509.Certificate) (spiffeid.ID, error) {
	return x509svid.IDFromCert(leaf)
}
