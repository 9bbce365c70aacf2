package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// searchRun returns the stored events whose message contains q.
func searchRun(n *node, q string) searchResult {
	var res searchResult
	n.getJSON("/api/v1/logs/search?"+url.Values{"q": {q}, "from": {"2000-01-01T00:00:00Z"}, "limit": {"10000"}}.Encode(), &res)
	return res
}

// TestShipperRsyslogElasticsearch points Debian's rsyslog omelasticsearch
// (bulkmode on, an errorfile) at `wirelog run` as if it were Elasticsearch:
// lines sent to a private rsyslogd with logger(1) are all stored once, with
// the syslog host and program mapped to host and service through the ECS
// fields of the template, and rsyslog records no failed item.
func TestShipperRsyslogElasticsearch(t *testing.T) {
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		t.Fatalf("rsyslogd is needed (scripts/deps/60-shippers.sh): %v", err)
	}
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/rsyslog/omelasticsearch.so"); err != nil {
		t.Fatalf("omelasticsearch is needed (Debian rsyslog-elasticsearch; scripts/deps/60-shippers.sh): %v", err)
	}
	n := startNode(t, t.TempDir())
	u, _ := url.Parse(n.URL)
	host, port, _ := net.SplitHostPort(u.Host)

	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	inPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	errFile := filepath.Join(dir, "es-errors.json")
	// The ECS template: what a team shipping syslog to Elasticsearch writes,
	// nested objects and all.
	conf := fmt.Sprintf(`global(workDirectory=%q)
module(load="imptcp" threads="1")
module(load="omelasticsearch")
input(type="imptcp" address="127.0.0.1" port="%d" ruleset="toES")
template(name="ecs" type="string" string="{\"@timestamp\":\"%%timereported:::date-rfc3339%%\",\"host\":{\"name\":\"%%hostname:::json%%\"},\"service\":{\"name\":\"%%programname:::json%%\"},\"log\":{\"level\":\"%%syslogseverity-text%%\",\"syslog\":{\"facility\":{\"name\":\"%%syslogfacility-text%%\"}}},\"message\":\"%%msg:::json%%\"}")
ruleset(name="toES") {
  action(type="omelasticsearch" server=%q serverport="%s" template="ecs" searchIndex="syslog"
         bulkmode="on" maxbytes="1m" errorfile=%q
         queue.type="linkedlist" queue.dequeueBatchSize="64"
         action.resumeRetryCount="-1" action.resumeInterval="1")
}
`, dir, inPort, host, port, errFile)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslogd.pid"))
	out, _ := os.Create(filepath.Join(dir, "rsyslogd.out"))
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(pid, syscall.SIGKILL)
			<-done
		}
	})
	eventually(t, 20*time.Second, func() error {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", inPort))
		if err != nil {
			return fmt.Errorf("rsyslogd not listening yet: %v", err)
		}
		c.Close()
		return nil
	})

	run := fmt.Sprintf("rsy%d", time.Now().UnixNano())
	const lines = 300
	var buf strings.Builder
	for i := 0; i < lines; i++ {
		fmt.Fprintf(&buf, "%s line %d with \"quotes\" and \\ backslash\n", run, i)
	}
	src := filepath.Join(dir, "lines.txt")
	os.WriteFile(src, []byte(buf.String()), 0o644)
	lg := exec.Command("logger", "-n", "127.0.0.1", "-P", strconv.Itoa(inPort), "-T", "--rfc5424", "-t", "billing-worker", "-p", "local3.warning", "-f", src)
	if b, err := lg.CombinedOutput(); err != nil {
		t.Fatalf("logger: %v\n%s", err, b)
	}
	hostname, _ := os.Hostname()
	eventually(t, 60*time.Second, func() error {
		res := searchRun(n, run+" line")
		if len(res.Events) != lines {
			return fmt.Errorf("stored %d of %d lines", len(res.Events), lines)
		}
		return nil
	})
	res := searchRun(n, run+" line")
	seen := map[string]bool{}
	for _, e := range res.Events {
		if e.Service != "billing-worker" || e.Level != "warn" || e.Host == "" || (hostname != "" && !strings.EqualFold(e.Host, hostname) && !strings.HasPrefix(hostname, e.Host)) {
			t.Fatalf("program/host/level not mapped: %+v (hostname %q)", e, hostname)
		}
		if e.Attrs["log.syslog.facility.name"] != "local3" {
			t.Fatalf("nested ECS field not kept as a dotted attribute: %+v", e.Attrs)
		}
		if !strings.HasSuffix(e.Message, ` with "quotes" and \ backslash`) {
			t.Fatalf("message altered: %q", e.Message)
		}
		seen[e.Message] = true
	}
	if len(seen) != lines {
		t.Fatalf("%d distinct lines stored, want %d (duplicates)", len(seen), lines)
	}
	if fi, err := os.Stat(errFile); err == nil && fi.Size() > 0 {
		b, _ := os.ReadFile(errFile)
		t.Fatalf("rsyslog wrote failed items to its errorfile:\n%.2000s", b)
	}
	var m string
	if resp, err := httpGetText(n.URL + "/metrics"); err == nil {
		m = resp
	}
	if !strings.Contains(m, `wirelog_ingest_api_requests_total{api="elasticsearch",code="200"}`) {
		t.Fatalf("bulk requests not counted in /metrics")
	}
}

// TestShipperPythonClients runs published Python clients (pinned in
// testdata/shippers/requirements.txt, in a venv under $WIRELOG_CACHE)
// against `wirelog run`: the official Elasticsearch client's info, ping and
// helpers.bulk (plain and gzip) with bad documents and unsupported actions
// mixed with good ones; python-logging-loki (Loki JSON); and a Loki
// protobuf+snappy push with structured metadata, plus one with a bad
// stream beside a good one.
func TestShipperPythonClients(t *testing.T) {
	py := shippersVenv(t)
	n := startNode(t, t.TempDir())
	run := fmt.Sprintf("py%d", time.Now().UnixNano())
	cmd := exec.Command(py, "testdata/shippers/clients.py", n.URL, run)
	cmd.Stderr = os.Stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("clients.py: %v\n%s", err, outb)
	}
	var out struct {
		ESVersion string `json:"es_version"`
		ESPing    bool   `json:"es_ping"`
		ESPlain   struct {
			OK     int `json:"ok"`
			Errors []struct {
				Op     string `json:"op"`
				Status int    `json:"status"`
			} `json:"errors"`
		} `json:"es_plain"`
		ESGzip struct {
			OK     int        `json:"ok"`
			Errors []struct{} `json:"errors"`
		} `json:"es_gzip"`
		LokiJSON struct {
			Failures []string `json:"failures"`
		} `json:"loki_json"`
		LokiProto []any `json:"loki_proto"`
		LokiMixed []any `json:"loki_mixed"`
	}
	if err := json.Unmarshal(outb, &out); err != nil {
		t.Fatalf("clients.py printed %q: %v", outb, err)
	}
	if out.ESVersion != "8.19.0" || !out.ESPing {
		t.Fatalf("handshake: version %q, ping %v", out.ESVersion, out.ESPing)
	}
	// 50 good documents; 5 bad dates + 1 delete + 1 update answered per item.
	if out.ESPlain.OK != 50 || len(out.ESPlain.Errors) != 7 || out.ESGzip.OK != 50 || len(out.ESGzip.Errors) != 7 {
		t.Fatalf("bulk results: %s", outb)
	}
	ops := map[string]int{}
	for _, e := range out.ESPlain.Errors {
		if e.Status != 400 {
			t.Fatalf("per-item error status %d, want 400: %s", e.Status, outb)
		}
		ops[e.Op]++
	}
	if ops["index"] != 5 || ops["delete"] != 1 || ops["update"] != 1 {
		t.Fatalf("per-item errors by action %v", ops)
	}
	if len(out.LokiJSON.Failures) != 0 {
		t.Fatalf("python-logging-loki failed: %v", out.LokiJSON.Failures)
	}
	if len(out.LokiProto) != 2 || out.LokiProto[0] != float64(204) {
		t.Fatalf("protobuf push answered %v, want 204", out.LokiProto)
	}
	if len(out.LokiMixed) != 2 || out.LokiMixed[0] != float64(400) || !strings.Contains(fmt.Sprint(out.LokiMixed[1]), "error parsing labels") {
		t.Fatalf("mixed push answered %v, want 400 naming the bad labels", out.LokiMixed)
	}

	checks := []struct {
		q      string
		want   int
		verify func(e searchEvent) bool
	}{
		{run + " plain good", 50, func(e searchEvent) bool {
			return e.Service == "py-es" && e.Host == "py-host" && e.Level == "error" && e.Time.Year() == 2026 && e.Time.Month() == 5
		}},
		{run + " gzip good", 50, func(e searchEvent) bool { return e.Service == "py-es" }},
		{run + " plain bad", 0, nil},
		{run + " loki-json", 20, func(e searchEvent) bool {
			return e.Service == "py-loki" && e.Host == "loki-host" && e.Level == "warn" && strings.HasPrefix(fmt.Sprint(e.Attrs["request_id"]), "r")
		}},
		{run + " loki-proto", 30, func(e searchEvent) bool {
			return e.Service == "py-proto" && e.Host == "proto-host" && e.Level == "info" && len(e.TraceID) == 32 &&
				e.Attrs["env"] == "test" && strings.HasPrefix(fmt.Sprint(e.Attrs["pod"]), "pod-")
		}},
		{run + " loki-mixed", 5, func(e searchEvent) bool { return e.Service == "py-proto-mixed" }},
	}
	for _, c := range checks {
		eventually(t, 30*time.Second, func() error {
			res := searchRun(n, c.q)
			if len(res.Events) != c.want {
				return fmt.Errorf("%q: %d stored, want %d", c.q, len(res.Events), c.want)
			}
			for _, e := range res.Events {
				if !c.verify(e) {
					return fmt.Errorf("%q: stored %+v", c.q, e)
				}
			}
			return nil
		})
	}
}

type searchEvent = struct {
	Time    time.Time      `json:"ts"`
	Service string         `json:"service"`
	Level   string         `json:"level"`
	Message string         `json:"message"`
	Host    string         `json:"host"`
	TraceID string         `json:"trace_id"`
	SpanID  string         `json:"span_id"`
	Attrs   map[string]any `json:"attrs"`
}

// shippersVenv returns the python of the venv with the pinned clients,
// creating it under $WIRELOG_CACHE when scripts/deps/60-shippers.sh has not.
func shippersVenv(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("WIRELOG_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "wirelog")
	}
	venv := filepath.Join(cache, "shippers-venv")
	py := filepath.Join(venv, "bin", "python")
	reqs, err := os.ReadFile("testdata/shippers/requirements.txt")
	if err != nil {
		t.Fatal(err)
	}
	stamp := filepath.Join(venv, ".wirelog-requirements")
	if have, err := os.ReadFile(stamp); err == nil && string(have) == string(reqs) {
		return py
	}
	t.Logf("creating %s with %s (PyPI)", venv, "testdata/shippers/requirements.txt")
	os.RemoveAll(venv)
	for _, args := range [][]string{
		{"python3", "-m", "venv", venv},
		{filepath.Join(venv, "bin", "pip"), "install", "-q", "--disable-pip-version-check", "-r", "testdata/shippers/requirements.txt"},
	} {
		if b, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s (scripts/deps/60-shippers.sh installs python3-venv)", args, err, b)
		}
	}
	if err := os.WriteFile(stamp, reqs, 0o644); err != nil {
		t.Fatal(err)
	}
	return py
}

func httpGetText(u string) (string, error) {
	resp, err := http.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestShipperBackpressure fills the log's backlog bound with the processor
// paused through the bulk API, then checks what the published clients see:
// the Elasticsearch client raises a 429 es_rejected_execution_exception (so
// shippers back off and retry), a Loki push gets 429 with Loki's text and
// Retry-After; after resume every acknowledged document is stored.
func TestShipperBackpressure(t *testing.T) {
	py := shippersVenv(t)
	n := startNode(t, t.TempDir(), "--max-backlog-bytes", strconv.Itoa(8<<20))
	if resp, err := http.Post(n.URL+"/api/v1/processor/pause", "application/json", nil); err != nil || resp.StatusCode != 204 {
		t.Fatalf("pause: %v %v", resp, err)
	}
	var body strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&body, "{\"create\":{}}\n{\"message\":\"pressure %d %s\",\"service\":{\"name\":\"bp\"}}\n", i, strings.Repeat("p", 150))
	}
	accepted, pushed := 0, false
	for i := 0; i < 400 && !pushed; i++ { // ≥ 60 MB offered against an 8 MiB bound
		resp, err := http.Post(n.URL+"/_bulk", "application/x-ndjson", strings.NewReader(body.String()))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case 200:
			var r struct {
				Errors bool
				Items  []map[string]struct{ Status int }
			}
			if err := json.Unmarshal(b, &r); err != nil || r.Errors || len(r.Items) != 1000 {
				t.Fatalf("bulk answer %v: %.300s", err, b)
			}
			accepted += len(r.Items)
		case 429:
			pushed = true
			var e struct {
				Error  struct{ Type string }
				Status int
			}
			if json.Unmarshal(b, &e) != nil || e.Error.Type != "es_rejected_execution_exception" || e.Status != 429 || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("429 not in Elasticsearch's shape: %v %s", resp.Header, b)
			}
		default:
			t.Fatalf("unexpected %d: %.300s", resp.StatusCode, b)
		}
	}
	if !pushed {
		t.Fatalf("no 429 after %d accepted documents over an 8 MiB bound", accepted)
	}
	cmd := exec.Command(py, "testdata/shippers/pressure.py", n.URL)
	cmd.Stderr = os.Stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("pressure.py: %v", err)
	}
	var out struct {
		ES struct {
			Status     int    `json:"status"`
			Type       string `json:"type"`
			RetryAfter string `json:"retry_after"`
		} `json:"es"`
		Loki struct {
			Status     int    `json:"status"`
			Text       string `json:"text"`
			RetryAfter string `json:"retry_after"`
		} `json:"loki"`
	}
	if err := json.Unmarshal(outb, &out); err != nil {
		t.Fatalf("pressure.py printed %q: %v", outb, err)
	}
	if out.ES.Status != 429 || out.ES.Type != "es_rejected_execution_exception" || out.ES.RetryAfter == "" {
		t.Errorf("the Elasticsearch client saw %+v, want 429 es_rejected_execution_exception with Retry-After", out.ES)
	}
	if out.Loki.Status != 429 || !strings.HasPrefix(out.Loki.Text, "Ingestion rate limit exceeded") || out.Loki.RetryAfter == "" {
		t.Errorf("the Loki push saw %+v, want 429 'Ingestion rate limit exceeded' with Retry-After", out.Loki)
	}
	if resp, err := http.Post(n.URL+"/api/v1/processor/resume", "application/json", nil); err != nil || resp.StatusCode != 204 {
		t.Fatalf("resume: %v %v", resp, err)
	}
	eventually(t, 60*time.Second, func() error {
		if got := statsEvents(n); got != float64(accepted) {
			return fmt.Errorf("stored %v, acknowledged %d", got, accepted)
		}
		return nil
	})
}

// TestShipperAuth runs wirelog with --auth-tokens and the published
// clients with the credentials shippers can send: HTTP Basic (the token as
// password) and an Elasticsearch API key, a template install (as Filebeat
// makes at startup) and a Loki push with Basic auth. Every event is stored
// under the token's tenant; a wrong password is a 401.
func TestShipperAuth(t *testing.T) {
	py := shippersVenv(t)
	dir := t.TempDir()
	const tok = "shipper-secret-1"
	tokens := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(tokens, []byte(`{"tokens":[{"token":"`+tok+`","tenant":"acme"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, filepath.Join(dir, "data"), "--auth-tokens", tokens)
	run := fmt.Sprintf("auth%d", time.Now().UnixNano())
	cmd := exec.Command(py, "testdata/shippers/auth.py", n.URL, tok, run)
	cmd.Stderr = os.Stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("auth.py: %v", err)
	}
	var out struct {
		Version      string          `json:"basic_version"`
		BasicBulk    int             `json:"basic_bulk"`
		Template     map[string]bool `json:"template"`
		APIKeyBulk   int             `json:"apikey_bulk"`
		Wrong        int             `json:"wrong"`
		LokiFailures []string        `json:"loki_failures"`
	}
	if err := json.Unmarshal(outb, &out); err != nil {
		t.Fatalf("auth.py printed %q: %v", outb, err)
	}
	if out.Version != "8.19.0" || out.BasicBulk != 10 || !out.Template["acknowledged"] || out.APIKeyBulk != 10 || out.Wrong != 401 || len(out.LokiFailures) != 0 {
		t.Fatalf("clients with credentials: %s", outb)
	}
	// Stored under the token's tenant: read back with the same token.
	eventually(t, 30*time.Second, func() error {
		req, _ := http.NewRequest(http.MethodGet, n.URL+"/api/v1/logs/search?"+url.Values{"q": {run}, "from": {"-1h"}, "limit": {"100"}}.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var res struct {
			Events []struct {
				Tenant string `json:"tenant"`
			} `json:"events"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			return fmt.Errorf("search: %d %v", resp.StatusCode, err)
		}
		if len(res.Events) != 25 {
			return fmt.Errorf("stored %d of 25 events", len(res.Events))
		}
		for _, e := range res.Events {
			if e.Tenant != "acme" {
				return fmt.Errorf("event stored under tenant %q, want the token's (acme)", e.Tenant)
			}
		}
		return nil
	})
}
