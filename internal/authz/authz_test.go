package authz

import (
	"bytes"
	"crypto/sha256"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type tenantMap map[string]string

func (m tenantMap) TenantOf(tok string) (string, bool) { t, ok := m[tok]; return t, ok }

// echo answers 200 with the tenant parameter the handler received and the
// principal, so tests see what the middleware passed on.
func echo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		w.Write([]byte("tenant=" + r.URL.Query().Get("tenant") + " query=" + r.URL.RawQuery))
		if ok && p.Admin {
			w.Write([]byte(" admin"))
		}
	})
}

func newTestMiddleware(t *testing.T) *Middleware {
	admin := map[[32]byte]struct{}{sha256.Sum256([]byte("operator-secret-123")): {}}
	return Wrap(echo(), Options{
		Authenticators: []Authenticator{NewTokens(tenantMap{"alpha-secret": "alpha", "beta-secret": "beta"}, admin)},
		Routes: []Route{
			{Pattern: "GET /healthz", Scope: Public},
			{Pattern: "POST /api/v1/logs", Scope: Ingest},
			{Pattern: "GET /metrics", Scope: Admin},
		},
		Logger: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
	})
}

func TestScopes(t *testing.T) {
	m := newTestMiddleware(t)
	cases := []struct {
		name, method, target, auth string
		hdr                        map[string]string
		want                       int
		body                       string // substring of the answer
	}{
		{"public without token", "GET", "/healthz", "", nil, 200, ""},
		{"read without token", "GET", "/api/v1/stats", "", nil, 401, "Bearer"},
		{"unknown token", "GET", "/api/v1/stats", "Bearer nope-nope-nope", nil, 401, "unknown bearer token"},
		{"basic auth with an unknown password", "GET", "/api/v1/stats", "Basic YTpi", nil, 401, ""},
		{"basic auth, token as password (shippers)", "GET", "/api/v1/stats", "Basic dXNlcjphbHBoYS1zZWNyZXQ=", nil, 200, "tenant=alpha"},
		{"ApiKey id:token (Filebeat)", "POST", "/api/v1/logs", "ApiKey aWQ6YWxwaGEtc2VjcmV0", nil, 200, ""},
		{"unknown scheme", "GET", "/api/v1/stats", "Digest x", nil, 401, "unreadable"},
		{"tenant pinned when absent", "GET", "/api/v1/stats", "Bearer alpha-secret", nil, 200, "tenant=alpha"},
		{"lowercase scheme", "GET", "/api/v1/stats", "bearer alpha-secret", nil, 200, "tenant=alpha"},
		{"own tenant", "GET", "/api/v1/stats?tenant=alpha", "Bearer alpha-secret", nil, 200, "tenant=alpha"},
		{"other tenant", "GET", "/api/v1/stats?tenant=beta", "Bearer alpha-secret", nil, 403, "reads tenant"},
		{"empty tenant is another tenant", "GET", "/api/v1/stats?tenant=", "Bearer alpha-secret", nil, 403, ""},
		{"tenant twice", "GET", "/api/v1/stats?tenant=alpha&tenant=beta", "Bearer alpha-secret", nil, 403, ""},
		{"access_token lifted and removed", "GET", "/api/v1/tail?q=x&access_token=alpha-secret", "", nil, 200, "tenant=alpha"},
		{"access_token of another tenant", "GET", "/api/v1/tail?tenant=alpha&access_token=beta-secret", "", nil, 403, ""},
		{"access_token not on POST", "POST", "/api/v1/processor/pause?access_token=operator-secret-123", "", map[string]string{"Content-Type": "application/json"}, 401, ""},
		{"admin reads any tenant", "GET", "/api/v1/stats?tenant=beta", "Bearer operator-secret-123", nil, 200, "tenant=beta admin"},
		{"admin reads all", "GET", "/api/v1/stats", "Bearer operator-secret-123", nil, 200, "tenant= "},
		{"metrics needs admin", "GET", "/metrics", "Bearer alpha-secret", nil, 403, "operator token"},
		{"metrics with admin", "GET", "/metrics", "Bearer operator-secret-123", nil, 200, ""},
		{"unlisted POST is admin", "POST", "/api/v1/processor/pause", "Bearer alpha-secret", nil, 403, ""},
		{"pause with admin", "POST", "/api/v1/processor/pause", "Bearer operator-secret-123", nil, 200, ""},
		{"pause as a form post", "POST", "/api/v1/processor/pause", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 403, "simple"},
		{"ingest with tenant", "POST", "/api/v1/logs", "Bearer alpha-secret", nil, 200, ""},
		{"ingest with admin", "POST", "/api/v1/logs", "Bearer operator-secret-123", nil, 403, "tenant token"},
		{"ingest without token", "POST", "/api/v1/logs", "", map[string]string{"Content-Type": "application/x-ndjson"}, 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, c.target, strings.NewReader("x"))
			if c.auth != "" {
				r.Header.Set("Authorization", c.auth)
			}
			for k, v := range c.hdr {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			m.ServeHTTP(w, r)
			if w.Code != c.want || !strings.Contains(w.Body.String(), c.body) {
				t.Errorf("%s %s: %d %q, want %d containing %q", c.method, c.target, w.Code, w.Body.String(), c.want, c.body)
			}
			if strings.Contains(w.Body.String(), "access_token") {
				t.Errorf("access_token reached the handler: %q", w.Body.String())
			}
		})
	}
}

// A route nobody listed is protected by default: GET as a tenant read,
// anything else as an operator route.
func TestNewRoutesAreProtectedByDefault(t *testing.T) {
	m := newTestMiddleware(t)
	for _, c := range []struct {
		method string
		want   Scope
	}{{"GET", Read}, {"HEAD", Read}, {"POST", Admin}, {"DELETE", Admin}, {"PUT", Admin}} {
		r := httptest.NewRequest(c.method, "/api/v1/something-new", nil)
		if got := m.ScopeOf(r); got != c.want {
			t.Errorf("%s of an unlisted route: scope %v, want %v", c.method, got, c.want)
		}
	}
}

func TestOpenModeWarnsAndStillRefusesFormPosts(t *testing.T) {
	var logs bytes.Buffer
	m := Wrap(echo(), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "AUTH IS OFF") {
		t.Errorf("no warning: %q", logs.String())
	}
	w := httptest.NewRecorder()
	m.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/stats?tenant=beta", nil))
	if w.Code != 200 {
		t.Errorf("open read: %d", w.Code)
	}
	for _, ct := range []string{"", "text/plain", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"} {
		r := httptest.NewRequest("POST", "/api/v1/processor/pause", nil)
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		w := httptest.NewRecorder()
		m.ServeHTTP(w, r)
		if w.Code != 403 {
			t.Errorf("simple POST with Content-Type %q: %d, want 403", ct, w.Code)
		}
	}
	r := httptest.NewRequest("POST", "/api/v1/processor/pause", nil)
	r.Header.Set(CustomHeader, "1")
	w = httptest.NewRecorder()
	m.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("POST with %s: %d, want 200", CustomHeader, w.Code)
	}
}

func TestLoadAdminTokens(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "admins")
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	if _, err := LoadAdminTokens(write("# only a comment\n\n")); err == nil || !strings.Contains(err.Error(), "no tokens") {
		t.Errorf("empty file: %v", err)
	}
	if _, err := LoadAdminTokens(write("short\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("short token: %v", err)
	}
	got, err := LoadAdminTokens(write("# ops\n  operator-secret-123  \n"))
	if err != nil || len(got) != 1 {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := LoadAdminTokens(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "--admin-tokens") {
		t.Errorf("missing file: %v", err)
	}
}

func TestBearerToken(t *testing.T) {
	for h, want := range map[string]string{"Bearer abc": "abc", "bearer abc": "abc", "BEARER  abc ": "abc", "Basic abc": "", "Bearer": "", "Bearer ": "", "": ""} {
		got, ok := BearerToken(h)
		if got != want || ok != (want != "") {
			t.Errorf("BearerToken(%q) = %q %v, want %q", h, got, ok, want)
		}
	}
}
