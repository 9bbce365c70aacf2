package ingest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBatchAuth: the other protocols authenticate like the native one (the
// Basic and ApiKey forms shippers send are authz.Credential's, in front of
// the mux); the token's tenant overrides the event's.
func TestBatchAuth(t *testing.T) {
	ten, err := LoadTenants(writeTokens(t, `{"tokens":[{"token":"acme-token-1","tenant":"acme"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	h := NewHandler(rec, Options{Tenants: ten})
	serve := func(auth string) int {
		req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader("body"))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		b, ref := h.Begin(httptest.NewRecorder(), req, "test")
		if ref != nil {
			return ref.Code
		}
		defer b.End()
		e := b.Event()
		e.Message, e.Tenant = string(b.Body()), "someone-else"
		e.Time = b.Arrival()
		b.Add(nil)
		if ref := b.Commit(req.Context()); ref != nil {
			return ref.Code
		}
		return 200
	}
	for _, c := range []struct {
		auth string
		code int
	}{
		{"", 401},
		{"Bearer nope", 401},
		{"Bearer acme-token-1", 200},
		{"Negotiate xyz", 401},
	} {
		if got := serve(c.auth); got != c.code {
			t.Errorf("%q: %d, want %d", c.auth, got, c.code)
		}
	}
	for _, v := range rec.vals {
		if !strings.Contains(v, `"tenant":"acme"`) || !strings.Contains(v, `"message":"body"`) {
			t.Errorf("stored %s: want the token's tenant", v)
		}
	}
	if len(rec.vals) != 1 {
		t.Errorf("%d stored, want 1", len(rec.vals))
	}
}

// TestBatchSlots: a request beyond --max-concurrent in flight is refused
// with 429 and Retry-After until one ends.
func TestBatchSlots(t *testing.T) {
	h := NewHandler(&recorder{}, Options{MaxConcurrent: 1})
	begin := func() (*Batch, *Refusal) {
		return h.Begin(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/x", strings.NewReader("b")), "test")
	}
	b, ref := begin()
	if ref != nil {
		t.Fatal(ref)
	}
	if _, ref := begin(); ref == nil || ref.Code != 429 || ref.RetryAfter <= 0 {
		t.Fatalf("second request: %v, want 429 with Retry-After", ref)
	}
	b.End()
	b2, ref := begin()
	if ref != nil {
		t.Fatalf("after End: %v", ref)
	}
	b2.End()
}
