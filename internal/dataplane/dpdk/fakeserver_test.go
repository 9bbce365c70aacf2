package dpdk

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wirelog/wirelog/internal/dataplane/agent/agenttest"
)

// fakeServer speaks the telemetry v2 socket protocol (SOCK_SEQPACKET, a
// greeting, one reply message per command) with scripted answers, for the
// misbehaviours a real DPDK process cannot be made to show on demand and
// for the DPDK 23.03+ replies (/eal/lcore/usage) the 22.11 here lacks.
type fakeServer struct {
	path     string
	ln       *net.UnixListener
	greeting string
	// reply answers one command; ok=false sends nothing (a hung process).
	reply func(cmd string) (msg string, ok bool)

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// newFakeServer listens at <runtimeDir>/<prefix>/<name>.
func newFakeServer(t *testing.T, runtimeDir, prefix, name, greeting string, reply func(string) (string, bool)) *fakeServer {
	t.Helper()
	dir := filepath.Join(runtimeDir, prefix)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatalf("listen %s: %v", path, err)
	}
	s := &fakeServer{path: path, ln: ln, greeting: greeting, reply: reply}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func (s *fakeServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if s.greeting != "" {
				if _, err := c.Write([]byte(s.greeting)); err != nil {
					return
				}
			}
			buf := make([]byte, 1024)
			for {
				n, err := c.Read(buf)
				if err != nil || n == 0 {
					return
				}
				if msg, ok := s.reply(string(buf[:n])); ok {
					if _, err := c.Write([]byte(msg)); err != nil {
						return
					}
				}
			}
		}()
	}
}

func (s *fakeServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

const goodGreeting = `{"version":"DPDK 23.11.0","pid":4242,"max_output_len":16384}`

// dpdk2311 answers like a DPDK 23.11 process with one port and an lcore
// usage callback registered.
func dpdk2311(cmd string) (string, bool) {
	name, _, _ := strings.Cut(cmd, ",")
	var v any
	switch cmd {
	case "/":
		v = []string{"/", "/ethdev/list", "/ethdev/stats", "/ethdev/xstats", "/ethdev/info", "/ethdev/link_status",
			"/eal/heap_list", "/eal/heap_info", "/eal/lcore/usage", "/help", "/info"}
	case "/ethdev/list":
		v = []int{0}
	case "/ethdev/stats,0":
		v = map[string]any{"ipackets": uint64(18446744073709551615), "opackets": 7, "ibytes": 640, "obytes": 448,
			"imissed": 3, "ierrors": 1, "oerrors": 2, "rx_nombuf": 5, "q_ipackets": []int{10, 0}}
	case "/ethdev/xstats,0":
		v = map[string]any{"rx_good_packets": 10, "rx_q0_packets": 10}
	case "/ethdev/info,0":
		v = map[string]any{"name": "0000:3b:00.0", "mac_addr": "02:00:00:00:00:01", "mtu": 9000, "numa_node": 1,
			"nb_rx_queues": 4, "nb_tx_queues": 4, "dev_started": 1, "promiscuous": 0}
	case "/ethdev/link_status,0":
		v = map[string]any{"status": "UP", "speed": 25000, "duplex": "full-duplex"}
	case "/eal/heap_list":
		v = []int{0}
	case "/eal/heap_info,0":
		v = map[string]any{"Head_id": 0, "Name": "socket_0", "Heap_size": 1 << 30, "Free_size": 1 << 29,
			"Alloc_size": 1 << 29, "Greatest_free_size": 1 << 28, "Alloc_count": 100, "Free_count": 2}
	case "/eal/lcore/usage":
		v = map[string]any{"lcore_ids": []int{1, 2}, "total_cycles": []uint64{1000, 2000},
			"busy_cycles": []uint64{900, 100}, "usage_ratio": []string{"90.00%", "5.00%"}}
	}
	b, _ := json.Marshal(map[string]any{name: v})
	return string(b), true
}

// collectOnce runs the collector once through a pedantic registry.
func collectOnce(t *testing.T, c *Collector, ctx context.Context) (agenttest.Families, error) {
	t.Helper()
	return agenttest.Collect(t, ctx, c)
}
