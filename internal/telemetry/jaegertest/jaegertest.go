// Package jaegertest runs a real Jaeger all-in-one (v2: OTLP receiver,
// in-memory storage, query API) on loopback for tests, and reads traces
// back through its query API. The binary is built once by
// scripts/deps/60-jaeger.sh from tools/jaeger (its own Go module) into
// $WIRELOG_CACHE/jaeger-<version>/jaeger.
package jaegertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/freeport"
)

// Binary is the cached Jaeger binary, failing the test with the command
// that builds it when it is missing.
func Binary(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	mod, err := os.ReadFile(filepath.Join(root, "tools", "jaeger", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var version string
	sc := bufio.NewScanner(bytes.NewReader(mod))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "github.com/jaegertracing/jaeger" {
			version = f[1]
		}
	}
	cache := os.Getenv("WIRELOG_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "wirelog")
	}
	bin := filepath.Join(cache, "jaeger-"+version, "jaeger")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("Jaeger %s is not built: run scripts/deps/60-jaeger.sh (%v)", version, err)
	}
	return bin
}

// Jaeger is a running all-in-one.
type Jaeger struct {
	OTLP  string // OTLP/HTTP base URL, for --otlp-traces
	Query string // query API and UI base URL
	cmd   *exec.Cmd
	done  chan struct{}
	log   string
}

// Start runs Jaeger with every listener on a free loopback port and waits
// until its query API answers; the test's end stops it by PID.
func Start(t testing.TB) *Jaeger {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	otlp, query, qgrpc, health := freeport.Port(t), freeport.Port(t), freeport.Port(t), freeport.Port(t)
	cfg := fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: mem
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 100000
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:%d
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`, query, qgrpc, health, otlp)
	path := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	j := &Jaeger{OTLP: "http://127.0.0.1:" + strconv.Itoa(otlp), Query: "http://127.0.0.1:" + strconv.Itoa(query),
		done: make(chan struct{}), log: filepath.Join(dir, "jaeger.log")}
	logf, err := os.Create(j.log)
	if err != nil {
		t.Fatal(err)
	}
	j.cmd = exec.Command(bin, "--config", path)
	j.cmd.Stdout, j.cmd.Stderr = logf, logf
	j.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := j.cmd.Start(); err != nil {
		t.Fatalf("start jaeger: %v", err)
	}
	go func() { j.cmd.Wait(); logf.Close(); close(j.done) }()
	t.Cleanup(j.Stop)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(j.Query + "/api/services")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				// The receiver starts with the query API; check it too.
				if c, err := net.DialTimeout("tcp", strings.TrimPrefix(j.OTLP, "http://"), time.Second); err == nil {
					c.Close()
					return j
				}
			}
		}
		select {
		case <-j.done:
			t.Fatalf("jaeger exited: %s", j.Logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("jaeger not answering after 60s: %v\n%s", err, j.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Logs is what Jaeger wrote so far.
func (j *Jaeger) Logs() string {
	b, _ := os.ReadFile(j.log)
	return string(b)
}

// Stop ends Jaeger with SIGTERM (SIGKILL after 10s).
func (j *Jaeger) Stop() {
	select {
	case <-j.done:
		return
	default:
	}
	j.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-j.done:
	case <-time.After(10 * time.Second):
		j.cmd.Process.Kill()
		<-j.done
	}
}

// Span is a span as Jaeger's query API (/api/traces) shows it.
type Span struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	ProcessID string `json:"processID"`
	Service   string `json:"-"` // from the trace's processes
}

// Tag returns the value of tag key as a string ("" when absent).
func (s Span) Tag(key string) string {
	for _, t := range s.Tags {
		if t.Key == key {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// ChildOf reports whether s's parent is spanID.
func (s Span) ChildOf(spanID string) bool {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" && r.SpanID == spanID {
			return true
		}
	}
	return false
}

// LinksTo reports whether s has a link (FOLLOWS_FROM) to spanID of traceID.
func (s Span) LinksTo(traceID, spanID string) bool {
	for _, r := range s.References {
		if r.RefType == "FOLLOWS_FROM" && r.TraceID == traceID && r.SpanID == spanID {
			return true
		}
	}
	return false
}

type tracesResponse struct {
	Data []struct {
		TraceID   string `json:"traceID"`
		Spans     []Span `json:"spans"`
		Processes map[string]struct {
			ServiceName string `json:"serviceName"`
		} `json:"processes"`
	} `json:"data"`
	Errors []struct {
		Msg string `json:"msg"`
	} `json:"errors"`
}

func (j *Jaeger) spans(path string) ([]Span, error) {
	resp, err := http.Get(j.Query + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r tracesResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("GET %s: %d: %w", path, resp.StatusCode, err)
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %d %v", path, resp.StatusCode, r.Errors)
	}
	var out []Span
	for _, tr := range r.Data {
		for _, s := range tr.Spans {
			s.Service = tr.Processes[s.ProcessID].ServiceName
			out = append(out, s)
		}
	}
	return out, nil
}

// Trace returns the spans of one trace (an error while Jaeger has none).
func (j *Jaeger) Trace(traceID string) ([]Span, error) {
	return j.spans("/api/traces/" + traceID)
}

// Find returns the spans of the traces of service with an operation
// (the newest limit traces of the last hour).
func (j *Jaeger) Find(service, operation string, limit int) ([]Span, error) {
	q := url.Values{"service": {service}, "operation": {operation}, "lookback": {"1h"}, "limit": {strconv.Itoa(limit)}}
	return j.spans("/api/traces?" + q.Encode())
}
