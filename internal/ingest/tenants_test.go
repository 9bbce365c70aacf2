package ingest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTokens(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func postAuth(h http.Handler, token string, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/api/v1/logs", bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/x-ndjson")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestTenantsAuthAndTagging(t *testing.T) {
	ten, err := LoadTenants(writeTokens(t, `{"tokens":[{"token":"acme-token-1","tenant":"acme"},{"token":"globex-token","tenant":"globex"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	h := NewHandler(rec, Options{Tenants: ten})
	if w := postAuth(h, "", `{"message":"x"}`); w.Code != 401 || w.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d", w.Code)
	}
	if w := postAuth(h, "acme-token-2", `{"message":"x"}`); w.Code != 401 {
		t.Fatalf("unknown token: %d", w.Code)
	}
	// A sender cannot write into another tenant by setting the field.
	if w := postAuth(h, "acme-token-1", `{"message":"x","tenant":"globex"}`); w.Code != 202 {
		t.Fatalf("good token: %d %s", w.Code, w.Body)
	}
	if len(rec.vals) != 1 || !strings.Contains(rec.vals[0], `"tenant":"acme"`) {
		t.Fatalf("records %q", rec.vals)
	}
}

func TestTenantRateLimit(t *testing.T) {
	ten, err := LoadTenants(writeTokens(t, `{"tokens":[{"token":"limited-token","tenant":"small","events_per_second":10}]}`))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	h := NewHandler(rec, Options{Tenants: ten})
	five := strings.Repeat(`{"message":"x"}`+"\n", 5)
	codes := []int{}
	for i := 0; i < 4; i++ {
		codes = append(codes, postAuth(h, "limited-token", five).Code)
	}
	if fmt.Sprint(codes[:2]) != "[202 202]" || codes[2] != 429 {
		t.Fatalf("codes %v: want two 202s then 429 for 10 events/s", codes)
	}
	w := postAuth(h, "limited-token", five)
	if w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("over limit: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if len(rec.vals) != 10 {
		t.Fatalf("stored %d events, want the 10 admitted", len(rec.vals))
	}
	if w := postAuth(h, "limited-token", strings.Repeat(`{"message":"x"}`+"\n", 11)); w.Code != 413 {
		t.Fatalf("a batch larger than one second's allowance: %d, want 413", w.Code)
	}
}

func TestLoadTenantsErrorsNameTheFile(t *testing.T) {
	for _, body := range []string{`{`, `{"tokens":[]}`, `{"tokens":[{"token":"short","tenant":"a"}]}`, `{"tokens":[{"token":"longenough","tenant":""}]}`, `{"tokenz":[]}`} {
		p := writeTokens(t, body)
		_, err := LoadTenants(p)
		if err == nil || !strings.Contains(err.Error(), "--auth-tokens") {
			t.Errorf("%s: error %v does not name --auth-tokens", body, err)
		}
	}
}
