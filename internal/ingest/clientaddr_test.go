package ingest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestClientAddr(t *testing.T) {
	proxies, err := ParseTrustedProxies("10.0.0.0/8, 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"198.51.100.7:5555", nil, "198.51.100.7:5555"},
		{"198.51.100.7:5555", []string{"203.0.113.9"}, "198.51.100.7:5555"},          // untrusted peer: header ignored
		{"10.1.2.3:80", []string{"203.0.113.9"}, "203.0.113.9:0"},                    // trusted proxy
		{"10.1.2.3:80", []string{"1.1.1.1, 203.0.113.9, 10.9.9.9"}, "203.0.113.9:0"}, // rightmost untrusted; 1.1.1.1 may be forged
		{"10.1.2.3:80", []string{"1.1.1.1", "203.0.113.9"}, "203.0.113.9:0"},         // several headers
		{"10.1.2.3:80", []string{"garbage"}, "10.1.2.3:80"},
		{"10.1.2.3:80", []string{"10.4.4.4"}, "10.1.2.3:80"}, // only proxies: the peer
		{"[::ffff:127.0.0.1]:80", []string{"[2001:db8::1]:443"}, "[2001:db8::1]:0"},
	} {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = c.remote
		for _, x := range c.xff {
			r.Header.Add("X-Forwarded-For", x)
		}
		if got := ClientAddr(r, proxies).String(); got != c.want {
			t.Errorf("%s %v: %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
	if _, err := ParseTrustedProxies("10.0.0.0/33"); err == nil || !strings.Contains(err.Error(), "--trusted-proxies") {
		t.Errorf("bad prefix: %v", err)
	}
}

// TestClientAddressOnEvents: HTTP and OTLP events carry the sender.
func TestClientAddressOnEvents(t *testing.T) {
	prod := &recorder{}
	proxies, _ := ParseTrustedProxies("192.0.2.0/24")
	h := NewHandler(prod, Options{TrustedProxies: proxies})
	req := httptest.NewRequest("POST", "/api/v1/logs", strings.NewReader(`{"message":"a","k":"v"}`+"\n"+`{"message":"b"}`))
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("X-Forwarded-For", "203.0.113.50")
	req.RemoteAddr = "192.0.2.10:4711"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusAccepted {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if len(prod.vals) != 2 {
		t.Fatalf("%d records", len(prod.vals))
	}
	for i, v := range prod.vals {
		var rec struct {
			Attrs map[string]any `json:"attrs"`
		}
		if err := json.Unmarshal([]byte(v), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Attrs["client.address"] != "203.0.113.50" {
			t.Errorf("event %d attrs %v: want client.address of the forwarded client", i, rec.Attrs)
		}
		if i == 0 && rec.Attrs["k"] != "v" {
			t.Errorf("event attrs lost: %v", rec.Attrs)
		}
	}
}
