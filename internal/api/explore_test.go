package api

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/patterns"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/webui"
)

// The histogram's counts, the fields' totals and a search with the same
// filter agree, for filters the rollups answer and for those that scan.
func TestExploreEndpointsAgree(t *testing.T) {
	srv, _ := newTestAPI(t, Options{})
	for _, q := range []string{
		"from=-10m&service=checkout",
		"from=-10m&service=checkout&exclude=level%3Dwarn",
		"from=-10m&host=web-1&q=served&attr=i%3D42",
		"from=-10m&trace_id=trace-7&exclude=tenant%3Dacme",
		"from=-5m&to=-1m&attr=level%3Derror&exclude=service%3Dsearch",
	} {
		var h store.Histogram
		if resp := get(t, srv, "/api/v1/logs/histogram?"+q+"&step=1m", &h); resp.StatusCode != 200 {
			t.Fatalf("histogram?%s: %d", q, resp.StatusCode)
		}
		var sr store.SearchResult
		if resp := get(t, srv, "/api/v1/logs/search?"+q+"&limit=10000", &sr); resp.StatusCode != 200 {
			t.Fatalf("search?%s: %d", q, resp.StatusCode)
		}
		var fr store.FieldsResult
		if resp := get(t, srv, "/api/v1/logs/fields?"+q, &fr); resp.StatusCode != 200 {
			t.Fatalf("fields?%s: %d", q, resp.StatusCode)
		}
		if h.Total != int64(len(sr.Events)) || fr.Total != h.Total || h.Total == 0 {
			t.Errorf("%s: histogram total %d (%s), fields total %d, search found %d; want equal and > 0", q, h.Total, h.Source, fr.Total, len(sr.Events))
		}
		var sum int64
		for _, col := range h.Levels {
			for _, c := range col {
				sum += c
			}
		}
		if sum != h.Total {
			t.Errorf("%s: buckets sum to %d, total says %d", q, sum, h.Total)
		}
	}
	for _, bad := range []string{"attr=noequals", "step=0s", "from=-1m&to=-2m", "attr=a%22b%3D1", "level=loud", "attr=level%3Dloud"} {
		var e apiError
		if resp := get(t, srv, "/api/v1/logs/histogram?"+bad, &e); resp.StatusCode != 400 || e.Param == "" {
			t.Errorf("histogram?%s: %d %+v, want 400 naming the parameter", bad, resp.StatusCode, e)
		}
	}
}

func TestContextEndpoint(t *testing.T) {
	srv, _ := newTestAPI(t, Options{})
	var c store.ContextResult
	if resp := get(t, srv, "/api/v1/logs/context?topic=logs&partition=0&offset=300&n=3", &c); resp.StatusCode != 200 {
		t.Fatalf("context: %d", resp.StatusCode)
	}
	// Same service (every third event) and tenant (every second): every sixth.
	want := []int64{282, 288, 294}
	for i, e := range c.Before {
		if e.Offset != want[i] {
			t.Errorf("before[%d] offset %d, want %d", i, e.Offset, want[i])
		}
	}
	if c.Hit.Offset != 300 || len(c.After) != 3 || c.After[0].Offset != 306 {
		t.Errorf("hit %d, after %+v", c.Hit.Offset, c.After)
	}
	for _, bad := range []string{"partition=0&offset=1", "topic=logs&offset=1", "topic=logs&partition=0&offset=99999", "topic=logs&partition=0&offset=1&by=pod"} {
		var e apiError
		if resp := get(t, srv, "/api/v1/logs/context?"+bad, &e); resp.StatusCode != 400 || e.Param == "" {
			t.Errorf("context?%s: %d %+v, want 400 naming the parameter", bad, resp.StatusCode, e)
		}
	}
}

func TestExportStreamsEveryRow(t *testing.T) {
	srv, _ := newTestAPI(t, Options{})
	resp, err := http.Get(srv.URL + "/api/v1/logs/export?service=payments")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %v", resp.StatusCode, resp.Header)
	}
	sc := bufio.NewScanner(resp.Body)
	n := 0
	var last time.Time
	for sc.Scan() {
		var e store.StoredEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Service != "payments" {
			t.Fatalf("line %d: %q (%v)", n, sc.Text(), err)
		}
		if n > 0 && e.Time.After(last) {
			t.Errorf("line %d is newer than the one before", n)
		}
		last = e.Time
		n++
	}
	if n != 200 {
		t.Errorf("exported %d rows, want 200", n)
	}
	resp2, err := http.Get(srv.URL + "/api/v1/logs/export?format=csv&level=error")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	recs, err := csv.NewReader(resp2.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 151 || recs[0][0] != "ts" || recs[1][2] != "error" {
		t.Errorf("csv: %d records (want header + 150), first %v", len(recs), recs[:min(2, len(recs))])
	}
}

// Lines that differ only in numbers become one pattern, served with its
// count, and attr=_pattern=ID finds exactly its lines.
func TestPatternsEndpoint(t *testing.T) {
	srv, st := newTestAPI(t, Options{})
	m := patterns.New(patterns.Options{})
	var evs []event.Event
	for _, r := range testEvents() {
		evs = append(evs, r.Event)
	}
	m.Observe(evs)
	ts, cs := m.Flush()
	if err := st.WritePatterns(context.Background(), ts, cs); err != nil {
		t.Fatal(err)
	}
	var pr store.PatternsResult
	// Templates are per tenant and service: search's lines are half acme's.
	if resp := get(t, srv, "/api/v1/patterns?from=-10m&service=search", &pr); resp.StatusCode != 200 || len(pr.Patterns) != 2 {
		t.Fatalf("patterns of search: %d %+v, want one per tenant", resp.StatusCode, pr.Patterns)
	}
	if resp := get(t, srv, "/api/v1/patterns?from=-10m&service=search&tenant=acme", &pr); resp.StatusCode != 200 {
		t.Fatalf("patterns: %d", resp.StatusCode)
	}
	if len(pr.Patterns) != 1 || pr.Patterns[0].Template != "request <*> served" || pr.Patterns[0].Count != 100 {
		t.Fatalf("patterns of search for acme: %+v, want one 'request <*> served' x100", pr.Patterns)
	}
	var sum int64
	for _, v := range pr.Patterns[0].Sparkline {
		sum += v
	}
	if sum != 100 {
		t.Errorf("sparkline sums to %d, want 100", sum)
	}
	var h store.Histogram
	get(t, srv, "/api/v1/logs/histogram?from=-10m&attr=_pattern%3D"+pr.Patterns[0].ID, &h)
	if h.Total != 100 {
		t.Errorf("histogram of the pattern's lines: %d, want 100", h.Total)
	}
	get(t, srv, "/api/v1/logs/histogram?from=-10m&exclude=_pattern%3D"+pr.Patterns[0].ID, &h)
	if h.Total != 500 {
		t.Errorf("histogram without the pattern's lines: %d, want 500", h.Total)
	}
}

func TestDashboardAndConfig(t *testing.T) {
	ui := webui.New(fstest.MapFS{"index.html": {Data: []byte("<!doctype html><title>wirelog</title>")}})
	srv, _ := newTestAPI(t, Options{DashboardOptions: DashboardOptions{UI: ui, JaegerURL: "http://jaeger:16686"}})
	for _, path := range []string{"/", "/explore?from=-1h", "/tail"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "<title>wirelog") {
			t.Errorf("GET %s: %d %q, want the app", path, resp.StatusCode, body)
		}
	}
	var e apiError
	if resp := get(t, srv, "/api/v1/no/such", &e); resp.StatusCode != 404 {
		t.Errorf("unknown API path: %d, want a JSON 404", resp.StatusCode)
	}
	var c UIConfig
	get(t, srv, "/api/v1/ui/config", &c)
	if c.JaegerURL != "http://jaeger:16686" || c.DataPlane.Source != "none" {
		t.Errorf("config %+v", c)
	}
	if resp := get(t, srv, "/api/v1/dataplane/series", &e); resp.StatusCode != 404 || !strings.Contains(e.Error, "--prometheus") {
		t.Errorf("dataplane without a source: %d %+v, want 404 naming the flags", resp.StatusCode, e)
	}
}
