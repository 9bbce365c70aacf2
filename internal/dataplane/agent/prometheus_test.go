package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wirelog/wirelog/internal/dataplane/agent/agenttest"
	"github.com/wirelog/wirelog/internal/dataplane/dpdk/dpdktest"
	"github.com/wirelog/wirelog/internal/dataplane/ovs/ovstest"
)

// TestAgentWithPrometheus is the agent as an operator runs it: a real
// testpmd and a real OVS-DPDK on the node, the agent serving /metrics,
// and Debian's Prometheus scraping it. PromQL over Prometheus's HTTP API
// must see the DPDK port's packet rate and the PMD thread's, promtool must
// find nothing to lint in what the agent serves, and once testpmd stops
// its series must go while the agent stays healthy.
func TestAgentWithPrometheus(t *testing.T) {
	promBin := lookPath(t, "prometheus")
	promtool := lookPath(t, "promtool")
	// OVS first: its EAL start maps hugepages and is slow when testpmd
	// already spins both cores.
	o := ovstest.Start(t, 2)
	tp := dpdktest.StartTestpmd(t, 2)
	agentSrv, _ := startAgent(t, o.RunDir, 1500*time.Millisecond)

	prom := startPrometheus(t, promBin, strings.TrimPrefix(agentSrv.URL, "http://"))
	rxRate := fmt.Sprintf(`rate(dpdk_ethdev_rx_packets_total{file_prefix=%q,port="0",node="test-node"}[20s])`, tp.FilePrefix)
	pmdRate := `rate(ovs_pmd_rx_packets_total{thread="pmd",node="test-node"}[20s])`
	var rx, pmd float64
	deadline := time.Now().Add(60 * time.Second)
	for rx <= 0 || pmd <= 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s Prometheus has %s = %v and %s = %v; want both > 0\ntargets: %s",
				rxRate, rx, pmdRate, pmd, prom.get(t, "/api/v1/targets", nil))
		}
		time.Sleep(time.Second)
		rx, _ = prom.query(t, rxRate)
		pmd, _ = prom.query(t, pmdRate)
	}
	t.Logf("PromQL: %s = %.0f packets/s; %s = %.0f packets/s", rxRate, rx, pmdRate, pmd)
	if up, ok := prom.query(t, `up{job="wirelog-dataplane"}`); !ok || up != 1 {
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

type promServer struct {
	base string
}

// startPrometheus runs Prometheus on a free loopback port with a temp
// storage dir, scraping target every second.
func startPrometheus(t testing.TB, bin, target string) *promServer {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 2s
  scrape_timeout: 2s
scrape_configs:
  - job_name: wirelog-dataplane
    static_configs:
      - targets: [%q]
`, target)), 0o644)
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	logf, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	p := &promServer{base: "http://" + addr}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if resp, err := http.Get(p.base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Fatalf("prometheus exited:\n%s", b)
		case <-ctx.Done():
			t.Fatal("prometheus not ready after 30 s")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (p *promServer) get(t testing.TB, path string, q url.Values) string {
	t.Helper()
	u := p.base + path
	if q != nil {
		u += "?" + q.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return b.String()
}

// query runs an instant PromQL query and returns the first sample's value.
func (p *promServer) query(t testing.TB, promql string) (float64, bool) {
	t.Helper()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	body := p.get(t, "/api/v1/query", url.Values{"query": {promql}})
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Status != "success" {
		t.Fatalf("query %s: %v %s", promql, err, body)
	}
	if len(r.Data.Result) == 0 {
		return 0, false
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}
