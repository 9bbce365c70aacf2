package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/transport"
)

func reqFrom(addr string) *http.Request {
	r := httptest.NewRequest("POST", "/api/v1/logs", nil)
	r.RemoteAddr = addr
	return r
}

func TestAdmissionPerClientAndBudget(t *testing.T) {
	a := NewAdmission(10, 3, 4<<20, Limits{})
	var held []*Ticket
	for i := 0; i < 3; i++ {
		tk, err := a.Enter(reqFrom("10.0.0.1:1234"))
		if err != nil {
			t.Fatalf("request %d of one client: %v", i, err)
		}
		held = append(held, tk)
	}
	if _, err := a.Enter(reqFrom("10.0.0.1:999")); err == nil || !strings.Contains(err.Error(), "--max-inflight-per-client") {
		t.Fatalf("4th request of one client: %v", err)
	}
	other, err := a.Enter(reqFrom("10.0.0.2:1"))
	if err != nil {
		t.Fatalf("another client: %v", err)
	}
	// The same token from other addresses counts as one tenant, which may
	// hold half the slots (5 of 10).
	tok := func(addr string) *http.Request {
		r := reqFrom(addr)
		r.Header.Set("Authorization", "Bearer same-token-123")
		return r
	}
	for i := 0; i < 5; i++ {
		tk, err := a.Enter(tok(fmt.Sprintf("10.1.0.%d:1", i)))
		if err != nil {
			t.Fatalf("token request %d: %v", i, err)
		}
		held = append(held, tk)
	}
	if _, err := a.Enter(tok("10.1.0.9:1")); err == nil || !strings.Contains(err.Error(), "one tenant") {
		t.Fatalf("a 6th request with one token from a 6th address: %v", err)
	}

	if err := other.Need(3 << 20); err != nil {
		t.Fatal(err)
	}
	if err := held[0].Need(2 << 20); !errors.Is(err, ErrBudget) {
		t.Fatalf("over the shared budget: %v, want ErrBudget", err)
	}
	if err := held[0].Need(5 << 20); !errors.Is(err, ErrRequestTooLarge) {
		t.Fatalf("over the budget alone: %v, want ErrRequestTooLarge", err)
	}
	other.Done()
	if err := held[0].Need(2 << 20); err != nil {
		t.Fatalf("after the other request finished: %v", err)
	}
	for _, tk := range held {
		tk.Done()
	}
	if a.InUse() != 0 || a.inflight.Load() != 0 || len(a.clients) != 0 {
		t.Fatalf("after every Done: %d bytes, %d in flight, clients %v", a.InUse(), a.inflight.Load(), a.clients)
	}
}

func TestLimitsValidate(t *testing.T) {
	l := Limits{}
	if err := l.Validate(DefaultMemoryBudget); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	l = Limits{}
	if err := l.Validate(8 << 20); err == nil || !strings.Contains(err.Error(), "--ingest-memory-budget") {
		t.Errorf("small budget: %v", err)
	}
	l = Limits{MaxEventBytes: 64 << 20}
	if err := l.Validate(1 << 30); err == nil || !strings.Contains(err.Error(), "64 MiB") {
		t.Errorf("events over the log's batch: %v", err)
	}
}

func postLimits(t *testing.T, h http.Handler, ct string, body []byte) (int, Response) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/logs", bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var resp Response
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("answer %d is not JSON: %q", w.Code, w.Body.String())
	}
	return w.Code, resp
}

func TestRecordAndRequestLimits(t *testing.T) {
	rec := &recorder{}
	h := NewHandler(rec, Options{MaxRecords: 10, MaxAttributes: 5, MaxDepth: 3})
	lines := func(n int, line string) []byte { return bytes.Repeat([]byte(line+"\n"), n) }

	if code, resp := postLimits(t, h, "application/x-ndjson", lines(11, `{"m":1}`)); code != 413 || !strings.Contains(resp.Message, "--max-records") {
		t.Errorf("11 lines over --max-records 10: %d %+v", code, resp)
	}
	if code, resp := postLimits(t, h, "application/json", []byte("["+strings.Repeat(`{"m":1},`, 10)+`{"m":1}]`)); code != 413 || !strings.Contains(resp.Message, "--max-records") {
		t.Errorf("array of 11: %d %+v", code, resp)
	}
	if code, _ := postLimits(t, h, "application/x-ndjson", lines(10, `{"m":1}`)); code != 202 {
		t.Errorf("10 lines: %d", code)
	}
	code, resp := postLimits(t, h, "application/x-ndjson", []byte(`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}`+"\n"+`{"message":"ok"}`+"\n"))
	if code != 202 || resp.Rejected != 1 || !strings.Contains(resp.Errors[0].Error, "--max-attributes") {
		t.Errorf("6 attributes: %d %+v", code, resp)
	}
	code, resp = postLimits(t, h, "application/x-ndjson", []byte(`{"a":{"b":{"c":{"d":1}}}}`+"\n"))
	if code != 413 || !strings.Contains(resp.Errors[0].Error, "--max-depth") {
		t.Errorf("4 levels: %d %+v", code, resp)
	}
	code, resp = postLimits(t, h, "application/x-ndjson", []byte("{\"message\":\"a\x00b\"}\n"))
	if code != 400 || !strings.Contains(resp.Errors[0].Error, "control character 0x00") {
		t.Errorf("raw NUL: %d %+v", code, resp)
	}
	rec.vals = nil
	code, _ = postLimits(t, h, "application/x-ndjson", []byte(`{"tenant":"picked","message":"m"}`+"\n"))
	if code != 202 || len(rec.vals) != 1 || !strings.Contains(rec.vals[0], `"attrs":{"tenant":"picked",`) { // client.address follows
		t.Errorf("tenant field without auth: %d %v", code, rec.vals)
	}
	if h.adm.InUse() != 0 {
		t.Errorf("%d bytes of the budget held after the answers", h.adm.InUse())
	}
}

// TestStalledBodyIsAnswered408: a body that stops arriving is answered
// after the grace, and the slot is free again.
func TestStalledBodyIsAnswered408(t *testing.T) {
	h := NewHandler(discard{}, Options{MinBodyRate: 1024, MaxPerClient: 1})
	srv := httptest.NewServer(h)
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n{\"message\":")
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	start := time.Now()
	status, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(status, "408") {
		t.Fatalf("stalled body: %q %v after %v", status, err, time.Since(start))
	}
	if d := time.Since(start); d < bodyRateGrace-time.Second {
		t.Errorf("answered after %v, before the %v grace", d, bodyRateGrace)
	}
	resp, err := http.Post(srv.URL, "application/x-ndjson", strings.NewReader(`{"message":"next"}`+"\n"))
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("the next request of the same client: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestLogTooLargeIs413: a log that refuses the records as too large (Kafka's
// message.max.bytes) gets a status clients do not retry, not a 503.
func TestLogTooLargeIs413(t *testing.T) {
	rec := &recorder{err: fmt.Errorf("kafka produce: %w", transport.ErrTooLarge)}
	code, resp := postLimits(t, NewHandler(rec, Options{}), "application/x-ndjson", []byte(`{"message":"m"}`+"\n"))
	if code != 413 || !strings.Contains(resp.Message, "too large") {
		t.Errorf("%d %+v, want 413", code, resp)
	}
}

// Behind a trusted proxy every forwarded client gets its own slots; a
// peer that is not a trusted proxy cannot pick its key with the header.
func TestAdmissionPerClientBehindTrustedProxy(t *testing.T) {
	proxies, err := ParseTrustedProxies("192.0.2.0/24")
	if err != nil {
		t.Fatal(err)
	}
	a := NewAdmission(100, 2, 4<<20, Limits{})
	a.proxies = proxies
	via := func(peer, xff string) *http.Request {
		r := reqFrom(peer)
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		return r
	}
	var held []*Ticket
	defer func() {
		for _, tk := range held {
			tk.Done()
		}
	}()
	for _, client := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		for i := 0; i < 2; i++ {
			tk, err := a.Enter(via("192.0.2.10:4000", client))
			if err != nil {
				t.Fatalf("client %s behind the proxy, request %d: %v", client, i, err)
			}
			held = append(held, tk)
		}
		if _, err := a.Enter(via("192.0.2.11:4000", client)); err == nil {
			t.Fatalf("client %s got a 3rd slot through another proxy; want --max-inflight-per-client 2", client)
		}
	}
	// An untrusted peer naming a fresh address each time is still one client.
	for i := 0; i < 2; i++ {
		tk, err := a.Enter(via("203.0.113.7:1", fmt.Sprintf("198.51.100.%d", 50+i)))
		if err != nil {
			t.Fatalf("untrusted peer, request %d: %v", i, err)
		}
		held = append(held, tk)
	}
	if _, err := a.Enter(via("203.0.113.7:2", "198.51.100.99")); err == nil {
		t.Fatal("an untrusted peer escaped its per-client limit with X-Forwarded-For")
	}
}
