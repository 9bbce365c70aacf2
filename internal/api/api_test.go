package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/store"
)

// now is the API clock in these tests; events sit in the 10 minutes before it.
var now = time.Date(2026, 3, 1, 12, 10, 0, 0, time.UTC)

var (
	services = []string{"checkout", "payments", "search"}
	levels   = []event.Level{event.LevelInfo, event.LevelWarn, event.LevelError, event.LevelInfo}
)

// testEvents are 600 events, one a second from 12:00:00 to 12:09:59.
func testEvents() []store.Row {
	rows := make([]store.Row, 600)
	for i := range rows {
		rows[i] = store.Row{Topic: "logs", Offset: int64(i), Bytes: 200, Event: event.Event{
			Time:    now.Add(-10*time.Minute + time.Duration(i)*time.Second),
			Service: services[i%3], Level: levels[i%4],
			Message: fmt.Sprintf("request %d served", i), Host: "web-1",
			TraceID: fmt.Sprintf("trace-%d", i%50), Tenant: []string{"acme", "globex"}[i%2],
			Attrs: []byte(fmt.Sprintf(`{"i":%d}`, i)),
		}}
	}
	return rows
}

// newTestAPI serves the API over a real DuckDB store in a temp dir.
func newTestAPI(t *testing.T, opts Options) (*httptest.Server, *store.Store) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "api.duckdb"), store.Options{DisableMaintenance: true, Retention: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Write(context.Background(), testEvents()); err != nil {
		t.Fatal(err)
	}
	opts.Store = st
	opts.Now = func() time.Time { return now }
	srv := httptest.NewServer(New(opts))
	t.Cleanup(srv.Close)
	return srv, st
}

// get fetches path and decodes the JSON body into v (when not nil).
func get(t *testing.T, srv *httptest.Server, path string, v any) *http.Response {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusNotFound && ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q, want application/json", path, ct)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: body %q is not JSON: %v", path, body, err)
		}
	}
	return resp
}

func TestStatsEndpoint(t *testing.T) {
	srv, _ := newTestAPI(t, Options{})
	var all store.Stats
	if resp := get(t, srv, "/api/v1/stats", &all); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if all.Events != 600 || all.Bytes != 600*200 || all.ByService["payments"] != 200 || all.ByLevel["info"] != 300 || all.ByLevel["error"] != 150 {
		t.Errorf("stats = %+v", all)
	}
	// The same window, written three ways: relative, RFC 3339, epoch ms.
	for _, q := range []string{
		"from=-5m&to=-4m",
		"from=2026-03-01T12:05:00Z&to=2026-03-01T12:06:00Z",
		fmt.Sprintf("from=%d&to=%d", now.Add(-5*time.Minute).UnixMilli(), now.Add(-4*time.Minute).UnixMilli()),
		fmt.Sprintf("from=%d&to=now-4m", now.Add(-5*time.Minute).Unix()),
	} {
		var s store.Stats
		if resp := get(t, srv, "/api/v1/stats?"+q, &s); resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", q, resp.StatusCode)
		}
		if s.Events != 60 {
			t.Errorf("%s: events = %d, want 60", q, s.Events)
		}
	}
}

// TestTenantFilters: stats and rollups answer for one tenant when asked,
// and rollups split by tenant.
func TestTenantFilters(t *testing.T) {
	srv, _ := newTestAPI(t, Options{})
	var acme store.Stats
	if resp := get(t, srv, "/api/v1/stats?tenant=acme", &acme); resp.StatusCode != 200 {
		t.Fatalf("stats?tenant=acme: status %d", resp.StatusCode)
	}
	// Tenants alternate (even i: acme); services cycle every 3, so acme has
	// 100 of each service.
	if acme.Events != 300 || acme.Bytes != 300*200 || acme.ByService["checkout"] != 100 || acme.ByService["payments"] != 100 {
		t.Errorf("stats?tenant=acme = %+v, want 300 events, 100 per service", acme)
	}
	var none store.Stats
	get(t, srv, "/api/v1/stats?tenant=initech&from=-5m", &none)
	if none.Events != 0 {
		t.Errorf("stats of a tenant with no events: %d, want 0", none.Events)
	}

	var r store.Rollups
	if resp := get(t, srv, "/api/v1/rollups?from=-10m&to=now&step=5m&tenant=globex&by=tenant,service", &r); resp.StatusCode != 200 {
		t.Fatalf("rollups?tenant=globex&by=tenant,service: status %d", resp.StatusCode)
	}
	if len(r.By) != 2 || r.By[0] != "service" || r.By[1] != "tenant" {
		t.Errorf("by = %v, want [service tenant]", r.By)
	}
	total := int64(0)
	for _, s := range r.Series {
		if s.Tenant == nil || *s.Tenant != "globex" || s.Service == nil || s.Level != nil {
			t.Fatalf("series %+v: want tenant globex, a service and no level", s)
		}
		for _, p := range s.Points {
			total += p.Count
		}
	}
	if total != 300 || len(r.Series) != 3 {
		t.Errorf("globex by tenant,service: %d events in %d series, want 300 in 3", total, len(r.Series))
	}
}

func TestSearchEndpoint(t *testing.T) {
	srv, _ := newTestAPI(t, Options{})
	var res store.SearchResult
	get(t, srv, "/api/v1/logs/search", &res)
	if len(res.Events) != 100 || !res.More || res.Events[0].Offset != 599 {
		t.Fatalf("default search: %d events, more=%v, first offset %d; want 100 newest, more, 599 first", len(res.Events), res.More, res.Events[0].Offset)
	}
	e := res.Events[0]
	if e.Message != "request 599 served" || e.Service != "search" || e.Level != "info" || e.Tenant != "globex" ||
		e.TraceID != "trace-49" || string(e.Attrs) != `{"i":599}` || !e.Time.Equal(now.Add(-time.Second)) {
		t.Errorf("newest event = %+v", e)
	}
	for _, c := range []struct {
		q    string
		want int
	}{
		{"service=payments&level=error&limit=10000", 50},
		{"q=REQUEST+12&limit=10000", 11}, // 12, 120..129
		{"trace_id=trace-7&limit=10000", 12},
		{"tenant=acme&service=checkout&limit=10000", 100},
		{"from=-1m&limit=10000", 60},
		{"from=-1m&to=-30s&level=info&limit=10000", 15},
		{"limit=5", 5},
		{"q=%27+OR+1%3D1+--", 0},
		{"service=%FF", 0},
	} {
		var r store.SearchResult
		if resp := get(t, srv, "/api/v1/logs/search?"+c.q, &r); resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", c.q, resp.StatusCode)
		}
		if len(r.Events) != c.want {
			t.Errorf("%s: %d events, want %d", c.q, len(r.Events), c.want)
		}
	}
}

func TestRollupsEndpoint(t *testing.T) {
	srv, _ := newTestAPI(t, Options{})
	var r store.Rollups
	// Defaults: the last hour, automatic step (10s for an hour).
	if resp := get(t, srv, "/api/v1/rollups", &r); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if r.StepSeconds != 10 || !r.To.Equal(now) || !r.From.Equal(now.Add(-time.Hour)) || len(r.Series) != 1 {
		t.Fatalf("default rollups: step %d, %s..%s, %d series", r.StepSeconds, r.From, r.To, len(r.Series))
	}
	if n := len(r.Series[0].Points); n != 60 {
		t.Errorf("default rollups: %d points, want 60 (10 minutes of 10s buckets)", n)
	}
	var by store.Rollups
	get(t, srv, "/api/v1/rollups?from=-10m&to=now&step=1m&by=service,level&service=checkout", &by)
	total := int64(0)
	for _, s := range by.Series {
		if s.Service == nil || *s.Service != "checkout" || s.Level == nil {
			t.Fatalf("series %+v: want service=checkout and a level", s)
		}
		for _, p := range s.Points {
			total += p.Count
		}
	}
	if total != 200 || len(by.Series) != 3 {
		t.Errorf("checkout by service,level: %d events in %d series, want 200 in 3", total, len(by.Series))
	}
}

func TestBadParametersAre400NamingTheParameter(t *testing.T) {
	srv, _ := newTestAPI(t, Options{})
	for _, c := range []struct{ path, param string }{
		{"/api/v1/stats?from=yesterday", "from"},
		{"/api/v1/stats?to=-15", "to"},
		{"/api/v1/stats?from=-1m&to=-2m", "to"},
		{"/api/v1/stats?form=-1m", "form"},
		{"/api/v1/stats?from=-1m&from=-2m", "from"},
		{"/api/v1/stats?from=%zz", "query"},
		{"/api/v1/logs/search?limit=0", "limit"},
		{"/api/v1/logs/search?limit=10001", "limit"},
		{"/api/v1/logs/search?limit=ten", "limit"},
		{"/api/v1/logs/search?level=loud", "level"},
		{"/api/v1/logs/search?servcie=x", "servcie"},
		{"/api/v1/logs/search?from=2026-13-01T00:00:00Z", "from"},
		{"/api/v1/rollups?step=0", "step"},
		{"/api/v1/rollups?step=1500ms", "step"},
		{"/api/v1/rollups?step=-1m", "step"},
		{"/api/v1/rollups?from=-2d&step=1s", "step"},
		{"/api/v1/rollups?by=host", "by"},
		{"/api/v1/rollups?by=service,,level", "by"},
		{"/api/v1/rollups?from=now&to=-1h", "to"},
		{"/api/v1/rollups?level=x", "level"},
		{"/api/v1/tail?level=x", "level"},
		{"/api/v1/tail?follow=1", "follow"},
	} {
		var e apiError
		resp := get(t, srv, c.path, &e)
		if resp.StatusCode != http.StatusBadRequest || e.Param != c.param || e.Error == "" {
			t.Errorf("GET %s: %d %+v; want 400 naming %q", c.path, resp.StatusCode, e, c.param)
		}
	}
}

func TestStoreFailureIs503NotABadRequest(t *testing.T) {
	srv, st := newTestAPI(t, Options{})
	st.Close()
	for _, path := range []string{"/api/v1/stats", "/api/v1/rollups", "/api/v1/logs/search"} {
		var e apiError
		resp := get(t, srv, path, &e)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || e.Error == "" {
			t.Errorf("GET %s on a closed store: %d (Retry-After %q) %+v; want 503 with Retry-After and a message",
				path, resp.StatusCode, resp.Header.Get("Retry-After"), e)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	notReady := errors.New("processor is 2.1M records behind")
	var ready error
	srv, _ := newTestAPI(t, Options{Ready: func(context.Context) error { return ready }})
	if resp := get(t, srv, "/healthz", nil); resp.StatusCode != 200 {
		t.Errorf("healthz %d", resp.StatusCode)
	}
	if resp := get(t, srv, "/readyz", nil); resp.StatusCode != 200 {
		t.Errorf("readyz %d while ready", resp.StatusCode)
	}
	ready = notReady
	var body map[string]string
	resp := get(t, srv, "/readyz", &body)
	if resp.StatusCode != 503 || !strings.Contains(body["error"], "behind") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("readyz while not ready: %d %v", resp.StatusCode, body)
	}
}

// FuzzQueryParams sends arbitrary query strings to every GET endpoint: bad
// input may get 400, never a 500, and every answer is JSON.
func FuzzQueryParams(f *testing.F) {
	for _, s := range []string{"", "from=-15m", "from=1700000000&to=1700000060", "step=1m&by=service,level",
		"limit=10&q=x", "level=warn&service=%FF", "from=now-1d", "to=9999999999999999999", "by=,", "step=99999999999s",
		"from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z", "from=1&to=2&step=1",
		"tenant=acme&by=tenant,service", "tenant=%00%27&by=tenant"} {
		f.Add(s)
	}
	st, err := store.Open("", store.Options{DisableMaintenance: true, Retention: -1})
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Write(context.Background(), testEvents()[:50]); err != nil {
		f.Fatal(err)
	}
	h := New(Options{Store: st, Now: func() time.Time { return now }})
	f.Fuzz(func(t *testing.T, raw string) {
		for _, path := range []string{"/api/v1/stats", "/api/v1/rollups", "/api/v1/logs/search"} {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.URL = &url.URL{Path: path, RawQuery: raw}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 && w.Code != 400 {
				t.Fatalf("GET %s?%s: %d %s", path, raw, w.Code, w.Body)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("GET %s?%s: body is not JSON: %q", path, raw, w.Body)
			}
		}
	})
}
