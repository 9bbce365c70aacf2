package webui

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/dataplane/sysfs/sysfstest"
	"github.com/wirelog/wirelog/internal/dpseries/dpseriestest"
	"github.com/wirelog/wirelog/internal/testproc"
)

// Browser-test workload: loadgen events plus syslog lines that differ only
// in numbers (one pattern).
const (
	e2eLoadgenEvents = 20000
	e2eSyslogLines   = 300
	e2eSyslogApp     = "diskwatch"
	e2eFloodRate     = 100000 // events/s offered while the tail page is measured
)

var syslogUDPRE = regexp.MustCompile(`syslog_udp=([0-9.:]+)`)

// Tenant tokens of the second node, the one the script opens with a tenant
// token (the Overview's tenant live card).
const (
	e2eTenantToken      = "e2e-tenant-acme-0123456789"
	e2eOtherTenantToken = "e2e-tenant-globex-0123456789"
)

// startTenantNode runs a second `wirelog run` with tenant tokens
// (--auth-tokens, docs/OPERATIONS.md): a tenant token reads only its
// tenant and may not read /metrics.
func startTenantNode(t *testing.T, bin string) *testproc.Proc {
	t.Helper()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(tokens, []byte(`{"tokens":[{"token":"`+e2eTenantToken+`","tenant":"acme"},{"token":"`+e2eOtherTenantToken+`","tenant":"globex"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return testproc.Start(t, bin, "wirelog-tenants", "run", "--http", "127.0.0.1:0", "--data", filepath.Join(dir, "data"),
		"--syslog-udp", "", "--syslog-tcp", "", "--auth-tokens", tokens)
}

// vfOwnersJSON is what the fake kubelet of the data-plane chain says holds
// each VF of its fake NIC, for the script to find on the page: pci_address
// → {namespace, pod, container}, or null for a VF no container holds.
func vfOwnersJSON() string {
	type holder struct {
		Namespace string `json:"namespace"`
		Pod       string `json:"pod"`
		Container string `json:"container"`
	}
	out := map[string]*holder{}
	for i := range dpseriestest.PF.NumVFs {
		pci := sysfstest.VFAddress(dpseriestest.PF.PCI, i)
		out[pci] = nil
		if o, ok := dpseriestest.VFOwners[pci]; ok {
			out[pci] = &holder{o.Namespace, o.Pod, o.Container}
		}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// TestDashboardInChromium runs web/e2e/run.mjs (playwright-core driving
// Debian's /usr/bin/chromium) against a real `wirelog run` fed by `wirelog
// loadgen` and syslog, with --prometheus reading a real Prometheus that
// scrapes a real `wirelog dataplane` on a real dpdk-testpmd (and a fake
// SR-IOV NIC whose VFs a fake kubelet gave to pods), and kills and restarts that node when the script asks.
// A second node with tenant tokens serves the Overview under a tenant token.
// The browser reaches the node through cutProxy, so the script can also drop
// the browser's connections (CUT) and let them back (UNCUT) with wirelog up.
// Screenshots go to the test's temp dir, or to docs/img when
// WIRELOG_REFRESH_SCREENSHOTS is set (so `make test` leaves the tree clean).
func TestDashboardInChromium(t *testing.T) {
	if !Built() {
		t.Fatal("dashboard not built: run make ui (the binary embeds internal/webui/dist)")
	}
	for _, need := range []string{"/usr/bin/chromium", "../../web/node_modules/playwright-core"} {
		if _, err := os.Stat(need); err != nil {
			t.Fatalf("%s missing: run make deps (scripts/deps/60-dashboard.sh)", need)
		}
	}
	bin, dir, err := testproc.Build()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The Data plane page reads a real Prometheus scraping a real agent on
	// a real dpdk-testpmd.
	prom := dpseriestest.StartChain(t, bin)
	data := t.TempDir()
	args := []string{"run", "--http", "127.0.0.1:0", "--data", data, "--syslog-udp", "127.0.0.1:0", "--syslog-tcp", "", "--prometheus", prom}
	node := testproc.Start(t, bin, "wirelog", args...)
	m := syslogUDPRE.FindStringSubmatch(node.Logs())
	if m == nil {
		t.Fatalf("no syslog_udp address in the startup log:\n%s", node.Logs())
	}

	lg := exec.Command(bin, "loadgen", "--target", node.URL, "--count", fmt.Sprint(e2eLoadgenEvents), "--duration", "60s", "--quiet", "--rate", "5000")
	if out, err := lg.CombinedOutput(); err != nil {
		t.Fatalf("loadgen: %v\n%s", err, out)
	}
	conn, err := net.Dial("udp", m[1])
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range e2eSyslogLines {
		ts := now.Add(-time.Duration(e2eSyslogLines-i) * 100 * time.Millisecond).Format(time.RFC3339Nano)
		fmt.Fprintf(conn, "<14>1 %s node-%d %s - - - syslog-e2e volume /data%d at %d%% used after %d checks", ts, i%3, e2eSyslogApp, i%3, 50+i%50, i)
		if i%50 == 0 {
			time.Sleep(20 * time.Millisecond) // UDP: do not outrun the socket buffer
		}
	}
	conn.Close()
	want := int64(e2eLoadgenEvents + e2eSyslogLines)
	testproc.Eventually(t, 60*time.Second, func() error {
		var st struct{ Events int64 }
		resp, err := http.Get(node.URL + "/api/v1/stats")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&st)
		if st.Events != want {
			return fmt.Errorf("%d events stored, want %d", st.Events, want)
		}
		return nil
	})

	cmd := exec.Command("node", "e2e/run.mjs")
	cmd.Dir = "../../web"
	shots := t.TempDir()
	if os.Getenv("WIRELOG_REFRESH_SCREENSHOTS") != "" {
		shots, _ = filepath.Abs("../../docs/img")
	}
	// The browser reaches wirelog through a proxy the script can cut.
	proxy := startCutProxy(t, strings.TrimPrefix(node.URL, "http://"))
	tenants := startTenantNode(t, bin)
	cmd.Env = append(os.Environ(), "WIRELOG_URL="+proxy.URL(), "WIRELOG_DIRECT_URL="+node.URL, "WIRELOG_SHOTS="+shots,
		"WIRELOG_PATTERN_SERVICE="+e2eSyslogApp, fmt.Sprintf("WIRELOG_PATTERN_LINES=%d", e2eSyslogLines),
		"WIRELOG_VF_OWNERS="+vfOwnersJSON(),
		"WIRELOG_TENANT_URL="+tenants.URL, "WIRELOG_TENANT_TOKEN="+e2eTenantToken, "WIRELOG_OTHER_TENANT_TOKEN="+e2eOtherTenantToken)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := strings.TrimPrefix(node.URL, "http://")
	sc := bufio.NewScanner(stdout)
	var result string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "CUT":
			proxy.cut()
			io.WriteString(stdin, "CUT\n")
		case line == "UNCUT":
			proxy.uncut()
			io.WriteString(stdin, "UNCUT\n")
		case line == "FLOOD":
			// The tail at full ingest: as fast as loadgen and this machine
			// go, aiming at 100k events/s, for 10 s.
			out, err := exec.Command(bin, "loadgen", "--target", node.URL, "--rate", fmt.Sprint(e2eFloodRate), "--duration", "10s",
				"--concurrency", "8", "--batch", "500", "--quiet", "--json").Output()
			var rep struct {
				EventsPerSecond float64 `json:"events_per_second"`
			}
			if err == nil {
				err = json.Unmarshal(out, &rep)
			}
			if err != nil {
				t.Errorf("flood loadgen: %v\n%s", err, out)
			}
			fmt.Fprintf(stdin, "FLOODED %.0f\n", rep.EventsPerSecond)
		case line == "KILL":
			node.Kill9()
			io.WriteString(stdin, "KILLED\n")
		case line == "RESTART":
			restart := append([]string{}, args...)
			restart[2] = addr // the same address, as a restarted service keeps
			node = testproc.Start(t, bin, "wirelog", restart...)
			io.WriteString(stdin, "RESTARTED\n")
		case strings.HasPrefix(line, "RESULT "):
			result = strings.TrimPrefix(line, "RESULT ")
			t.Log(line)
		default:
			t.Log(line)
		}
	}
	if err := cmd.Wait(); err != nil {
		logs := node.Logs()
		t.Fatalf("browser test failed: %v\n%s\nwirelog's log (last 4 KB):\n%s", err, stderr.String(), logs[max(0, len(logs)-4096):])
	}
	if result == "" {
		t.Fatalf("browser test printed no RESULT line\n%s", stderr.String())
	}
}
