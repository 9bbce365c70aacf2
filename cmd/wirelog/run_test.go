package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/klauspost/compress/zstd"
)

type searchResult struct {
	Events []struct {
		Time    time.Time      `json:"ts"`
		Service string         `json:"service"`
		Level   string         `json:"level"`
		Message string         `json:"message"`
		Host    string         `json:"host"`
		TraceID string         `json:"trace_id"`
		SpanID  string         `json:"span_id"`
		Attrs   map[string]any `json:"attrs"`
	} `json:"events"`
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zstdBytes(b []byte) []byte {
	e, _ := zstd.NewWriter(nil)
	defer e.Close()
	return e.EncodeAll(b, nil)
}

// TestEndToEnd posts events in every accepted encoding and finds each one
// through search, stats and rollups.
func TestEndToEnd(t *testing.T) {
	n := startNode(t, t.TempDir())
	run := fmt.Sprintf("e2e%d", time.Now().UnixNano())
	line := func(enc string, i int) string {
		return fmt.Sprintf(`{"ts":"2026-11-27T10:00:0%d.5Z","service":"svc-%s","level":"WARNING","message":"%s %s event %d","host":"web-%d","trace_id":"4bf92f3577b34da6a3ce929d0e0e47%02d","span_id":"00f067aa0ba902b7","order":%d}`,
			i, enc, run, enc, i, i, i, i)
	}
	nd := func(enc string) []byte {
		var b strings.Builder
		for i := 0; i < 3; i++ {
			b.WriteString(line(enc, i) + "\n")
		}
		return []byte(b.String())
	}
	arr := func(enc string) []byte {
		return []byte("[" + line(enc, 0) + "," + line(enc, 1) + "," + line(enc, 2) + "]")
	}
	posts := []struct {
		enc, ct, ce string
		body        []byte
	}{
		{"ndjson", "application/x-ndjson", "", nd("ndjson")},
		{"ndjsongzip", "application/x-ndjson", "gzip", gzipBytes(nd("ndjsongzip"))},
		{"ndjsonzstd", "application/x-ndjson", "zstd", zstdBytes(nd("ndjsonzstd"))},
		{"jsonarray", "application/json", "", arr("jsonarray")},
		{"jsonarrayzstd", "application/json", "zstd", zstdBytes(arr("jsonarrayzstd"))},
		{"jsonobject", "application/json", "gzip", gzipBytes([]byte(line("jsonobject", 0)))},
	}
	want := 0
	for _, p := range posts {
		code, resp, _ := n.post(p.ct, p.ce, p.body)
		if code != http.StatusAccepted || resp["rejected"].(float64) != 0 {
			t.Fatalf("%s: %d %v", p.enc, code, resp)
		}
		want += int(resp["accepted"].(float64))
	}
	if want != 16 {
		t.Fatalf("accepted %d events, want 16", want)
	}
	eventually(t, 30*time.Second, func() error {
		if got := statsEvents(n); got != float64(want) {
			return fmt.Errorf("stats events = %v, want %d", got, want)
		}
		return nil
	})
	for _, p := range posts {
		var res searchResult
		q := url.Values{"service": {"svc-" + p.enc}, "q": {run}, "from": {"2026-11-27T00:00:00Z"}, "to": {"2026-11-28T00:00:00Z"}}
		if code := n.getJSON("/api/v1/logs/search?"+q.Encode(), &res); code != 200 {
			t.Fatalf("search %s: status %d", p.enc, code)
		}
		wantN := 3
		if p.enc == "jsonobject" {
			wantN = 1
		}
		if len(res.Events) != wantN {
			t.Fatalf("search %s found %d events, want %d", p.enc, len(res.Events), wantN)
		}
		for _, e := range res.Events {
			i := int(e.Attrs["order"].(float64))
			wantTS := time.Date(2026, 11, 27, 10, 0, i, 5e8, time.UTC)
			if e.Level != "warn" || e.Host != fmt.Sprintf("web-%d", i) || !e.Time.Equal(wantTS) ||
				e.TraceID != fmt.Sprintf("4bf92f3577b34da6a3ce929d0e0e47%02d", i) || e.SpanID != "00f067aa0ba902b7" ||
				e.Message != fmt.Sprintf("%s %s event %d", run, p.enc, i) {
				t.Fatalf("search %s: stored event %+v", p.enc, e)
			}
		}
	}
	// by trace id
	var res searchResult
	n.getJSON("/api/v1/logs/search?trace_id=4bf92f3577b34da6a3ce929d0e0e4702&from=2026-11-27T00:00:00Z", &res)
	if len(res.Events) != 5 {
		t.Fatalf("trace_id search found %d events, want 5", len(res.Events))
	}
	var stats struct {
		Events    int64            `json:"events"`
		ByLevel   map[string]int64 `json:"by_level"`
		ByService map[string]int64 `json:"by_service"`
	}
	n.getJSON("/api/v1/stats", &stats)
	if stats.ByLevel["warn"] != 16 || stats.ByService["svc-ndjsonzstd"] != 3 || stats.ByService["svc-jsonobject"] != 1 {
		t.Fatalf("stats %+v", stats)
	}
	var roll struct {
		Series []struct {
			Service *string `json:"service"`
			Points  []struct {
				Count int64 `json:"count"`
			} `json:"points"`
		} `json:"series"`
	}
	if code := n.getJSON("/api/v1/rollups?from=2026-11-27T10:00:00Z&to=2026-11-27T10:01:00Z&step=1s&by=service", &roll); code != 200 {
		t.Fatalf("rollups status %d", code)
	}
	total := int64(0)
	for _, s := range roll.Series {
		for _, p := range s.Points {
			total += p.Count
		}
	}
	if total != 16 || len(roll.Series) != 6 {
		t.Fatalf("rollups: %d series, %d events; want 6 series, 16 events", len(roll.Series), total)
	}
}

// TestBadInput sends every kind of bad request to the real binary: each gets
// the documented status, the server stays up, and good lines of mixed bodies
// are stored.
func TestBadInput(t *testing.T) {
	n := startNode(t, t.TempDir(), "--max-body-bytes", "65536", "--max-line-bytes", "4096")
	huge := `{"message":"` + strings.Repeat("x", 8000) + `"}`
	cases := []struct {
		name, ct, ce string
		body         []byte
		code         int
	}{
		{"malformed-lines", "application/x-ndjson", "", []byte("{\"message\":\"good-a\"}\n{not json\n{\"message\":\"good-b\"}\n"), 202},
		{"wrong-types", "application/x-ndjson", "", []byte("{\"service\":1}\n{\"ts\":\"soon\"}\n{\"message\":\"good-c\"}\n"), 202},
		{"huge-line", "application/x-ndjson", "", []byte(huge + "\n{\"message\":\"good-d\"}\n"), 202},
		{"over-limit", "application/x-ndjson", "", bytes.Repeat([]byte(huge+"\n"), 10), 413},
		{"broken-gzip", "application/x-ndjson", "gzip", []byte("\x1f\x8b\x08garbage"), 400},
		{"broken-zstd", "application/x-ndjson", "zstd", []byte("\x28\xb5\x2f\xfdgarbage"), 400},
		{"wrong-content-type", "text/plain", "", []byte(`{"message":"x"}`), 415},
		{"empty", "application/x-ndjson", "", nil, 400},
		{"nothing-usable", "application/json", "", []byte(`[1,2,3]`), 400},
	}
	for _, c := range cases {
		code, resp, _ := n.post(c.ct, c.ce, c.body)
		if code != c.code {
			t.Errorf("%s: status %d, want %d (%v)", c.name, code, c.code, resp)
		}
		if _, ok := resp["errors"]; !ok {
			t.Errorf("%s: answer lacks errors: %v", c.name, resp)
		}
	}
	if code := n.getJSON("/healthz", nil); code != 200 {
		t.Fatalf("healthz %d after bad input", code)
	}
	eventually(t, 30*time.Second, func() error {
		var res searchResult
		n.getJSON("/api/v1/logs/search?q=good-&from=-1h", &res)
		if len(res.Events) != 4 {
			return fmt.Errorf("found %d good events, want 4", len(res.Events))
		}
		return nil
	})
	var m strings.Builder
	resp, err := http.Get(n.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := new(bytes.Buffer)
	buf.ReadFrom(resp.Body)
	m.Write(buf.Bytes())
	if !contains(m.String(), `wirelog_ingest_events_total{result="rejected"} 7`) {
		t.Fatalf("metrics do not count the 7 rejected lines (1+2+1 bad lines, 3 array elements):\n%s", grepLines(m.String(), "wirelog_ingest_events_total"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestGracefulShutdown: a live-tail client sees stored events; SIGTERM exits
// 0 promptly even with the tail stream open, and what was acknowledged is
// stored after a restart.
func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "--shutdown-timeout", "25s")
	tailResp, err := http.Get(n.URL + "/api/v1/tail?service=s")
	if err != nil || tailResp.StatusCode != 200 {
		t.Fatalf("tail: %v %v", tailResp, err)
	}
	defer tailResp.Body.Close()
	sawTail := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(tailResp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") && strings.Contains(sc.Text(), "shutdown 499") {
				sawTail <- sc.Text()
				return
			}
		}
	}()
	var body strings.Builder
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&body, `{"message":"shutdown %d","service":"s"}`+"\n", i)
	}
	if code, _, _ := n.post("application/x-ndjson", "", []byte(body.String())); code != 202 {
		t.Fatalf("post %d", code)
	}
	select {
	case line := <-sawTail:
		if !strings.Contains(line, `"service":"s"`) {
			t.Fatalf("tail line %q", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("live tail did not deliver the stored events within 30s")
	}
	// Well under --shutdown-timeout: an open tail stream must not hold shutdown.
	if err := n.Term(10 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, n.Logs())
	}
	n2 := startNode(t, dir)
	eventually(t, 30*time.Second, func() error {
		if got := statsEvents(n2); got != 500 {
			return fmt.Errorf("stats events = %v, want 500", got)
		}
		return nil
	})
}
