package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/testproc"
)

// TestAgentBuild builds the DaemonSet binary (`-tags agent`): it offers only
// the node agent's subcommands, serves metrics, and leaves the pipeline's
// dependencies out (its RSS is logged; budgets are in docs/BENCHMARKS.md).
func TestAgentBuild(t *testing.T) {
	bin, dir, err := testproc.Build("agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	help, _ := exec.Command(bin, "--help").Output()
	if !strings.Contains(string(help), "dataplane") || !strings.Contains(string(help), "preflight") || strings.Contains(string(help), "  run ") {
		t.Fatalf("agent --help lists the wrong commands:\n%s", help)
	}
	if err := exec.Command(bin, "run").Run(); err == nil {
		t.Fatal("agent binary accepted `run`")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "dataplane", "--listen", addr, "--dpdk-runtime-dir", t.TempDir(), "--collector.ovs=false", "--node", "n1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var body string
	eventually(t, 20*time.Second, func() error {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return nil
	})
	if !strings.Contains(body, `wirelog_dataplane_collector_success{collector="dpdk",node="n1"} 1`) {
		t.Fatalf("agent metrics lack the dpdk collector:\n%s", body)
	}
	t.Logf("agent binary RSS after a scrape: %d KiB", rssKB(t, cmd.Process.Pid))
}
