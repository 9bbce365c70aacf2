// Package dpseriestest starts the data-plane chain the dashboard reads in
// tests: a real dpdk-testpmd, the real `wirelog dataplane` agent, and
// Debian's Prometheus scraping it. Only tests import it.
package dpseriestest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/dataplane/dpdk/dpdktest"
	"github.com/wirelog/wirelog/internal/freeport"
	"github.com/wirelog/wirelog/internal/testproc"
)

// StartChain runs what an operator runs: a real dpdk-testpmd, the real
// `wirelog dataplane` agent reading its telemetry, and Debian's Prometheus
// scraping the agent every second. It returns Prometheus's URL.
func StartChain(t testing.TB, bin string) string {
	t.Helper()
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus not found: run scripts/deps/20-dpdk-ovs.sh (Debian package prometheus)")
	}
	agentAddr := StartAgent(t, bin)

	pdir := t.TempDir()
	cfg := filepath.Join(pdir, "prometheus.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: wirelog-dataplane\n    static_configs:\n      - targets: [%q]\n", agentAddr)), 0o644)
	promAddr := freeport.Addr(t)
	pc := exec.Command(prom, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(pdir, "data"), "--web.listen-address="+promAddr, "--log.level=warn")
	pc.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Process.Signal(syscall.SIGTERM); pc.Wait() })
	base := "http://" + promAddr
	testproc.Eventually(t, 30*time.Second, func() error {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("prometheus /-/ready: %d", resp.StatusCode)
		}
		return nil
	})
	return base
}

// StartAgent runs a real dpdk-testpmd and the real `wirelog dataplane`
// agent (bin) reading its telemetry, and returns the agent's address.
func StartAgent(t testing.TB, bin string) string {
	t.Helper()
	dpdktest.StartTestpmd(t, 2)
	agentAddr := freeport.Addr(t)
	agent := exec.Command(bin, "dataplane", "--listen", agentAddr, "--node", "test-node",
		"--collector.ovs=false", "--collector.podresources=false")
	agent.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })

	testproc.Eventually(t, 30*time.Second, func() error {
		resp, err := http.Get("http://" + agentAddr + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	return agentAddr
}
