package dpdk

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/dataplane/dpdk/dpdktest"
)

// TestCollectorRealTestpmd scrapes a real dpdk-testpmd forwarding between
// two net_null ports: the counters must be there and move, and once testpmd
// stops its series must go while the collector stays up.
func TestCollectorRealTestpmd(t *testing.T) {
	tp := dpdktest.StartTestpmd(t, 2)
	c := New(Options{RuntimeDirs: []string{dpdktest.RuntimeDir}})
	ours := map[string]string{"file_prefix": tp.FilePrefix, "pid": strconv.Itoa(tp.PID())}

	first, err := collectOnce(t, c, context.Background())
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	second, err := collectOnce(t, c, context.Background())
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	tp.Stop() // frees the cores for the rest of the test

	for _, port := range []string{"0", "1"} {
		lbl := map[string]string{"file_prefix": tp.FilePrefix, "port": port, "port_name": "net_null" + port}
		for _, name := range []string{"dpdk_ethdev_rx_packets_total", "dpdk_ethdev_tx_packets_total"} {
			a, ok1 := first.Value(name, lbl)
			b, ok2 := second.Value(name, lbl)
			if !ok1 || !ok2 {
				t.Fatalf("%s for port %s missing (first %v, second %v)", name, port, ok1, ok2)
			}
			if !(b > a) {
				t.Errorf("%s port %s did not increase: %v then %v", name, port, a, b)
			}
		}
		if _, ok := second.Value("dpdk_ethdev_xstat_total", map[string]string{"file_prefix": tp.FilePrefix, "port": port, "name": "rx_good_packets"}); !ok {
			t.Errorf("xstat rx_good_packets of port %s missing", port)
		}
		if got, _ := second.Value("dpdk_ethdev_link_up", lbl); got != 1 {
			t.Errorf("link of port %s not up", port)
		}
	}
	if _, ok := second.Value("dpdk_process_info", ours); !ok {
		t.Error("dpdk_process_info missing for testpmd's pid")
	}
	if got, _ := second.Value("dpdk_heap_size_bytes", ours); got < 1<<30 {
		// -m 1024 gives the process a 1 GiB heap.
		t.Errorf("heap size = %v, want >= 1 GiB", got)
	}
	if got, _ := second.Value("wirelog_dataplane_dpdk_socket_up", map[string]string{"file_prefix": tp.FilePrefix}); got != 1 {
		t.Error("socket_up not 1 while testpmd runs")
	}

	after, err := collectOnce(t, c, context.Background())
	if err != nil {
		t.Fatalf("collector failed after testpmd exited: %v", err)
	}
	for _, name := range []string{"dpdk_ethdev_rx_packets_total", "dpdk_process_info", "wirelog_dataplane_dpdk_socket_up"} {
		if n := after.Count(name, map[string]string{"file_prefix": tp.FilePrefix}); n != 0 {
			t.Errorf("%d %s series remain after testpmd exited", n, name)
		}
	}
}

// TestCollectorKilledTestpmd: SIGKILL leaves the socket file behind; the
// collector reports it down and counts the failed connect.
func TestCollectorKilledTestpmd(t *testing.T) {
	tp := dpdktest.StartTestpmd(t, 1)
	tp.Kill()
	c := New(Options{RuntimeDirs: []string{dpdktest.RuntimeDir}})
	mfs, err := collectOnce(t, c, context.Background())
	if err != nil {
		t.Fatalf("collector failed on a stale socket: %v", err)
	}
	if got, ok := mfs.Value("wirelog_dataplane_dpdk_socket_up", map[string]string{"file_prefix": tp.FilePrefix}); !ok || got != 0 {
		t.Errorf("socket_up = %v (present %v), want 0 for a killed process", got, ok)
	}
	if got, _ := mfs.Value("wirelog_dataplane_dpdk_socket_errors_total", map[string]string{"reason": reasonConnect}); got < 1 {
		t.Errorf("connect errors = %v, want >= 1", got)
	}
	if n := mfs.Count("dpdk_ethdev_rx_packets_total", map[string]string{"file_prefix": tp.FilePrefix}); n != 0 {
		t.Errorf("%d port series for a killed process", n)
	}
}
