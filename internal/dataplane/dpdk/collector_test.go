package dpdk

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/dataplane/agent/agenttest"
)

// hangBound is far above the per-socket timeout the tests set; a scrape
// that takes this long is hung, which is the failure being tested for.
const hangBound = 20 * time.Second

func mustRegexp(t *testing.T, expr string) *regexp.Regexp {
	t.Helper()
	re, err := regexp.Compile(expr)
	if err != nil {
		t.Fatal(err)
	}
	return re
}

func TestCollectorParsesDPDK2311Replies(t *testing.T) {
	dir := t.TempDir()
	newFakeServer(t, dir, "pod-a", "dpdk_telemetry.v2", goodGreeting, dpdk2311)
	c := New(Options{RuntimeDirs: []string{dir}, SocketTimeout: time.Second})
	mfs, err := collectOnce(t, c, context.Background())
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	port := map[string]string{"file_prefix": "pod-a", "pid": "4242", "port": "0", "port_name": "0000:3b:00.0"}
	for name, want := range map[string]float64{
		"dpdk_ethdev_rx_packets_total": 18446744073709551615,
		"dpdk_ethdev_tx_packets_total": 7,
		"dpdk_ethdev_rx_bytes_total":   640,
		"dpdk_ethdev_tx_bytes_total":   448,
		"dpdk_ethdev_rx_missed_total":  3,
		"dpdk_ethdev_rx_errors_total":  1,
		"dpdk_ethdev_tx_errors_total":  2,
		"dpdk_ethdev_rx_nombuf_total":  5,
		"dpdk_ethdev_mtu_bytes":        9000,
		"dpdk_ethdev_rx_queues":        4,
		"dpdk_ethdev_started":          1,
		"dpdk_ethdev_link_up":          1,
		"dpdk_ethdev_link_speed_bytes": 25e9 / 8,
	} {
		if got, ok := mfs.Value(name, port); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if got, _ := mfs.Value("dpdk_ethdev_xstat_total", map[string]string{"name": "rx_q0_packets", "port_name": "0000:3b:00.0"}); got != 10 {
		t.Errorf("xstat rx_q0_packets = %v, want 10", got)
	}
	if _, ok := mfs.Value("dpdk_ethdev_info", map[string]string{"mac_address": "02:00:00:00:00:01", "numa_node": "1"}); !ok {
		t.Error("dpdk_ethdev_info with mac_address and numa_node missing")
	}
	if got, _ := mfs.Value("dpdk_lcore_busy_cycles_total", map[string]string{"lcore": "1"}); got != 900 {
		t.Errorf("lcore 1 busy cycles = %v, want 900", got)
	}
	if got, _ := mfs.Value("dpdk_lcore_cycles_total", map[string]string{"lcore": "2"}); got != 2000 {
		t.Errorf("lcore 2 total cycles = %v, want 2000", got)
	}
	if got, _ := mfs.Value("dpdk_heap_free_bytes", map[string]string{"heap": "0", "heap_name": "socket_0"}); got != 1<<29 {
		t.Errorf("heap free = %v, want %d", got, 1<<29)
	}
	if got, _ := mfs.Value("dpdk_process_info", map[string]string{"version": "DPDK 23.11.0", "socket": "dpdk_telemetry.v2"}); got != 1 {
		t.Error("dpdk_process_info missing")
	}
}

func TestCollectorXstatsFilter(t *testing.T) {
	dir := t.TempDir()
	newFakeServer(t, dir, "p", "dpdk_telemetry.v2", goodGreeting, dpdk2311)
	c := New(Options{RuntimeDirs: []string{dir}, Xstats: mustRegexp(t, "^rx_good_")})
	mfs, err := collectOnce(t, c, context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := mfs.Count("dpdk_ethdev_xstat_total", nil); n != 1 {
		t.Errorf("%d xstats exported, want only rx_good_packets", n)
	}
}

// TestCollectorBadSockets drives the collector against sockets that
// misbehave the ways a broken or hostile process can: each must be counted
// under its reason and reported down, the healthy process beside it must
// still be exported, and the scrape must end within the socket timeout.
func TestCollectorBadSockets(t *testing.T) {
	cases := []struct {
		name     string
		greeting string
		reply    func(string) (string, bool)
		reason   string
	}{
		{"truncated-json", goodGreeting, func(cmd string) (string, bool) { return `{"/": ["/ethdev/li`, true }, reasonProtocol},
		{"not-json", goodGreeting, func(string) (string, bool) { return "Segmentation fault", true }, reasonProtocol},
		{"never-answers", goodGreeting, func(string) (string, bool) { return "", false }, reasonTimeout},
		{"no-greeting", "", func(string) (string, bool) { return "", false }, reasonTimeout},
		{"greeting-not-json", "hello", dpdk2311, reasonProtocol},
		{"greeting-without-pid", `{"version":"x","max_output_len":16384}`, dpdk2311, reasonProtocol},
		{"wrong-key", goodGreeting, func(string) (string, bool) { return `{"/other":[]}`, true }, reasonProtocol},
		{"over-max-output-len", `{"version":"DPDK 22.11","pid":9,"max_output_len":64}`,
			func(string) (string, bool) { return `{"/":["` + strings.Repeat("x", 20000) + `"]}`, true }, reasonTruncated},
		{"bad-values-in-port-stats", goodGreeting, func(cmd string) (string, bool) {
			if strings.HasPrefix(cmd, "/ethdev/stats") {
				return `{"/ethdev/stats":{"ipackets":"many"}}`, true
			}
			return dpdk2311(cmd)
		}, reasonProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			newFakeServer(t, dir, "bad", "dpdk_telemetry.v2", tc.greeting, tc.reply)
			newFakeServer(t, dir, "good", "dpdk_telemetry.v2", goodGreeting, dpdk2311)
			c := New(Options{RuntimeDirs: []string{dir}, SocketTimeout: 300 * time.Millisecond})

			done := make(chan struct{})
			var (
				mfs  = agenttest.Families{}
				cerr error
			)
			go func() {
				defer close(done)
				m, err := collectOnce(t, c, context.Background())
				for k, v := range m {
					mfs[k] = v
				}
				cerr = err
			}()
			select {
			case <-done:
			case <-time.After(hangBound):
				t.Fatalf("scrape still running after %v with a %v socket timeout", hangBound, c.opts.SocketTimeout)
			}
			// A socket that answers badly is a process problem shown as
			// socket_up 0; one that accepts and never answers (a hung
			// process) also fails the collector, so the scrape reports
			// wirelog_dataplane_collector_success 0. Either way the good
			// process is exported below.
			hung := tc.reason == reasonTimeout
			switch {
			case hung && (cerr == nil || !strings.Contains(cerr.Error(), "did not answer in time")):
				t.Fatalf("a hung socket must fail the collector, got %v", cerr)
			case !hung && cerr != nil:
				t.Fatalf("a bad socket failed the whole collector: %v", cerr)
			}
			if got, _ := mfs.Value("wirelog_dataplane_dpdk_socket_errors_total", map[string]string{"reason": tc.reason}); got != 1 {
				t.Errorf("socket_errors_total{reason=%q} = %v, want 1", tc.reason, got)
			}
			partial := tc.name == "bad-values-in-port-stats"
			wantUp := 0.0
			if partial {
				wantUp = 1 // the process answered; only the odd reply was dropped
			}
			if got, ok := mfs.Value("wirelog_dataplane_dpdk_socket_up", map[string]string{"file_prefix": "bad"}); !ok || got != wantUp {
				t.Errorf("socket_up{file_prefix=bad} = %v (present %v), want %v", got, ok, wantUp)
			}
			if got, _ := mfs.Value("wirelog_dataplane_dpdk_socket_up", map[string]string{"file_prefix": "good"}); got != 1 {
				t.Errorf("the healthy process beside the bad one is down")
			}
			if _, ok := mfs.Value("dpdk_ethdev_rx_packets_total", map[string]string{"file_prefix": "good"}); !ok {
				t.Errorf("the healthy process's port counters are missing")
			}
			if n := mfs.Count("dpdk_ethdev_rx_packets_total", map[string]string{"file_prefix": "bad"}); n != 0 {
				t.Errorf("%d rx_packets series for the bad socket", n)
			}
			if partial {
				if _, ok := mfs.Value("dpdk_ethdev_xstat_total", map[string]string{"file_prefix": "bad"}); !ok {
					t.Errorf("the parts of the process that answered well were dropped with the bad reply")
				}
			}
		})
	}
}

// TestCollectorStaleSocket: a process killed with SIGKILL leaves its socket
// file behind; connecting is refused.
func TestCollectorStaleSocket(t *testing.T) {
	dir := t.TempDir()
	pdir := filepath.Join(dir, "crashed")
	os.MkdirAll(pdir, 0o755)
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: filepath.Join(pdir, "dpdk_telemetry.v2"), Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	c := New(Options{RuntimeDirs: []string{dir, filepath.Join(dir, "does-not-exist")}})
	for range 2 {
		mfs, err := collectOnce(t, c, context.Background())
		if err != nil {
			t.Fatalf("stale socket failed the collector: %v", err)
		}
		if got, ok := mfs.Value("wirelog_dataplane_dpdk_socket_up", map[string]string{"file_prefix": "crashed"}); !ok || got != 0 {
			t.Errorf("socket_up = %v (present %v), want 0", got, ok)
		}
	}
	mfs, _ := collectOnce(t, c, context.Background())
	if got, _ := mfs.Value("wirelog_dataplane_dpdk_socket_errors_total", map[string]string{"reason": reasonConnect}); got != 3 {
		t.Errorf("connect errors = %v after 3 scrapes, want 3", got)
	}
}

func TestCollectorUnreadableRuntimeDirFails(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	c := New(Options{RuntimeDirs: []string{f}})
	_, err := collectOnce(t, c, context.Background())
	if err == nil || !strings.Contains(err.Error(), "--dpdk-runtime-dir") {
		t.Fatalf("err = %v, want one naming --dpdk-runtime-dir", err)
	}
}

func TestDiscoverSuffixedSockets(t *testing.T) {
	dir := t.TempDir()
	newFakeServer(t, dir, "inmem", "dpdk_telemetry.v2", goodGreeting, dpdk2311)
	newFakeServer(t, dir, "inmem", "dpdk_telemetry.v2:1", goodGreeting, dpdk2311)
	newFakeServer(t, dir, "inmem", "dpdk_telemetry.v2:12", goodGreeting, dpdk2311)
	newFakeServer(t, dir, "other", "dpdk_telemetry", goodGreeting, dpdk2311)      // legacy v1 socket
	newFakeServer(t, dir, "other", "dpdk_telemetry.v2:x", goodGreeting, dpdk2311) // not DPDK's naming
	os.WriteFile(filepath.Join(dir, "other", "dpdk_telemetry.v2"), nil, 0o644)    // a file, not a socket
	socks, err := Discover([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range socks {
		names = append(names, s.FilePrefix+"/"+s.Name)
	}
	want := "inmem/dpdk_telemetry.v2 inmem/dpdk_telemetry.v2:1 inmem/dpdk_telemetry.v2:12"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("discovered %q, want %q", got, want)
	}
}

// TestQueryOneCommand: the single-command client answers with the value,
// and a null answer is ErrNoData.
func TestQueryOneCommand(t *testing.T) {
	dir := t.TempDir()
	s := newFakeServer(t, dir, "p", "dpdk_telemetry.v2", goodGreeting, dpdk2311)
	c, err := Dial(context.Background(), s.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if g := c.Greeting(); g.PID != 4242 || g.Version != "DPDK 23.11.0" || g.MaxOutputLen != 16384 {
		t.Errorf("greeting = %+v", g)
	}
	v, err := c.Query("/ethdev/list")
	if err != nil || string(v) != "[0]" {
		t.Errorf("Query(/ethdev/list) = %s, %v", v, err)
	}
	if _, err := c.Query("/nonexistent"); !errors.Is(err, ErrNoData) {
		t.Errorf("Query(/nonexistent) err = %v, want ErrNoData", err)
	}
}
