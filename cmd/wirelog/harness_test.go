package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// wirelogBin is the binary under test, built once by TestMain.
var wirelogBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wirelog-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wirelogBin = filepath.Join(dir, "wirelog")
	build := exec.Command("go", "build", "-o", wirelogBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build wirelog:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// node is a running `wirelog run` process.
type node struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	data string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
	err  error
}

var addrRE = regexp.MustCompile(`http=http://([0-9.:]+)`)

// startNode starts `wirelog run` on a random loopback port with data in
// dataDir and waits until it is ready. Extra flags go after the defaults.
func startNode(t *testing.T, dataDir string, extra ...string) *node {
	t.Helper()
	args := append([]string{"run", "--http", "127.0.0.1:0", "--data", dataDir, "--syslog-udp", "", "--syslog-tcp", ""}, extra...)
	n := &node{t: t, cmd: exec.Command(wirelogBin, args...), data: dataDir, done: make(chan struct{})}
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start wirelog: %v", err)
	}
	t.Cleanup(func() { n.kill() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			n.mu.Lock()
			n.logs.WriteString(line + "\n")
			n.mu.Unlock()
			if m := addrRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() { n.err = n.cmd.Wait(); close(n.done) }()
	select {
	case a := <-addr:
		n.url = "http://" + a
	case <-n.done:
		t.Fatalf("wirelog exited before serving: %v\n%s", n.err, n.Logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("wirelog did not start within 60s\n%s", n.Logs())
	}
	n.waitReady()
	return n
}

func (n *node) Logs() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.logs.String()
}

func (n *node) waitReady() {
	n.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(n.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.t.Fatalf("wirelog not ready within 30s\n%s", n.Logs())
}

// kill9 kills the process without warning, as a crash or OOM kill would.
func (n *node) kill9() {
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

func (n *node) kill() {
	select {
	case <-n.done:
	default:
		n.kill9()
	}
}

// term sends SIGTERM and returns the exit error (nil for exit 0).
func (n *node) term(timeout time.Duration) error {
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		return n.err
	case <-time.After(timeout):
		n.kill9()
		return fmt.Errorf("did not exit within %v after SIGTERM", timeout)
	}
}

func (n *node) post(ct, enc string, body []byte) (int, map[string]any, http.Header) {
	n.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.url+"/api/v1/logs", bytes.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		n.t.Fatalf("status %d with a body that is not JSON: %q", resp.StatusCode, b)
	}
	return resp.StatusCode, out, resp.Header
}

func (n *node) getJSON(path string, out any) int {
	n.t.Helper()
	resp, err := http.Get(n.url + path)
	if err != nil {
		n.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			n.t.Fatalf("GET %s: %v in %q", path, err, b)
		}
	}
	return resp.StatusCode
}

// eventually retries f until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("condition not met within %v: %v", timeout, err)
}

func statsEvents(n *node) float64 {
	var s map[string]any
	if n.getJSON("/api/v1/stats", &s) != 200 {
		return -1
	}
	v, _ := s["events"].(float64)
	return v
}

func withTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
