package agent

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/freeport"
)

// BenchmarkAgentScrape measures one full /metrics scrape over HTTP, as
// Prometheus does it, on a node with two dpdk-testpmd processes of two
// ports each and one OVS-DPDK with two ports (all real, all forwarding),
// against the same agent on an empty node as the baseline. rss_MB is the
// resident memory and cpu-ms/op the CPU time per scrape of the agent: of
// this test process for the in-process runs, of the real binary for
// agent=binary (set WIRELOG_AGENT_BIN=bin/wirelog to include it).
//
//	go test -run '^$' -bench AgentScrape -benchtime 200x -count 5 ./internal/dataplane/agent/
func BenchmarkAgentScrape(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: DPDK and OVS-DPDK")
	}
	empty, _ := startAgentOn(b, []string{b.TempDir()}, "", 5*time.Second)
	b.Run("node=empty", func(b *testing.B) { benchScrape(b, empty.URL, os.Getpid()) })

	f := startFleet(b)
	defer f.stop()
	srv, _ := startAgent(b, f.ovs.RunDir, 5*time.Second)
	waitFleetVisible(b, srv.URL, f)
	b.Run("node=2testpmd+ovs", func(b *testing.B) { benchScrape(b, srv.URL, os.Getpid()) })

	if bin := os.Getenv("WIRELOG_AGENT_BIN"); bin != "" {
		url, pid := startAgentBinary(b, bin, f.ovs.RunDir)
		waitFleetVisible(b, url, f)
		b.Run("node=2testpmd+ovs,agent=binary", func(b *testing.B) { benchScrape(b, url, pid) })
	}
}

func benchScrape(b *testing.B, url string, pid int) {
	b.ReportAllocs()
	var size int
	cpu0 := cpuTime(pid)
	for b.Loop() {
		size = len(scrape(b, url))
	}
	// CPU per scrape, apart from wall time: on a shared 2-core node with
	// three busy-polling processes, wall time is mostly waiting for a core.
	// In-process runs include the benchmark's HTTP client.
	b.ReportMetric(float64((cpuTime(pid)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	b.SetBytes(int64(size))
	// VmRSS counts the binary's file-backed pages (shared, reclaimable
	// page cache) as well as the agent's own memory (RssAnon).
	b.ReportMetric(procStatusMB(pid, "VmRSS:"), "rss_MB")
	b.ReportMetric(procStatusMB(pid, "RssAnon:"), "rss_anon_MB")
}

// waitFleetVisible waits until the agent exports every fleet process's
// ports and the PMD thread, so the benchmark measures full scrapes.
func waitFleetVisible(b *testing.B, url string, f *fleet) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mfs := parseExposition(b, scrape(b, url))
		ok := mfs.Count("ovs_pmd_rx_packets_total", map[string]string{"thread": "pmd"}) == 1
		for _, tp := range f.testpmds {
			ok = ok && mfs.Count("dpdk_ethdev_rx_packets_total", map[string]string{"file_prefix": tp.FilePrefix}) == 2
		}
		ok = ok && mfs.Count("dpdk_ethdev_rx_packets_total", map[string]string{"file_prefix": f.ovs.FilePrefix}) == 2
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("agent at %s does not show the whole fleet after 30 s", url)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startAgentBinary runs `wirelog dataplane` on a free loopback port.
func startAgentBinary(b *testing.B, bin, ovsRunDir string) (string, int) {
	b.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(freeport.Port(b))
	cmd := exec.Command(bin, "dataplane", "--listen", addr, "--ovs-rundir", ovsRunDir, "--node", "bench")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	url := "http://" + addr
	for i := 0; ; i++ {
		if _, err := scrapeErr(url); err == nil {
			return url, cmd.Process.Pid
		}
		if i > 100 {
			b.Fatalf("%s dataplane not serving on %s after 10 s", bin, addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cpuTime is the user+system CPU time of process pid, from
// /proc/<pid>/stat (clock ticks of 10 ms; fine over 100 scrapes).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14, stime 15.
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// procStatusMB reads a "<field> N kB" line of /proc/<pid>/status in MB.
func procStatusMB(pid int, field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
