package agent

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wirelog/wirelog/internal/dataplane"
	"github.com/wirelog/wirelog/internal/dataplane/dpdk"
	"github.com/wirelog/wirelog/internal/dataplane/ovs"
	"github.com/wirelog/wirelog/internal/dataplane/sriov"
	"github.com/wirelog/wirelog/internal/dataplane/sysfs/sysfstest"
)

// hungPeer listens on a unix socket of the given network ("unix",
// "unixpacket"), accepts every connection and never writes or reads: a
// DPDK process or ovs-vswitchd stuck in its main loop.
func hungPeer(t *testing.T, network, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix(network, &net.UnixAddr{Name: path, Net: network})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
}

// TestHungPeersDoNotStallTheScrape: a DPDK telemetry socket and an OVS
// control and database socket that accept and never answer make the dpdk
// and ovs collectors fail within the scrape deadline
// (wirelog_dataplane_collector_success 0); the SR-IOV series of the same
// scrape are served as normal.
func TestHungPeersDoNotStallTheScrape(t *testing.T) {
	dpdkDir := t.TempDir()
	hungPeer(t, "unixpacket", filepath.Join(dpdkDir, "stuck", "dpdk_telemetry.v2"))
	ovsDir := t.TempDir()
	pid := os.Getpid()
	if err := os.WriteFile(filepath.Join(ovsDir, "ovs-vswitchd.pid"), []byte(fmt.Sprintf("%d\n", pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	hungPeer(t, "unix", filepath.Join(ovsDir, fmt.Sprintf("ovs-vswitchd.%d.ctl", pid)))
	hungPeer(t, "unix", filepath.Join(ovsDir, "db.sock"))
	tree := sysfstest.New(t)
	tree.AddPF(sysfstest.ICE("ens1f0", "0000:3b:00.0", 0, 4))

	const deadline = time.Second
	sc := sriov.New(sriov.Options{Sys: tree.Sys})
	t.Cleanup(func() { sc.Close() })
	cs := []dataplane.Collector{
		dpdk.New(dpdk.Options{RuntimeDirs: []string{dpdkDir}, SocketTimeout: 10 * deadline, Logger: quietLogger()}),
		ovs.New(ovs.Options{RunDir: ovsDir}),
		sc,
	}
	e, err := New(cs, Options{Timeout: deadline, Logger: quietLogger(), Node: "test-node"})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry(e)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(Handler(reg, deadline, quietLogger()))
	t.Cleanup(ts.Close)
	srv := ts.URL

	// The bound is liveness, not speed: far above the deadline, far below
	// the 10 s the DPDK socket timeout alone would take.
	client := &http.Client{Timeout: 8 * deadline}
	start := time.Now()
	resp, err := client.Get(srv + "/metrics")
	if err != nil {
		t.Fatalf("scrape with hung DPDK and OVS peers did not answer: %v", err)
	}
	defer resp.Body.Close()
	took := time.Since(start)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scrape answered in %v with a %v per-collector deadline", took.Round(time.Millisecond), deadline)
	success := map[string]float64{}
	for _, m := range mfs["wirelog_dataplane_collector_success"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "collector" {
				success[l.GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	for name, want := range map[string]float64{"dpdk": 0, "ovs": 0, "sriov": 1} {
		if got, ok := success[name]; !ok || got != want {
			t.Errorf("wirelog_dataplane_collector_success{collector=%q} = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if n := len(mfs["sriov_vf_info"].GetMetric()); n != 4 {
		t.Errorf("%d sriov_vf_info series beside the hung collectors, want 4", n)
	}
	if !strings.Contains(fmt.Sprint(mfs["wirelog_dataplane_scrape_errors_total"]), "timeout") {
		t.Errorf("scrape errors do not name the timeout: %v", mfs["wirelog_dataplane_scrape_errors_total"])
	}
}
