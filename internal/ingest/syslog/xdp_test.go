package syslog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/wirelog/wirelog/internal/xdp"
)

// xdpLab is two network namespaces joined by a veth pair: the client side
// and the pod side, whose veth stands in for an SR-IOV VF.
type xdpLab struct {
	cli, pod       string // namespace names
	podIf          string
	cliAddr, podIP string
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newXDPLab(t *testing.T) *xdpLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces and load XDP programs")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("iproute2 ip is not installed")
	}
	id := strconv.Itoa(os.Getpid() % 100000)
	l := &xdpLab{cli: "wlxc" + id, pod: "wlxp" + id, podIf: "wlxv" + id, cliAddr: "198.18.7.1", podIP: "198.18.7.2"}
	for _, ns := range []string{l.cli, l.pod} {
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() }) // deletes the veth with it
	}
	ipCmd(t, "link", "add", "wlxc"+id, "netns", l.cli, "type", "veth", "peer", "name", l.podIf, "netns", l.pod)
	ipCmd(t, "-n", l.cli, "addr", "add", l.cliAddr+"/30", "dev", "wlxc"+id)
	ipCmd(t, "-n", l.pod, "addr", "add", l.podIP+"/30", "dev", l.podIf)
	for _, c := range [][]string{{l.cli, "wlxc" + id}, {l.cli, "lo"}, {l.pod, l.podIf}, {l.pod, "lo"}} {
		ipCmd(t, "-n", c[0], "link", "set", c[1], "up")
	}
	return l
}

// inNS runs fn on a thread in the named namespace: sockets it opens stay
// in that namespace.
func inNS(t *testing.T, name string, fn func() error) error {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	h, err := netns.GetFromName(name)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		return err
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic("cannot return to the original network namespace: " + err.Error())
		}
	}()
	return fn()
}

// TestXDP receives syslog from util-linux logger through --syslog-xdp on
// the pod's veth: every message is produced with its fields and counted
// under transport="xdp", while a datagram to another UDP port still
// reaches an ordinary kernel socket (XDP_PASS). Close detaches the program.
func TestXDP(t *testing.T) {
	if _, err := exec.LookPath("logger"); err != nil {
		t.Skip("util-linux logger is not installed: run scripts/deps/40-syslog.sh")
	}
	l := newXDPLab(t)
	rec := newRecorder(t)
	cfg := testConfig()
	cfg.UDPAddr = "0.0.0.0:0"
	cfg.TCPAddr = ""
	cfg.UDPSockets = 1
	cfg.XDP = l.podIf
	var s *Server
	var other *net.UDPConn
	err := inNS(t, l.pod, func() error {
		var err error
		if s, err = Start(context.Background(), rec, cfg); err != nil {
			return err
		}
		other, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(l.podIP)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); other.Close() })
	port := strconv.Itoa(s.UDPAddr().(*net.UDPAddr).Port)

	const n = 20
	var want []string
	for i := 0; i < n; i++ {
		format := []string{"--rfc5424", "--rfc3164"}[i%2]
		msg := fmt.Sprintf("xdp message %d via %s", i, format)
		want = append(want, msg)
		args := []string{"netns", "exec", l.cli, "logger", "-d", "-n", l.podIP, "-P", port, format,
			"-t", "wl-xdp", "-p", "local4.warning", "--id=77"}
		if format == "--rfc5424" {
			args = append(args, "--msgid", "XM", "--sd-id", "zoo@32473", "--sd-param", `n="`+strconv.Itoa(i)+`"`)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, "ip", append(args, msg)...).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("logger: %v\n%s", err, out)
		}
	}
	recs := rec.waitFor(t, n, 10*time.Second)
	for i, msg := range want {
		var got *record
		for j := range recs {
			if recs[j].Message == msg {
				got = &recs[j]
			}
		}
		if got == nil {
			t.Errorf("message %q not produced; got %+v", msg, recs)
			continue
		}
		have := fmt.Sprintf("service=%s level=%s facility=%v severity=%v procid=%v", got.Service, got.Level,
			got.Attrs["facility"], got.Attrs["severity"], got.Attrs["procid"])
		if w := "service=wl-xdp level=warn facility=local4 severity=warning procid=77"; have != w {
			t.Errorf("message %d:\n got %s\nwant %s", i, have, w)
		}
		if got.Attrs["client.address"] != l.cliAddr {
			t.Errorf("message %d: client.address %v, want the sender %s (from the frame's IPv4 header)", i, got.Attrs["client.address"], l.cliAddr)
		}
		if i%2 == 0 {
			sd, _ := got.Attrs["sd"].(map[string]any)
			zoo, _ := sd["zoo@32473"].(map[string]any)
			if got.Attrs["msgid"] != "XM" || zoo["n"] != strconv.Itoa(i) {
				t.Errorf("message %d: attrs %v, want msgid XM and sd zoo@32473 n=%d", i, got.Attrs, i)
			}
		}
	}
	m := metrics(t, s)
	if m[`wirelog_syslog_accepted_total{transport=xdp}`] != n || m[`wirelog_syslog_messages_total{transport=udp}`] != 0 {
		t.Errorf("accepted through xdp %v (want %d), messages through the kernel UDP socket %v (want 0)",
			m[`wirelog_syslog_accepted_total{transport=xdp}`], n, m[`wirelog_syslog_messages_total{transport=udp}`])
	}
	if _, ok := m[`wirelog_syslog_xdp_ring_drops_total{queue=0}`]; !ok {
		t.Errorf("no wirelog_syslog_xdp_ring_drops_total{queue=0} in %v", m)
	}

	// Another port on the same interface goes to the kernel stack.
	otherPort := other.LocalAddr().(*net.UDPAddr).Port
	if err := inNS(t, l.cli, func() error {
		c, err := net.Dial("udp4", net.JoinHostPort(l.podIP, strconv.Itoa(otherPort)))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("not syslog"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	other.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	k, err := other.Read(buf)
	if err != nil || string(buf[:k]) != "not syslog" {
		t.Errorf("kernel socket on port %d: read %q, %v; want the datagram the XDP program passed", otherPort, buf[:k], err)
	}

	// Close detaches the program: the interface has no XDP program after it.
	s.Close()
	out, err := exec.Command("ip", "-n", l.pod, "link", "show", l.podIf).CombinedOutput()
	if err != nil || strings.Contains(string(out), "xdp") {
		t.Errorf("after Close, %s still shows an XDP program (%v):\n%s", l.podIf, err, out)
	}
}

// TestXDPErrors: a --syslog-xdp the machine cannot honour fails Start with
// an error naming the flag and what to fix.
func TestXDPErrors(t *testing.T) {
	cfg := testConfig()
	cfg.XDP = "wl-no-such-if0"
	_, err := Start(context.Background(), newRecorder(t), cfg)
	if err == nil || !strings.Contains(err.Error(), "--syslog-xdp wl-no-such-if0") ||
		!(errors.Is(err, xdp.ErrNoInterface) || errors.Is(err, xdp.ErrPermission)) {
		t.Fatalf("Start with a missing interface: %v; want an error naming --syslog-xdp and the interface", err)
	}
	if os.Geteuid() == 0 && !errors.Is(err, xdp.ErrNoInterface) {
		t.Errorf("as root: %v, want xdp.ErrNoInterface", err)
	}

	cfg = testConfig()
	cfg.UDPAddr = ""
	cfg.XDP = "lo"
	_, err = Start(context.Background(), newRecorder(t), cfg)
	if err == nil || !strings.Contains(err.Error(), "--syslog-xdp lo") || !strings.Contains(err.Error(), "--syslog-udp") {
		t.Fatalf("Start with --syslog-xdp and no --syslog-udp: %v; want an error naming both flags", err)
	}
}
