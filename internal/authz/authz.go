// Package authz decides who may call which HTTP route of a wirelog node.
//
// It is one middleware in front of the whole mux, so a route added later is
// protected by default: an unlisted GET is a tenant-scoped read, any other
// unlisted method needs the operator scope. Credentials come from
// Authenticators (bearer tokens here; mTLS/SPIFFE identities plug in the
// same way) and resolve to a Principal: a tenant, or an operator.
//
// A tenant principal reads only its own tenant: the middleware sets the
// request's `tenant` query parameter to the principal's tenant, and refuses
// (403) a request that names another one, so a read route that honours
// `tenant` is tenant-scoped without checking anything itself.
package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Scope is what a route needs of its caller.
type Scope int

const (
	// Read is the default of GET and HEAD routes: any principal; a tenant
	// principal only for its own tenant.
	Read Scope = iota
	// Public routes need nothing: probes and the dashboard's static shell,
	// which holds no data.
	Public
	// Ingest routes write events; they need a tenant principal when tenant
	// tokens are configured.
	Ingest
	// Admin routes (/metrics, pause/resume, anything that changes state)
	// need an operator principal. The default of every non-GET route.
	Admin
)

func (s Scope) String() string {
	switch s {
	case Public:
		return "public"
	case Ingest:
		return "ingest"
	case Admin:
		return "admin"
	}
	return "read"
}

// Principal is who a request comes from.
type Principal struct {
	// Tenant is the tenant a tenant principal may read and write; "" for an
	// operator.
	Tenant string
	// Admin grants every scope and every tenant.
	Admin bool
	// Via names the credential ("token", "admin-token", "spiffe", …), for logs.
	Via string
}

// Authenticator finds the principal of a request. ok=false means the
// request carries no credential this authenticator knows; err means it
// carries one that is wrong (an unknown token), which is refused with 401
// even if another authenticator would accept the request.
type Authenticator interface {
	Authenticate(r *http.Request) (p Principal, ok bool, err error)
}

// Route gives a ServeMux pattern ("GET /metrics", "/debug/") its scope.
type Route struct {
	Pattern string
	Scope   Scope
}

// Options configure the middleware.
type Options struct {
	// Authenticators are asked in order; the first that recognises the
	// request decides. None: the API is open (Enforce is false).
	Authenticators []Authenticator
	// Routes overrides the default scopes (GET/HEAD: Read, others: Admin).
	Routes []Route
	// IngestOpen lets Ingest routes through without a principal: set when
	// no tenant tokens are configured, so senders need none (an operator
	// token alone protects reads and admin routes).
	IngestOpen bool
	// Logger receives the startup warning; nil = slog.Default().
	Logger *slog.Logger
}

// CustomHeader marks a state-changing request as sent by a program, not by
// a cross-site HTML form: browsers cannot add it without a CORS preflight,
// which wirelog never grants.
const CustomHeader = "X-Wirelog-Request"

// AccessTokenParam is the query parameter GET read routes accept instead of
// an Authorization header, for browsers' EventSource, which cannot set one.
const AccessTokenParam = "access_token"

type ctxKey struct{}

// FromContext returns the principal the middleware attached to a request,
// and false when auth is off or the route is public.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// Middleware enforces Options on every request to next.
type Middleware struct {
	opts    Options
	scopes  *http.ServeMux // used only to match patterns, the way the real mux does
	next    http.Handler
	denied  *prometheus.CounterVec
	enforce bool
}

type scopeHandler Scope

func (scopeHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}

// Wrap returns next behind the middleware. Without authenticators it logs,
// loudly, that the API is open.
func Wrap(next http.Handler, opts Options) *Middleware {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m := &Middleware{opts: opts, scopes: http.NewServeMux(), next: next, enforce: len(opts.Authenticators) > 0,
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_http_auth_denied_total",
			Help: "HTTP requests refused by authorization, by route scope and reason (unauthenticated, forbidden, tenant, cross_site).",
		}, []string{"scope", "reason"})}
	for _, r := range opts.Routes {
		m.scopes.Handle(r.Pattern, scopeHandler(r.Scope))
	}
	if !m.enforce {
		opts.Logger.Warn("AUTH IS OFF: every route of the API is open to anyone who can reach this address — " +
			"reads of every tenant, /metrics, processor pause/resume. Set --auth-tokens (tenants) and --admin-tokens (operators); see docs/OPERATIONS.md")
	}
	return m
}

// Collector exports wirelog_http_auth_denied_total.
func (m *Middleware) Collector() prometheus.Collector { return m.denied }

// ScopeOf is the scope the middleware applies to r.
func (m *Middleware) ScopeOf(r *http.Request) Scope {
	if h, pat := m.scopes.Handler(r); pat != "" {
		if s, ok := h.(scopeHandler); ok {
			return Scope(s)
		}
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return Read
	}
	return Admin
}

func (m *Middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	scope := m.ScopeOf(r)
	if scope == Public {
		m.next.ServeHTTP(w, r)
		return
	}
	safe := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
	if !safe && scope == Admin && simpleRequest(r) {
		m.deny(w, r, scope, "cross_site", http.StatusForbidden, fmt.Sprintf(
			"a state-changing request must not be a simple (form-like) request: send Content-Type: application/json or the header %s: 1", CustomHeader))
		return
	}
	if !m.enforce || (scope == Ingest && m.opts.IngestOpen) {
		m.next.ServeHTTP(w, r)
		return
	}
	if scope == Read && safe {
		if code, msg := liftAccessToken(r); code != 0 {
			m.deny(w, r, scope, "unauthenticated", code, msg)
			return
		}
	}
	p, ok, err := m.authenticate(r)
	if err != nil || !ok {
		msg := "this route needs a credential: send Authorization: Bearer <token> (a token of --auth-tokens, or of --admin-tokens for operator routes)"
		if err != nil {
			msg = err.Error()
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="wirelog"`)
		m.deny(w, r, scope, "unauthenticated", http.StatusUnauthorized, msg)
		return
	}
	switch scope {
	case Admin:
		if !p.Admin {
			m.deny(w, r, scope, "forbidden", http.StatusForbidden, "this route needs an operator token (--admin-tokens); a tenant token may only read and write its own tenant")
			return
		}
	case Ingest:
		if p.Admin && p.Tenant == "" {
			m.deny(w, r, scope, "forbidden", http.StatusForbidden, "operator tokens do not write events: send with a tenant token of --auth-tokens")
			return
		}
	case Read:
		if !p.Admin {
			if code, msg := narrowTenant(r, p.Tenant); code != 0 {
				m.deny(w, r, scope, "tenant", code, msg)
				return
			}
		}
	}
	m.next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
}

func (m *Middleware) authenticate(r *http.Request) (Principal, bool, error) {
	for _, a := range m.opts.Authenticators {
		p, ok, err := a.Authenticate(r)
		if err != nil {
			return Principal{}, false, err
		}
		if ok {
			return p, true, nil
		}
	}
	return Principal{}, false, nil
}

func (m *Middleware) deny(w http.ResponseWriter, r *http.Request, scope Scope, reason string, code int, msg string) {
	m.denied.WithLabelValues(scope.String(), reason).Inc()
	if r.ContentLength != 0 {
		// Answer now and close: the server would otherwise read the
		// refused body (up to 256 KB) first, as slowly as it is sent.
		w.Header().Set("Connection", "close")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Write(append(b, '\n'))
}

// simpleRequest reports whether a browser could send r cross-site without
// a CORS preflight: no Authorization, no custom header, and a Content-Type
// that is absent or one an HTML form can produce.
func simpleRequest(r *http.Request) bool {
	if r.Header.Get("Authorization") != "" || r.Header.Get(CustomHeader) != "" {
		return false
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return true
	}
	switch mt {
	case "application/x-www-form-urlencoded", "multipart/form-data", "text/plain":
		return true
	}
	return false
}

// liftAccessToken moves ?access_token= into the Authorization header (when
// the request has none) and removes it from the query, so handlers that
// refuse unknown parameters never see it.
func liftAccessToken(r *http.Request) (int, string) {
	if !strings.Contains(r.URL.RawQuery, AccessTokenParam) {
		return 0, ""
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return 0, "" // the handler reports the bad query itself
	}
	tok, ok := q[AccessTokenParam]
	if !ok {
		return 0, ""
	}
	if len(tok) != 1 || tok[0] == "" {
		return http.StatusUnauthorized, AccessTokenParam + " must be given once, non-empty"
	}
	if r.Header.Get("Authorization") == "" {
		r.Header.Set("Authorization", "Bearer "+tok[0])
	}
	q.Del(AccessTokenParam)
	r.URL.RawQuery = q.Encode()
	return 0, ""
}

// narrowTenant pins the request's tenant parameter to tenant: absent, it is
// set; the same, it stays; another tenant is refused.
func narrowTenant(r *http.Request, tenant string) (int, string) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return http.StatusBadRequest, "unreadable query string: " + err.Error()
	}
	if vs, ok := q["tenant"]; ok {
		for _, v := range vs {
			if v != tenant {
				return http.StatusForbidden, fmt.Sprintf("this token reads tenant %q only; tenant=%q is not yours", tenant, v)
			}
		}
		return 0, ""
	}
	q.Set("tenant", tenant)
	r.URL.RawQuery = q.Encode()
	return 0, ""
}

// BearerToken returns the token of an Authorization header; the scheme is
// matched case-insensitively (RFC 7235 §2.1).
func BearerToken(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
