package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/wirelog/wirelog/internal/testproc"
)

// wirelogBin is the binary under test, built once by TestMain.
var wirelogBin string

func TestMain(m *testing.M) {
	bin, dir, err := testproc.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wirelogBin = bin
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// node is a running `wirelog run`.
type node struct {
	*testproc.Proc
	t *testing.T
}

// startNode starts `wirelog run` on a random loopback port with data in
// dataDir, syslog off unless extra turns it on, and waits until it is ready.
func startNode(t *testing.T, dataDir string, extra ...string) *node {
	t.Helper()
	args := append([]string{"run", "--http", "127.0.0.1:0", "--data", dataDir, "--syslog-udp", "", "--syslog-tcp", ""}, extra...)
	return &node{Proc: testproc.Start(t, wirelogBin, "wirelog run", args...), t: t}
}

func (n *node) post(ct, enc string, body []byte) (int, map[string]any, http.Header) {
	n.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.URL+"/api/v1/logs", bytes.NewReader(body))
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
	resp, err := http.Get(n.URL + path)
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

func statsEvents(n *node) float64 {
	var s map[string]any
	if n.getJSON("/api/v1/stats", &s) != 200 {
		return -1
	}
	v, _ := s["events"].(float64)
	return v
}

var eventually = testproc.Eventually

func contains(s, sub string) bool { return strings.Contains(s, sub) }
