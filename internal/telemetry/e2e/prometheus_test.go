package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/dataplane/dpdk/dpdktest"
	"github.com/wirelog/wirelog/internal/dataplane/ovs/ovstest"
	"github.com/wirelog/wirelog/internal/netlab"
	"github.com/wirelog/wirelog/internal/telemetry/jaegertest"
	"github.com/wirelog/wirelog/internal/testproc"
)

// needsOutsideLab names the series this machine cannot have, and why: the
// expressions using them are checked by Prometheus's parser (the query must
// not error) but not for data.
var needsOutsideLab = map[string]string{
	"podresources_":            "Kubernetes: the kubelet's pod-resources API",
	"sriov_vf_":                "SR-IOV VFs (hardware)",
	"wirelog:vf_drops_per_pod": "Kubernetes pod-resources and SR-IOV VFs",
	"wirelog_syslog_xdp_":      "--syslog-xdp on a NIC with an XDP driver",
	"kafka_server_":            "Kafka brokers' JMX exporter",
}

func outsideLab(expr string) string {
	for k, why := range needsOutsideLab {
		if strings.Contains(expr, k) {
			return why
		}
	}
	return ""
}

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr     string `json:"expr"`
		Exemplar bool   `json:"exemplar"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func readDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repoRoot(), "deploy", "grafana", "*.json"))
	if len(files) < 3 {
		t.Fatalf("dashboards: %v, want overview, data plane and netlab", files)
	}
	out := map[string]dashboard{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		// The only UIDs allowed: the dashboard's own, the datasource
		// variable, and Grafana's built-in annotation source.
		for _, m := range regexp.MustCompile(`"uid":\s*"([^"]*)"`).FindAllStringSubmatch(string(b), -1) {
			if m[1] != d.UID && m[1] != "${datasource}" && m[1] != "-- Grafana --" {
				t.Errorf("%s: hard-coded uid %q", filepath.Base(f), m[1])
			}
		}
		out[filepath.Base(f)] = d
	}
	return out
}

// TestDashboardsShape checks what Grafana and the Helm chart rely on: a
// current schemaVersion, the Prometheus datasource as a variable used by
// every panel, and exemplars on the overview's latency panels.
func TestDashboardsShape(t *testing.T) {
	for name, d := range readDashboards(t) {
		if d.SchemaVersion < 39 {
			t.Errorf("%s: schemaVersion %d, want a current Grafana's (39+)", name, d.SchemaVersion)
		}
		hasDS := false
		for _, v := range d.Templating.List {
			if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
				hasDS = true
			}
		}
		if !hasDS {
			t.Errorf("%s: no datasource variable of type prometheus", name)
		}
		exemplars := 0
		for _, p := range flatten(d.Panels) {
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("%s: panel %q does not use the datasource variable", name, p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", name, p.Title)
			}
			for _, tg := range p.Targets {
				if tg.Exemplar {
					exemplars++
				}
			}
		}
		if name == "wirelog-overview.json" && exemplars < 3 {
			t.Errorf("overview: %d targets with exemplars, want ack latency, batch store and freshness", exemplars)
		}
	}
}

func flatten(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

// grafanaVars replaces the dashboard variables as Grafana would for a
// 1-minute rate window and every node.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s", "$node", ".*")

// TestPrometheusAnswersEveryPanel is the whole observability loop on real
// parts: `wirelog run` (exporting traces to Jaeger, syslog on) under a
// short loadgen run, the data-plane agent reading a real dpdk-testpmd and
// a real OVS-DPDK, and Debian's Prometheus with exemplar storage scraping
// both and evaluating deploy/prometheus's rules. Every expression of every
// dashboard panel and every recording rule must evaluate without error and
// return data (those needing series this lab cannot have are listed and
// only parsed), and an exemplar of the ack latency must name a trace that
// Jaeger has.
func TestPrometheusAnswersEveryPanel(t *testing.T) {
	j := jaegertest.Start(t)
	o := ovstest.Start(t, 2) // before testpmd: its EAL start is slow with both cores busy
	dpdktest.StartTestpmd(t, 2)
	agent := startAgent(t, o.RunDir)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
	n := testproc.Start(t, wirelogBin, "run", "run", "--http", "127.0.0.1:0", "--data", t.TempDir(),
		"--syslog-udp", "127.0.0.1:0", "--syslog-tcp", "127.0.0.1:0", "--otlp-traces", j.OTLP)

	// The knees of a netlab run, as node_exporter's textfile collector
	// would serve its netlab.prom (a real run needs root and minutes; the
	// report is netlab's own test fixture).
	rep, err := netlab.ReadReport(filepath.Join(repoRoot(), "internal", "netlab", "testdata", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	promFile := filepath.Join(dir, netlab.MetricsFile)
	if err := rep.WriteMetrics(promFile); err != nil {
		t.Fatal(err)
	}
	textfile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		http.ServeFile(w, r, promFile)
	}))
	t.Cleanup(textfile.Close)
	for _, f := range []string{"recording.rules.yml", "alerts.rules.yml"} {
		b, err := os.ReadFile(filepath.Join(repoRoot(), "deploy", "prometheus", f))
		if err != nil {
			t.Fatal(err)
		}
		// Evaluate every 2s so a short run has recorded series.
		b = regexp.MustCompile(`(?m)^(\s+interval:) \w+$`).ReplaceAll(b, []byte("$1 2s"))
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	prom := testproc.StartPrometheus(t, dir, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 2s
rule_files: [recording.rules.yml, alerts.rules.yml]
scrape_configs:
  - job_name: wirelog
    static_configs: [{targets: [%q]}]
  - job_name: wirelog-dataplane
    static_configs: [{targets: [%q]}]
  - job_name: netlab-textfile
    static_configs: [{targets: [%q]}]
`, strings.TrimPrefix(n.URL, "http://"), agent, strings.TrimPrefix(textfile.URL, "http://")), "--enable-feature=exemplar-storage")

	// Load: HTTP through loadgen, and syslog datagrams beside it.
	sendSyslog(t, n.Logs(), 500)
	lg := exec.Command(wirelogBin, "loadgen", "--target", n.URL, "--duration", "15s", "--rate", "2000", "--batch", "20", "--quiet", "--json")
	if out, err := lg.Output(); err != nil {
		t.Fatalf("loadgen: %v\n%s", err, out)
	}
	sendSyslog(t, n.Logs(), 500)

	var exprs []string
	for name, d := range readDashboards(t) {
		for _, p := range flatten(d.Panels) {
			for _, tg := range p.Targets {
				exprs = append(exprs, name+"|"+p.Title+"|"+grafanaVars.Replace(tg.Expr))
			}
		}
	}
	for _, f := range []string{"recording.rules.yml"} {
		for _, g := range readRules(t, f).Groups {
			for _, r := range g.Rules {
				exprs = append(exprs, f+"|"+r.Record+"|"+r.Expr)
			}
		}
	}
	var syntaxOnly []string
	for _, e := range exprs {
		parts := strings.SplitN(e, "|", 3)
		where, expr := parts[0]+": "+parts[1], parts[2]
		if why := outsideLab(expr); why != "" {
			res, err := prom.Query(expr)
			if err != nil {
				t.Errorf("%s: %v", where, err)
			} else if len(res) == 0 {
				syntaxOnly = append(syntaxOnly, where+" (needs "+why+"): "+expr)
			}
			continue
		}
		deadline := time.Now().Add(45 * time.Second)
		for {
			res, err := prom.Query(expr)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				break
			}
			if len(res) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: no data for %s", where, expr)
				break
			}
			time.Sleep(time.Second)
		}
	}
	t.Logf("%d expressions evaluated with data; parsed only, for lack of the series here:\n  %s",
		len(exprs)-len(syntaxOnly), strings.Join(syntaxOnly, "\n  "))

	// Every rule, alerts included, evaluated on the real series without error.
	var rules struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := prom.Get("/api/v1/rules", nil, &rules); err != nil {
		t.Fatal(err)
	}
	nrules := 0
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			nrules++
			if r.Health != "ok" {
				t.Errorf("rule %s: health %q %s", r.Name, r.Health, r.LastError)
			}
		}
	}
	if nrules < 30 {
		t.Errorf("Prometheus loaded %d rules from deploy/prometheus", nrules)
	}

	// Each flushed UDP syslog batch is a span, its durable append a child.
	testproc.Eventually(t, 30*time.Second, func() error {
		found, err := j.Find("wirelog", "syslog udp batch", 5)
		if err != nil {
			return err
		}
		batches := map[string]bool{}
		for _, s := range found { // the spans of the traces holding a batch span
			if s.OperationName == "syslog udp batch" {
				batches[s.SpanID] = true
			}
		}
		for _, s := range found {
			for id := range batches {
				if s.OperationName == "send wirelog.logs" && s.ChildOf(id) {
					return nil
				}
			}
		}
		return fmt.Errorf("no syslog udp batch span (of %d) with a durable append under it", len(found))
	})

	// A syslog TCP connection is one span, its batches' appends under it.
	m := regexp.MustCompile(`syslog_tcp=([0-9.:]+)`).FindStringSubmatch(n.Logs())
	if m == nil {
		t.Fatalf("no syslog_tcp address in:\n%s", n.Logs())
	}
	c, err := net.Dial("tcp", m[1])
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		fmt.Fprintf(c, "<14>1 %s lab app - - - tcp line %d\n", time.Now().UTC().Format(time.RFC3339Nano), i)
	}
	c.Close()
	testproc.Eventually(t, 30*time.Second, func() error {
		found, err := j.Find("wirelog", "syslog tcp connection", 5)
		if err != nil {
			return err
		}
		for _, conn := range found {
			if conn.OperationName != "syslog tcp connection" {
				continue
			}
			for _, s := range found {
				if s.OperationName == "send wirelog.logs" && s.ChildOf(conn.SpanID) {
					return nil
				}
			}
		}
		return fmt.Errorf("no syslog tcp connection span with a durable append under it (%d spans)", len(found))
	})

	// Exemplars of the ack latency, batch store and freshness histograms
	// name traces Jaeger has.
	var ids []string
	for _, h := range []string{"wirelog_ingest_http_request_duration_seconds_bucket",
		"wirelog_processor_batch_store_seconds_bucket", "wirelog_processor_ingest_to_stored_seconds_bucket"} {
		var ex struct {
			Status string `json:"status"`
			Data   []struct {
				Exemplars []struct {
					Labels map[string]string `json:"labels"`
				} `json:"exemplars"`
			} `json:"data"`
		}
		now := time.Now()
		q := url.Values{"query": {h},
			"start": {strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10)}, "end": {strconv.FormatInt(now.Unix()+1, 10)}}
		if err := prom.Get("/api/v1/query_exemplars", q, &ex); err != nil || ex.Status != "success" {
			t.Fatalf("query_exemplars %s: %v %+v", h, err, ex)
		}
		n := 0
		for _, s := range ex.Data {
			for _, e := range s.Exemplars {
				if id := e.Labels["trace_id"]; id != "" {
					n++
					if h == "wirelog_ingest_http_request_duration_seconds_bucket" {
						ids = append(ids, id)
					}
				}
			}
		}
		if n == 0 {
			t.Errorf("no exemplar with a trace_id on %s in Prometheus: %+v", h, ex)
		}
	}
	if len(ids) == 0 {
		t.FailNow()
	}
	testproc.Eventually(t, 30*time.Second, func() error {
		for _, id := range ids {
			if spans, err := j.Trace(id); err == nil && len(spans) > 0 {
				return nil
			}
		}
		return fmt.Errorf("none of the %d exemplar trace ids is in Jaeger", len(ids))
	})
}

// startAgent runs `wirelog dataplane` on a free port reading testpmd's
// telemetry and OVS at ovsRunDir, and returns its host:port.
func startAgent(t *testing.T, ovsRunDir string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(wirelogBin, "dataplane", "--listen", addr, "--ovs-rundir", ovsRunDir, "--node", "lab",
		"--dpdk-runtime-dir", dpdktest.RuntimeDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	testproc.Eventually(t, 30*time.Second, func() error {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})
	return addr
}

var syslogUDP = regexp.MustCompile(`syslog_udp=([0-9.:]+)`)

// sendSyslog sends n RFC 5424 datagrams to the node's syslog UDP port.
func sendSyslog(t *testing.T, logs string, n int) {
	t.Helper()
	m := syslogUDP.FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("no syslog_udp address in:\n%s", logs)
	}
	c, err := net.Dial("udp", m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < n; i++ {
		fmt.Fprintf(c, "<14>1 %s lab app - - - syslog line %d", time.Now().UTC().Format(time.RFC3339Nano), i)
		if i%100 == 99 {
			time.Sleep(10 * time.Millisecond)
		}
	}
}
