package agent

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/dataplane"
	"github.com/wirelog/wirelog/internal/dataplane/dpdk"
	"github.com/wirelog/wirelog/internal/dataplane/dpdk/dpdktest"
	"github.com/wirelog/wirelog/internal/dataplane/ovs"
	"github.com/wirelog/wirelog/internal/dataplane/ovs/ovstest"
)

// quietLogger keeps expected collector warnings out of test output.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startAgent serves an exporter over the DPDK collector (reading the real
// /var/run/dpdk) and, if ovsRunDir is set, the OVS collector, on a loopback
// port, the way `wirelog dataplane` wires them.
func startAgent(t testing.TB, ovsRunDir string, timeout time.Duration) (*httptest.Server, *Exporter) {
	t.Helper()
	return startAgentOn(t, []string{dpdktest.RuntimeDir}, ovsRunDir, timeout)
}

func startAgentOn(t testing.TB, dpdkDirs []string, ovsRunDir string, timeout time.Duration) (*httptest.Server, *Exporter) {
	t.Helper()
	cs := []dataplane.Collector{dpdk.New(dpdk.Options{RuntimeDirs: dpdkDirs, SocketTimeout: timeout / 2, Logger: quietLogger()})}
	if ovsRunDir != "" {
		cs = append(cs, ovs.New(ovs.Options{RunDir: ovsRunDir}))
	}
	e, err := New(cs, Options{Timeout: timeout, Logger: quietLogger(), Node: "test-node"})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry(e)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(reg, timeout, quietLogger()))
	t.Cleanup(srv.Close)
	return srv, e
}

// scrape GETs /metrics and returns the body.
func scrape(t testing.TB, base string) []byte {
	t.Helper()
	b, err := scrapeErr(base)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return b
}

func scrapeErr(base string) ([]byte, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return b, err
}

// fleet is the node the figures are measured on: two DPDK processes with
// two ports each and one OVS-DPDK with two ports.
type fleet struct {
	testpmds []*dpdktest.Testpmd
	ovs      *ovstest.OVS
}

func startFleet(t testing.TB) *fleet {
	t.Helper()
	f := &fleet{}
	// OVS first: its EAL start maps hugepages and is slow once testpmd
	// spins both cores.
	f.ovs = ovstest.Start(t, 2)
	for range 2 {
		f.testpmds = append(f.testpmds, dpdktest.StartTestpmd(t, 2))
	}
	return f
}

func (f *fleet) stop() {
	for _, tp := range f.testpmds {
		tp.Stop()
	}
	f.ovs.Stop()
}
