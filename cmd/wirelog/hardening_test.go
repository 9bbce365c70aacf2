//go:build !agent

package main

// Regression tests for issue 19, each against the real binary: every
// numbered finding of the issue is one test that failed on the main of
// the day the issue was filed and passes now.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/wirelog/wirelog/internal/testproc"
)

const (
	alphaToken = "alpha-token-0123456789"
	betaToken  = "beta-token-0123456789"
	adminToken = "operator-token-0123456789"
)

// startAuthNode starts a node with tenants alpha and beta and one operator.
func startAuthNode(t *testing.T, extra ...string) *node {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.json")
	admins := filepath.Join(dir, "admins.txt")
	os.WriteFile(tokens, []byte(`{"tokens":[{"token":"`+alphaToken+`","tenant":"alpha"},{"token":"`+betaToken+`","tenant":"beta"}]}`), 0o600)
	os.WriteFile(admins, []byte("# operators\n"+adminToken+"\n"), 0o600)
	return startNode(t, filepath.Join(dir, "data"), append([]string{"--auth-tokens", tokens, "--admin-tokens", admins}, extra...)...)
}

// do sends one request and returns the status and body.
func do(t testing.TB, method, url, auth string, hdr map[string]string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// Finding 1: anyone read every tenant, and anyone could pause the processor.
func TestIssue19TenantScopedReads(t *testing.T) {
	n := startAuthNode(t)
	nd := map[string]string{"Content-Type": "application/x-ndjson"}
	if code, body := do(t, "POST", n.URL+"/api/v1/logs", "Bearer "+alphaToken, nd, []byte(`{"service":"a-svc","message":"alpha event"}`+"\n")); code != 202 {
		t.Fatalf("alpha ingest: %d %s", code, body)
	}
	// The scheme is case-insensitive (RFC 7235).
	if code, body := do(t, "POST", n.URL+"/api/v1/logs", "bearer "+betaToken, nd, []byte(`{"service":"b-svc","message":"beta event","password":"hunter2"}`+"\n")); code != 202 {
		t.Fatalf("beta ingest with a lowercase scheme: %d %s", code, body)
	}
	eventually(t, 30*time.Second, func() error {
		code, body := do(t, "GET", n.URL+"/api/v1/stats", "Bearer "+adminToken, nil, nil)
		if code != 200 || !strings.Contains(body, `"events":2`) {
			return fmt.Errorf("admin stats %d %s", code, body)
		}
		return nil
	})

	reads := []string{"/api/v1/stats", "/api/v1/logs/search", "/api/v1/rollups", "/api/v1/tail", "/metrics"}
	for _, path := range reads {
		for _, auth := range []string{"", "Bearer wrong-token-xxxxxxxx", "Basic YWxhZGRpbjpvcGVuc2VzYW1l"} {
			if code, body := do(t, "GET", n.URL+path, auth, nil, nil); code != 401 {
				t.Errorf("GET %s with %q: %d %s, want 401", path, auth, code, body)
			}
		}
	}
	for _, path := range []string{"/api/v1/stats?tenant=beta", "/api/v1/logs/search?tenant=beta", "/api/v1/rollups?tenant=beta", "/api/v1/tail?tenant=beta"} {
		if code, body := do(t, "GET", n.URL+path, "Bearer "+alphaToken, nil, nil); code != 403 {
			t.Errorf("alpha reading %s: %d %s, want 403", path, code, body)
		}
		// The query-parameter token of EventSource is held to the same rule.
		if code, body := do(t, "GET", n.URL+path+"&access_token="+alphaToken, "", nil, nil); code != 403 {
			t.Errorf("alpha (access_token) reading %s: %d %s, want 403", path, code, body)
		}
	}
	if code, body := do(t, "GET", n.URL+"/metrics", "Bearer "+alphaToken, nil, nil); code != 403 {
		t.Errorf("tenant token on /metrics: %d %s, want 403", code, body)
	}
	if code, _ := do(t, "GET", n.URL+"/metrics", "Bearer "+adminToken, nil, nil); code != 200 {
		t.Errorf("operator token on /metrics: %d, want 200", code)
	}
	// Alpha's own reads see alpha only.
	code, body := do(t, "GET", n.URL+"/api/v1/logs/search", "Bearer "+alphaToken, nil, nil)
	if code != 200 || !strings.Contains(body, "alpha event") || strings.Contains(body, "hunter2") || strings.Contains(body, "beta event") {
		t.Errorf("alpha search: %d %s", code, body)
	}
	code, body = do(t, "GET", n.URL+"/api/v1/stats?access_token="+alphaToken, "", nil, nil)
	if code != 200 || !strings.Contains(body, `"events":1`) {
		t.Errorf("alpha stats via access_token: %d %s", code, body)
	}
	code, body = do(t, "GET", n.URL+"/api/v1/rollups?by=tenant&from=-1h", "Bearer "+alphaToken, nil, nil)
	if code != 200 || strings.Contains(body, `"beta"`) {
		t.Errorf("alpha rollups by tenant: %d %s", code, body)
	}
	// Probes and the dashboard's static shell stay open; its data does not.
	for _, path := range []string{"/healthz", "/readyz", "/", "/explore?from=-1h", "/tail", "/patterns", "/dataplane"} {
		if code, _ := do(t, "GET", n.URL+path, "", nil, nil); code != 200 {
			t.Errorf("GET %s without a token: %d, want 200", path, code)
		}
	}
	for _, path := range []string{"/api/v1/logs/histogram", "/api/v1/logs/fields", "/api/v1/logs/export", "/api/v1/patterns", "/api/v1/logs/context?topic=t&partition=0&offset=0"} {
		if code, body := do(t, "GET", n.URL+path, "", nil, nil); code != 401 {
			t.Errorf("GET %s without a token: %d %s, want 401", path, code, body)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		if code, body := do(t, "GET", n.URL+path+sep+"tenant=beta", "Bearer "+alphaToken, nil, nil); code != 403 {
			t.Errorf("alpha reading %s of beta: %d %s, want 403", path, code, body)
		}
	}
	code, body = do(t, "GET", n.URL+"/api/v1/logs/export?access_token="+url.QueryEscape(alphaToken), "", nil, nil)
	if code != 200 || !strings.Contains(body, "alpha event") || strings.Contains(body, "beta event") {
		t.Errorf("alpha export via access_token: %d %s", code, body)
	}
	// The tail of alpha carries alpha's events only.
	lines := tailLines(t, n.URL+"/api/v1/tail?access_token="+url.QueryEscape(alphaToken), func() {
		do(t, "POST", n.URL+"/api/v1/logs", "Bearer "+betaToken, nd, []byte(`{"message":"beta tail line"}`+"\n"))
		do(t, "POST", n.URL+"/api/v1/logs", "Bearer "+alphaToken, nd, []byte(`{"message":"alpha tail line"}`+"\n"))
	}, "alpha tail line")
	if strings.Contains(lines, "beta tail line") {
		t.Errorf("alpha's tail showed beta's event:\n%s", lines)
	}

	// Pause needs the operator scope, and never works as a form post.
	pause := n.URL + "/api/v1/processor/pause"
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"}
	if code, body := do(t, "POST", pause, "", form, []byte("x=1")); code != 401 && code != 403 {
		t.Errorf("pause as a cross-site form post: %d %s", code, body)
	}
	if code, body := do(t, "POST", pause, "", nil, nil); code != 401 && code != 403 {
		t.Errorf("pause without a token: %d %s", code, body)
	}
	if code, body := do(t, "POST", pause, "Bearer "+alphaToken, nil, nil); code != 403 {
		t.Errorf("pause with a tenant token: %d %s, want 403", code, body)
	}
	if code, body := do(t, "GET", n.URL+"/readyz", "", nil, nil); code != 200 {
		t.Fatalf("refused pauses paused the processor: /readyz %d %s", code, body)
	}
	if code, body := do(t, "POST", pause, "Bearer "+adminToken, nil, nil); code != 204 {
		t.Errorf("pause with an operator token: %d %s, want 204", code, body)
	}
	if code, _ := do(t, "POST", n.URL+"/api/v1/processor/resume", "Bearer "+adminToken, nil, nil); code != 204 {
		t.Errorf("resume with an operator token: %d", code)
	}
}

// tailLines opens an SSE stream, runs act, and returns what arrived until
// a line containing until (or 20 s).
func tailLines(t *testing.T, u string, act func(), until string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("tail: %d %s", resp.StatusCode, b)
	}
	act()
	var got strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		got.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), until) {
			return got.String()
		}
	}
	t.Fatalf("tail ended before %q:\n%s", until, got.String())
	return ""
}

// Without tokens the API is open, says so, and still refuses form posts.
func TestIssue19OpenModeWarnsAndRefusesFormPosts(t *testing.T) {
	n := startNode(t, t.TempDir())
	if !strings.Contains(n.Logs(), "AUTH IS OFF") {
		t.Errorf("no startup warning that the API is open:\n%s", n.Logs())
	}
	pause := n.URL + "/api/v1/processor/pause"
	for _, ct := range []string{"", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"} {
		hdr := map[string]string{"Origin": "http://evil.example"}
		if ct != "" {
			hdr["Content-Type"] = ct
		}
		if code, body := do(t, "POST", pause, "", hdr, []byte("a=b")); code != 403 {
			t.Errorf("pause as a simple request (Content-Type %q): %d %s, want 403", ct, code, body)
		}
	}
	if code, body := do(t, "POST", pause, "", map[string]string{"X-Wirelog-Request": "1"}, nil); code != 204 {
		t.Errorf("pause with the custom header: %d %s, want 204", code, body)
	}
	do(t, "POST", n.URL+"/api/v1/processor/resume", "", map[string]string{"Content-Type": "application/json"}, []byte("{}"))

	// Minor: with auth off a "tenant" field does not pick the tenant
	// (docs/openapi.yaml); it stays an attribute.
	nd := map[string]string{"Content-Type": "application/x-ndjson"}
	if code, body := do(t, "POST", n.URL+"/api/v1/logs", "", nd, []byte(`{"tenant":"chosen","message":"tenant field"}`+"\n")); code != 202 {
		t.Fatalf("post: %d %s", code, body)
	}
	var res searchResult
	eventually(t, 30*time.Second, func() error {
		if code := n.getJSON("/api/v1/logs/search?q=tenant+field", &res); code != 200 || len(res.Events) != 1 {
			return fmt.Errorf("search %d %d events", code, len(res.Events))
		}
		return nil
	})
	if res.Events[0].Attrs["tenant"] != "chosen" {
		t.Errorf("the tenant field is not kept as an attribute: %+v", res.Events[0])
	}
	if code := n.getJSON("/api/v1/logs/search?tenant=chosen", &res); code != 200 || len(res.Events) != 0 {
		t.Errorf("a body's tenant field picked the tenant: %d %+v", code, res.Events)
	}
	// Minor: a raw NUL inside a JSON string is invalid JSON.
	code, resp, _ := n.post("application/x-ndjson", "", []byte("{\"message\":\"a\x00b\"}\n"))
	if code != 400 || !strings.Contains(fmt.Sprint(resp["errors"]), "control character") {
		t.Errorf("raw NUL: %d %v, want 400 naming the control character", code, resp)
	}
	// Minor: from=0001-01-01 is a bound, not "from is required".
	if code, body := do(t, "GET", n.URL+"/api/v1/rollups?from=0001-01-01T00:00:00Z&step=7d", "", nil, nil); code != 200 {
		t.Errorf("rollups from=0001-01-01: %d %s", code, body)
	}
	// Minor: 10,000 s at step=1s is 10,000 buckets, within the limit.
	if code, body := do(t, "GET", n.URL+"/api/v1/rollups?from=-10000s&step=1s", "", nil, nil); code != 200 {
		t.Errorf("rollups over 10,000 s at step=1s: %d %s", code, body)
	}
}

// otlpRequest encodes an ExportLogsServiceRequest with one ResourceLogs
// and one ScopeLogs holding the given LogRecords (already encoded).
func otlpRequest(records ...[]byte) []byte {
	var sl []byte
	for _, r := range records {
		sl = protowire.AppendTag(sl, 2, protowire.BytesType)
		sl = protowire.AppendBytes(sl, r)
	}
	var rl []byte
	rl = protowire.AppendTag(rl, 2, protowire.BytesType)
	rl = protowire.AppendBytes(rl, sl)
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	return protowire.AppendBytes(req, rl)
}

// logRecord encodes a LogRecord with a string body and n attributes
// KeyValue{key:"k"} (no value), as the issue's reproduction does.
func logRecord(body string, n int) []byte {
	var lr []byte
	lr = protowire.AppendTag(lr, 5, protowire.BytesType)
	var any []byte
	any = protowire.AppendTag(any, 1, protowire.BytesType)
	any = protowire.AppendString(any, body)
	lr = protowire.AppendBytes(lr, any)
	kv := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "k")
	for i := 0; i < n; i++ {
		lr = protowire.AppendTag(lr, 6, protowire.BytesType)
		lr = protowire.AppendBytes(lr, kv)
	}
	return lr
}

func postOTLP(t *testing.T, n *node, body []byte, gz bool) (int, string) {
	t.Helper()
	hdr := map[string]string{"Content-Type": "application/x-protobuf"}
	if gz {
		body = gzipBytes(body)
		hdr["Content-Encoding"] = "gzip"
	}
	return do(t, "POST", n.URL+"/v1/logs", "", hdr, body)
}

// Finding 2: one 7 KB OTLP request stopped the processor for good.
func TestIssue19MillionAttributeRecord(t *testing.T) {
	n := startNode(t, t.TempDir())
	poison := otlpRequest(logRecord("poison", 1_000_000))
	code, body := postOTLP(t, n, poison, true)
	if code != 413 || !strings.Contains(body, "--max-attributes") {
		t.Fatalf("1M-attribute record: %d %q, want 413 naming --max-attributes", code, body)
	}
	// With a good record beside it, OTLP partial success names the limit.
	code, body = postOTLP(t, n, otlpRequest(logRecord("poison", 1_000_000), logRecord("good after poison", 3)), true)
	if code != 200 || !strings.Contains(body, "--max-attributes") {
		t.Fatalf("mixed request: %d %q, want 200 with a partial success naming --max-attributes", code, body)
	}
	code, resp, _ := n.post("application/x-ndjson", "", []byte(`{"message":"ndjson after poison"}`+"\n"))
	if code != 202 {
		t.Fatalf("ndjson after: %d %v", code, resp)
	}
	eventually(t, 15*time.Second, func() error {
		var res searchResult
		n.getJSON("/api/v1/logs/search?q=after+poison", &res)
		if len(res.Events) != 2 {
			return fmt.Errorf("%d of 2 records after the poison are queryable", len(res.Events))
		}
		return nil
	})
	if code, body := do(t, "GET", n.URL+"/readyz", "", nil, nil); code != 200 {
		t.Errorf("/readyz %d %s", code, body)
	}
}

// Finding 2, second half: a record that passes ingest but that the store
// refuses no longer stops the processor. The limits are raised so the
// 1M-attribute record reaches DuckDB, whose memory is kept small.
func TestIssue19PoisonRecordIsDeadLettered(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "--max-attributes", "2000000", "--max-line-bytes", "33554431", "--ingest-memory-budget", "1073741824", "--store-memory", "16MB", "--max-write-tries", "2")
	code, body := postOTLP(t, n, otlpRequest(logRecord("poison", 1_000_000)), true)
	if code != 200 {
		t.Fatalf("poison with raised limits: %d %s", code, body)
	}
	code, resp, _ := n.post("application/x-ndjson", "", []byte(`{"message":"stored after the poison"}`+"\n"))
	if code != 202 {
		t.Fatalf("post after: %d %v", code, resp)
	}
	eventually(t, 60*time.Second, func() error {
		var res searchResult
		if c := n.getJSON("/api/v1/logs/search?q=stored+after", &res); c != 200 || len(res.Events) != 1 {
			return fmt.Errorf("search %d, %d events", c, len(res.Events))
		}
		return nil
	})
	if code, body := do(t, "GET", n.URL+"/readyz", "", nil, nil); code != 200 {
		t.Errorf("/readyz after the dead letter: %d %s", code, body)
	}
	dead := metricValue(t, n, "wirelog_processor_dead_letters_total")
	if dead != 1 {
		t.Errorf("wirelog_processor_dead_letters_total %v, want 1", dead)
	}
	if err := n.Term(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	st := readDeadLetters(t, dir)
	t.Logf("dead_letters: %d, reason %.200q", st.count, st.reason)
	if st.count != 1 || st.reason == "" {
		t.Errorf("dead_letters table: %+v, want the poison record with its reason", st)
	}
	if s := testprocReadStore(t, dir); s != 1 {
		t.Errorf("%d events stored, want the 1 after the poison", s)
	}
}

func metricValue(t *testing.T, n *node, name string) float64 {
	t.Helper()
	_, body := do(t, "GET", n.URL+"/metrics", "", nil, nil)
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, name+" ") {
			v, _ := strconv.ParseFloat(strings.TrimPrefix(l, name+" "), 64)
			return v
		}
	}
	return 0
}

// Finding 3: tiny requests, gigabytes of memory. Each is refused with 413
// before it is materialised, and peak RSS stays under 512 MB.
func TestIssue19TinyButHugeRequests(t *testing.T) {
	n := startNode(t, t.TempDir())
	empty := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), nil)
	many := func(k int) []byte {
		sl := bytes.Repeat(empty, k)
		var rl []byte
		rl = protowire.AppendTag(rl, 2, protowire.BytesType)
		rl = protowire.AppendBytes(rl, sl)
		req := protowire.AppendTag(nil, 1, protowire.BytesType)
		return protowire.AppendBytes(req, rl)
	}
	code, body := postOTLP(t, n, many(8_000_000), true)
	if code != 413 || !strings.Contains(body, "--max-decompression-ratio") {
		t.Errorf("8M empty records, gzip: %d %q, want 413 naming --max-decompression-ratio", code, body)
	}
	code, body = postOTLP(t, n, many(8_000_000), false)
	if code != 413 || !strings.Contains(body, "--max-records") {
		t.Errorf("8M empty records, identity: %d %q, want 413 naming --max-records", code, body)
	}
	one := gzipBytes(many(1_000_000))
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			codes[i], _ = do(t, "POST", n.URL+"/v1/logs", "", map[string]string{"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}, one)
		}(i)
	}
	wg.Wait()
	for i, c := range codes {
		if c != 413 {
			t.Errorf("concurrent 1M-empty-records request %d: %d, want 413", i, c)
		}
	}
	curly := gzipBytes(bytes.Repeat([]byte("{}\n"), 5_000_000))
	code, resp, _ := n.post("application/x-ndjson", "gzip", curly)
	if code != 413 {
		t.Errorf("%d KB gzip of {} lines: %d %v, want 413", len(curly)>>10, code, resp)
	}
	hwm := peakRSS(t, n.Pid())
	t.Logf("peak RSS after the tiny-but-huge requests: %d MB", hwm>>20)
	if hwm > 512<<20 {
		t.Errorf("peak RSS %d MB, over 512 MB", hwm>>20)
	}
}

// peakRSS is VmHWM of a process, in bytes.
func peakRSS(t testing.TB, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// Finding 4: a valid body under the body limit was answered 503 for ever.
// Now it is refused with a status a client does not retry, and a body at
// the documented record limit is stored.
func TestIssue19BodyWithinLimitsIsNotRetryable(t *testing.T) {
	n := startNode(t, t.TempDir())
	line := []byte(`{"msg":"a"}` + "\n")
	big := bytes.Repeat(line, 1_398_091)
	if len(big) > 16<<20 {
		t.Fatalf("body %d is over the body limit", len(big))
	}
	code, resp, hdr := n.post("application/x-ndjson", "", big)
	if code != 413 || !strings.Contains(fmt.Sprint(resp["message"]), "--max-records") || hdr.Get("Retry-After") != "" {
		t.Errorf("1,398,091 lines: %d %v (Retry-After %q), want 413 naming --max-records without Retry-After", code, resp["message"], hdr.Get("Retry-After"))
	}
	code, resp, _ = n.post("application/x-ndjson", "", bytes.Repeat(line, 100_000))
	if code != 202 || resp["accepted"].(float64) != 100_000 {
		t.Fatalf("100,000 lines (the documented limit): %d %v", code, resp["message"])
	}
	code, body := postOTLP(t, n, otlpRequest(logRecord("x", 0)), false)
	if code != 200 {
		t.Errorf("small OTLP: %d %s", code, body)
	}
	eventually(t, 60*time.Second, func() error {
		if v := statsEvents(n); v != 100_001 {
			return fmt.Errorf("%v events stored, want 100001", v)
		}
		return nil
	})
}

// Finding 5: 300 stalled bodies from one client took every ingest slot,
// and the tail's slots could be taken by anyone.
func TestIssue19StalledBodiesDoNotBlockOthers(t *testing.T) {
	n := startNode(t, t.TempDir(), "--min-body-rate", "1024")
	host := strings.TrimPrefix(n.URL, "http://")
	attacker := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 300; i++ {
		c, err := attacker.Dial("tcp", host)
		if err != nil {
			t.Fatalf("stalled connection %d: %v", i, err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "POST /api/v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n{\"message\":\"par")
	}
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	code, resp, _ := n.post("application/x-ndjson", "", []byte(`{"message":"another client"}`+"\n"))
	if code != 202 {
		t.Fatalf("another client's ingest while 300 bodies stall: %d %v", code, resp)
	}
	t.Logf("another client answered in %v while 300 bodies stalled", time.Since(start).Round(time.Millisecond))
	// The stalled bodies are answered 408 once the grace and rate allow.
	c := conns[0]
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	status, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !(strings.Contains(status, " 408 ") || strings.Contains(status, " 429 ")) {
		t.Errorf("a stalled body: %q %v, want 408 (or 429 when it had no slot)", status, err)
	}

	// Tail slots: one address gets a few; another still gets one.
	var tails []net.Conn
	defer func() {
		for _, c := range tails {
			c.Close()
		}
	}()
	refused := 0
	for i := 0; i < 64; i++ {
		c, err := attacker.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		tails = append(tails, c)
		fmt.Fprintf(c, "GET /api/v1/tail HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		status, _ := bufio.NewReader(c).ReadString('\n')
		if strings.Contains(status, " 503 ") {
			refused++
		}
	}
	if refused == 0 {
		t.Errorf("one address opened 64 tail streams")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", n.URL+"/api/v1/tail", nil)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Errorf("another client's tail: %d, want 200", r.StatusCode)
	}
}

// Finding 6: OTLP ignored --max-line-bytes.
func TestIssue19OTLPHonoursMaxLineBytes(t *testing.T) {
	n := startNode(t, t.TempDir())
	huge := strings.Repeat("x", 2<<20)
	code, body := postOTLP(t, n, otlpRequest(logRecord(huge, 0)), false)
	if code != 413 || !strings.Contains(body, "--max-line-bytes") {
		t.Errorf("2 MB OTLP body: %d %.200q, want 413 naming --max-line-bytes", code, body)
	}
	// OTLP/JSON takes the same limit, on the encoded record.
	js, _ := json.Marshal(map[string]any{"resourceLogs": []any{map[string]any{"scopeLogs": []any{map[string]any{"logRecords": []any{
		map[string]any{"body": map[string]any{"stringValue": huge}},
		map[string]any{"body": map[string]any{"stringValue": "small"}},
	}}}}}})
	code, b := do(t, "POST", n.URL+"/v1/logs", "", map[string]string{"Content-Type": "application/json"}, js)
	if code != 200 || !strings.Contains(b, "--max-line-bytes") || !strings.Contains(b, `"rejectedLogRecords":"1"`) {
		t.Errorf("OTLP/JSON with one huge record: %d %.300s, want a partial success rejecting 1 naming --max-line-bytes", code, b)
	}
}

type deadLetterRows struct {
	count  int64
	reason string
}

// readDeadLetters reads the dead_letters table of a stopped node.
func readDeadLetters(t *testing.T, dataDir string) deadLetterRows {
	t.Helper()
	db, err := sql.Open("duckdb", filepath.Join(dataDir, "wirelog.duckdb")+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var d deadLetterRows
	if err := db.QueryRow(`SELECT count(*), coalesce(min(reason), '') FROM dead_letters`).Scan(&d.count, &d.reason); err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return d
		}
		t.Fatal(err)
	}
	return d
}

func testprocReadStore(t *testing.T, dir string) int64 { return testproc.ReadStore(t, dir).Rows }
