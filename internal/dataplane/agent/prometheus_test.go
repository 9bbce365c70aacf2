package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wirelog/wirelog/internal/dataplane/agent/agenttest"
	"github.com/wirelog/wirelog/internal/dataplane/dpdk/dpdktest"
	"github.com/wirelog/wirelog/internal/dataplane/ovs/ovstest"
	"github.com/wirelog/wirelog/internal/testproc"
)

// TestAgentWithPrometheus is the agent as an operator runs it: a real
// testpmd and a real OVS-DPDK on the node, the agent serving /metrics,
// and Debian's Prometheus scraping it. PromQL over Prometheus's HTTP API
// must see the DPDK port's packet rate and the PMD thread's, promtool must
// find nothing to lint in what the agent serves, and once testpmd stops
// its series must go while the agent stays healthy.
func TestAgentWithPrometheus(t *testing.T) {
	promtool := lookPath(t, "promtool")
	// OVS first: its EAL start maps hugepages and is slow when testpmd
	// already spins both cores.
	o := ovstest.Start(t, 2)
	tp := dpdktest.StartTestpmd(t, 2)
	agentSrv, _ := startAgent(t, o.RunDir, 1500*time.Millisecond)

	prom := testproc.StartPrometheus(t, t.TempDir(), fmt.Sprintf(`global:
  scrape_interval: 2s
  scrape_timeout: 2s
scrape_configs:
  - job_name: wirelog-dataplane
    static_configs:
      - targets: [%q]
`, strings.TrimPrefix(agentSrv.URL, "http://")))
	rxRate := fmt.Sprintf(`rate(dpdk_ethdev_rx_packets_total{file_prefix=%q,port="0",node="test-node"}[20s])`, tp.FilePrefix)
	pmdRate := `rate(ovs_pmd_rx_packets_total{thread="pmd",node="test-node"}[20s])`
	var rx, pmd float64
	deadline := time.Now().Add(60 * time.Second)
	for rx <= 0 || pmd <= 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s Prometheus has %s = %v and %s = %v; want both > 0\ntargets: %s",
				rxRate, rx, pmdRate, pmd, promTargets(prom))
		}
		time.Sleep(time.Second)
		rx, _ = promQuery(t, prom, rxRate)
		pmd, _ = promQuery(t, prom, pmdRate)
	}
	t.Logf("PromQL: %s = %.0f packets/s; %s = %.0f packets/s", rxRate, rx, pmdRate, pmd)
	if up, ok := promQuery(t, prom, `up{job="wirelog-dataplane"}`); !ok || up != 1 {
		t.Errorf("Prometheus up{job=wirelog-dataplane} = %v (present %v)", up, ok)
	}

	body := scrape(t, agentSrv.URL)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	tp.Stop()
	o.Stop()
	after := parseExposition(t, scrape(t, agentSrv.URL))
	if n := after.Count("dpdk_ethdev_rx_packets_total", map[string]string{"file_prefix": tp.FilePrefix}); n != 0 {
		t.Errorf("%d rx series of the stopped testpmd remain", n)
	}
	if v, _ := after.Value("wirelog_dataplane_collector_success", map[string]string{"collector": "dpdk"}); v != 1 {
		t.Errorf("dpdk collector_success = %v after testpmd stopped, want 1", v)
	}
	if v, _ := after.Value("wirelog_dataplane_collector_success", map[string]string{"collector": "ovs"}); v != 0 {
		t.Errorf("ovs collector_success = %v after OVS stopped, want 0", v)
	}
	resp, err := http.Get(agentSrv.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz after the data plane stopped: %v %v", resp, err)
	}
}

func lookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (Debian package prometheus; run scripts/deps/20-dpdk-ovs.sh as root): %v", name, err)
	}
	return p
}

func parseExposition(t testing.TB, body []byte) agenttest.Families {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return agenttest.Families(mfs)
}

// promQuery runs an instant PromQL query and returns the first sample's
// value, and whether there was one.
func promQuery(t testing.TB, p *testproc.Prometheus, promql string) (float64, bool) {
	t.Helper()
	samples, err := p.Query(promql)
	if err != nil {
		t.Fatalf("PromQL %s: %v", promql, err)
	}
	if len(samples) == 0 {
		return 0, false
	}
	return samples[0].Float(), true
}

// promTargets is Prometheus's view of its scrape targets, for a failure
// message.
func promTargets(p *testproc.Prometheus) string {
	var out json.RawMessage
	if err := p.Get("/api/v1/targets", nil, &out); err != nil {
		return err.Error()
	}
	return string(out)
}
