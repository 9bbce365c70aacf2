package ovs

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/dataplane/agent/agenttest"
	"github.com/wirelog/wirelog/internal/dataplane/ovs/ovstest"
)

// TestCollectorRealOVSDPDK runs Debian's ovs-vswitchd-dpdk with a netdev
// bridge and two DPDK ports on net_null devices and checks what an
// operator looks at first: a PMD thread moving packets, its cycles per
// packet, its queues, and the ports' OVSDB statistics.
func TestCollectorRealOVSDPDK(t *testing.T) {
	o := ovstest.Start(t, 2)
	c := New(Options{RunDir: o.RunDir})
	pmd := map[string]string{"thread": "pmd", "numa_id": "0", "core_id": "1"}

	// The PMD starts polling when the ports are added; OVSDB statistics
	// are refreshed every 5 s. Wait for both, bounded.
	var mfs agenttest.Families
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		mfs, err = agenttest.Collect(t, context.Background(), c)
		if err != nil {
			t.Fatalf("collect: %v\novs-vswitchd log:\n%s", err, o.Log())
		}
		rx, _ := mfs.Value("ovs_pmd_rx_packets_total", pmd)
		ifrx, _ := mfs.Value("ovs_interface_rx_packets_total", map[string]string{"interface": "p0"})
		if rx > 0 && ifrx > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: PMD rx %v, p0 OVSDB rx %v; want both > 0", rx, ifrx)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if n, err := ovstest.HugepagesInUse(); err != nil || n == 0 {
		t.Errorf("2 MB hugepages in use while OVS-DPDK runs: %d (%v); it should hold its memory there", n, err)
	}
	o.Stop() // frees the PMD's core

	for _, name := range []string{"ovs_pmd_rx_packets_total", "ovs_pmd_cycles_per_packet", "ovs_pmd_processing_cycles_total",
		"ovs_pmd_emc_hits_total", "ovs_pmd_iterations_total", "ovs_pmd_busy_iterations_total", "ovs_pmd_tx_packets_total"} {
		if v, ok := mfs.Value(name, pmd); !ok || v <= 0 {
			t.Errorf("%s = %v (present %v), want > 0", name, v, ok)
		}
	}
	for _, name := range []string{"ovs_pmd_upcalls_total", "ovs_pmd_idle_cycles_total", "ovs_pmd_recirculations_total"} {
		if _, ok := mfs.Value(name, pmd); !ok {
			t.Errorf("%s missing for the PMD thread", name)
		}
	}
	if _, ok := mfs.Value("ovs_pmd_rx_packets_total", map[string]string{"thread": "main"}); !ok {
		t.Error("main thread series missing")
	}
	for _, port := range o.Ports {
		q := map[string]string{"numa_id": "0", "core_id": "1", "port": port, "queue": "0"}
		if v, ok := mfs.Value("ovs_pmd_rxq_enabled", q); !ok || v != 1 {
			t.Errorf("rxq %s/0 enabled = %v (present %v)", port, v, ok)
		}
		if _, ok := mfs.Value("ovs_interface_info", map[string]string{"interface": port, "type": "dpdk"}); !ok {
			t.Errorf("ovs_interface_info for %s type dpdk missing", port)
		}
		if v, _ := mfs.Value("ovs_interface_link_up", map[string]string{"interface": port}); v != 1 {
			t.Errorf("link of %s not up", port)
		}
	}
	if _, ok := mfs.Value("ovs_interface_statistic_total", map[string]string{"interface": "p0", "name": "rx_q0_packets"}); !ok {
		t.Error("driver statistic rx_q0_packets of p0 missing")
	}
	if _, ok := mfs.Value("ovs_vswitchd_info", map[string]string{"version": "3.1.0"}); !ok {
		t.Errorf("ovs_vswitchd_info{version=3.1.0} missing: %v", mfs["ovs_vswitchd_info"])
	}
	for _, cmd := range []string{cmdPMDStats, cmdPMDPerf, cmdRxq} {
		if v, _ := mfs.Value("wirelog_dataplane_ovs_unparsed_lines_total", map[string]string{"command": cmd}); v != 0 {
			t.Errorf("%v unparsed lines of %s from OVS 3.1", v, cmd)
		}
	}

	// OVS gone: the collector fails with an error that says what to check,
	// and exports no stale PMD series.
	after, err := agenttest.Collect(t, context.Background(), c)
	if !errors.Is(err, ErrNoVswitchd) {
		t.Errorf("after OVS stopped, err = %v, want ErrNoVswitchd", err)
	}
	if n := after.Count("ovs_pmd_rx_packets_total", nil); n != 0 {
		t.Errorf("%d PMD series after OVS stopped", n)
	}
}

// fakeVswitchd serves a control socket in a run directory laid out like
// ovs-vswitchd's, answering each request through reply. It stands in for
// OVS versions and failures that the 3.1 here cannot be made to show.
func fakeVswitchd(t *testing.T, reply func(method string, params []string) (resp string, ok bool)) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ovsfake")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pid := 4000 + os.Getpid()%1000
	os.WriteFile(filepath.Join(dir, "ovs-vswitchd.pid"), []byte(strconv.Itoa(pid)+"\n"), 0o644)
	ln, err := net.Listen("unix", filepath.Join(dir, "ovs-vswitchd."+strconv.Itoa(pid)+".ctl"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				dec := json.NewDecoder(c)
				for {
					var req struct {
						Method string   `json:"method"`
						Params []string `json:"params"`
						ID     int      `json:"id"`
					}
					if dec.Decode(&req) != nil {
						return
					}
					resp, ok := reply(req.Method, req.Params)
					if !ok {
						continue
					}
					resp = strings.ReplaceAll(resp, "$ID", strconv.Itoa(req.ID))
					if _, err := c.Write([]byte(resp)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return dir
}

// result renders a successful unixctl answer.
func result(text string) string {
	b, _ := json.Marshal(text)
	return `{"id":$ID,"result":` + string(b) + `,"error":null}`
}

// ovs31 answers like OVS 3.1 from the captured outputs; extra is added
// to each PMD command's output.
func ovs31(t *testing.T, extra string) func(string, []string) (string, bool) {
	files := map[string]string{
		cmdPMDStats: readTestdata(t, "pmd-stats-show.txt"),
		cmdPMDPerf:  readTestdata(t, "pmd-perf-show.txt"),
		cmdRxq:      readTestdata(t, "pmd-rxq-show.txt"),
	}
	return func(method string, _ []string) (string, bool) {
		if method == "version" {
			return result("ovs-vswitchd (Open vSwitch) 3.9.0\n"), true
		}
		return result(files[method] + extra), true
	}
}

// TestCollectorUnknownLinesAreCounted: a newer OVS printing lines this
// agent does not know still has its known figures exported, and the
// unknown ones show up in the unparsed-lines counter.
func TestCollectorUnknownLinesAreCounted(t *testing.T) {
	dir := fakeVswitchd(t, ovs31(t, "  quantum flux: 3\n  new section\n"))
	c := New(Options{RunDir: dir, DBSocket: filepath.Join(dir, "none.sock")})
	mfs, err := agenttest.Collect(t, context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "ovsdb") {
		t.Errorf("err = %v, want the missing OVSDB socket reported", err)
	}
	for _, cmd := range []string{cmdPMDStats, cmdPMDPerf, cmdRxq} {
		if v, _ := mfs.Value("wirelog_dataplane_ovs_unparsed_lines_total", map[string]string{"command": cmd}); v != 2 {
			t.Errorf("unparsed lines of %s = %v, want 2", cmd, v)
		}
	}
	if v, _ := mfs.Value("ovs_pmd_rx_packets_total", map[string]string{"core_id": "1"}); v != 822629920 {
		t.Errorf("rx packets = %v; known lines must still be exported", v)
	}
	if v, _ := mfs.Value("ovs_pmd_rxq_usage_ratio", map[string]string{"port": "p1", "queue": "0"}); v != 0.48 {
		t.Errorf("rxq usage p1 = %v, want 0.48", v)
	}
	if v, _ := mfs.Value("ovs_pmd_stats_window_seconds", nil); v != 65.389 {
		t.Errorf("stats window = %v", v)
	}
}

// TestCollectorBadControlSocket: garbage, silence, wrong ids and error
// answers from the control socket each end the scrape promptly with an
// error, never a panic or a hang.
func TestCollectorBadControlSocket(t *testing.T) {
	cases := map[string]struct {
		reply func(string, []string) (string, bool)
		want  string
	}{
		"not-json":      {func(string, []string) (string, bool) { return "Segmentation fault\n", true }, "protocol"},
		"never-answers": {func(string, []string) (string, bool) { return "", false }, "timeout"},
		"wrong-id":      {func(string, []string) (string, bool) { return `{"id":99,"result":"x","error":null}`, true }, "reply id"},
		"result-not-string": {func(string, []string) (string, bool) {
			return `{"id":$ID,"result":{"a":1},"error":null}`, true
		}, "not a string"},
		"no-netdev-datapath": {func(m string, _ []string) (string, bool) {
			if m == "version" {
				return result("ovs-vswitchd (Open vSwitch) 3.1.0\n"), true
			}
			return `{"id":$ID,"error":"please specify an existing datapath\n"}`, true
		}, "please specify an existing datapath"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := fakeVswitchd(t, tc.reply)
			c := New(Options{RunDir: dir, DBSocket: filepath.Join(dir, "none.sock")})
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := agenttest.Collect(t, ctx, c)
				done <- err
			}()
			select {
			case err := <-done:
				msg := ""
				if err != nil {
					msg = err.Error()
				}
				if tc.want == "timeout" {
					if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("err = %v, want a deadline error", err)
					}
				} else if !strings.Contains(msg, tc.want) {
					t.Errorf("err = %v, want it to mention %q", err, tc.want)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("collect still running 20 s after a 500 ms deadline")
			}
		})
	}
}

func TestFindVswitchdCtlErrorsNameTheFlag(t *testing.T) {
	dir := t.TempDir()
	if _, err := FindVswitchdCtl(dir); !errors.Is(err, ErrNoVswitchd) || !strings.Contains(err.Error(), "--ovs-rundir") {
		t.Errorf("no pid file: err = %v", err)
	}
	os.WriteFile(filepath.Join(dir, "ovs-vswitchd.pid"), []byte("12345\n"), 0o644)
	if _, err := FindVswitchdCtl(dir); !errors.Is(err, ErrNoVswitchd) || !strings.Contains(err.Error(), "stale pid file") {
		t.Errorf("stale pid file: err = %v", err)
	}
	os.WriteFile(filepath.Join(dir, "ovs-vswitchd.pid"), []byte("garbage"), 0o644)
	if _, err := FindVswitchdCtl(dir); !errors.Is(err, ErrNoVswitchd) {
		t.Errorf("garbage pid file: err = %v", err)
	}
}
