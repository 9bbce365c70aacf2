//go:build !agent

package main

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/wirelog/wirelog/internal/testproc"
)

// podNS is a network namespace standing in for a pod with a Multus
// secondary interface: net1 is one end of a veth pair (the SR-IOV VF's
// stand-in) with a 198.18.0.0/15 address; the other end stays in this
// namespace as the client's way in.
type podNS struct {
	name, hostIf  string
	podIP, hostIP string
}

func newPodNS(t *testing.T) *podNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root to create a network namespace and a veth pair (make test runs as root)")
	}
	id := strconv.Itoa(os.Getpid() % 100000)
	p := &podNS{name: "wlbn" + id, hostIf: "wlbh" + id, podIP: "198.18.60.2", hostIP: "198.18.60.1"}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", p.name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", p.name).Run() }) // takes the veth pair with it
	ip("link", "add", p.hostIf, "type", "veth", "peer", "name", "net1", "netns", p.name)
	ip("addr", "add", p.hostIP+"/30", "dev", p.hostIf)
	ip("link", "set", p.hostIf, "up")
	ip("-n", p.name, "addr", "add", p.podIP+"/30", "dev", "net1")
	ip("-n", p.name, "link", "set", "net1", "up")
	ip("-n", p.name, "link", "set", "lo", "up")
	return p
}

// dial connects from inside the namespace.
func (p *podNS) dial(network, addr string) (net.Conn, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, err
	}
	defer orig.Close()
	h, err := netns.GetFromName(p.name)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		return nil, err
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic("cannot return to the original network namespace: " + err.Error())
		}
	}()
	return net.DialTimeout(network, addr, 2*time.Second)
}

// writeNetworkStatus writes the file the kubelet projects from the pod's
// network-status annotation (the form of a volume item with fieldRef
// metadata.annotations: every annotation, one `key="value"` a line).
func writeNetworkStatus(t *testing.T, podIP string) string {
	t.Helper()
	status := fmt.Sprintf(`[{"name":"cbr0","interface":"eth0","ips":["10.244.1.17"],"default":true,"dns":{}},`+
		`{"name":"wirelog/wirelog-sriov","interface":"net1","ips":[%q],"mac":"a6:2b:6e:1d:91:04","dns":{},`+
		`"device-info":{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:3b:02.1"}}}]`, podIP)
	file := filepath.Join(t.TempDir(), "annotations")
	data := "k8s.v1.cni.cncf.io/networks=\"wirelog-sriov\"\n" +
		"k8s.v1.cni.cncf.io/network-status=" + strconv.Quote(status) + "\n"
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestBindNetworkListensOnTheSecondaryInterfaceOnly runs `wirelog run` in a
// pod-like network namespace with --bind-network: it must find net1's
// address in the downward-API file, serve HTTP ingest and syslog (UDP and
// TCP) there, reached over the veth from outside, and not listen on the
// pod's other addresses although --http says 0.0.0.0.
func TestBindNetworkListensOnTheSecondaryInterfaceOnly(t *testing.T) {
	p := newPodNS(t)
	status := writeNetworkStatus(t, p.podIP)
	n := &node{t: t, Proc: testproc.Start(t, "ip", "wirelog run in the pod namespace",
		"netns", "exec", p.name, wirelogBin, "run", "--http", "0.0.0.0:0", "--data", t.TempDir(),
		"--syslog-udp", ":0", "--syslog-tcp", "0.0.0.0:0",
		"--bind-network", "wirelog-sriov", "--network-status-file", status)}

	re := regexp.MustCompile(`http=http://198\.18\.60\.2:(\d+) .*syslog_udp=198\.18\.60\.2:(\d+) syslog_tcp=198\.18\.60\.2:(\d+)`)
	m := re.FindStringSubmatch(n.Logs())
	if m == nil {
		t.Fatalf("listeners not on net1's address 198.18.60.2:\n%s", n.Logs())
	}
	if !strings.Contains(n.Logs(), "interface=net1") {
		t.Fatalf("startup log does not name the interface:\n%s", n.Logs())
	}
	httpPort, udpPort, tcpPort := m[1], m[2], m[3]

	// Through the veth from outside: HTTP, syslog UDP, syslog TCP.
	run := fmt.Sprintf("bn%d", time.Now().UnixNano())
	code, body, _ := n.post("application/x-ndjson", "", []byte(`{"service":"bind","message":"`+run+` http over net1"}`+"\n"))
	if code != 202 {
		t.Fatalf("POST via net1: %d %v", code, body)
	}
	u, err := net.Dial("udp", net.JoinHostPort(p.podIP, udpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	c, err := net.DialTimeout("tcp", net.JoinHostPort(p.podIP, tcpPort), 5*time.Second)
	if err != nil {
		t.Fatalf("syslog TCP via net1: %v", err)
	}
	defer c.Close()
	w := bufio.NewWriter(c)
	fmt.Fprintf(w, "<134>1 %s pod bind - - - %s tcp over net1\n", time.Now().UTC().Format(time.RFC3339), run)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, what := range []string{"http", "udp", "tcp"} {
		testproc.Eventually(t, 30*time.Second, func() error {
			if what == "udp" { // UDP may be lost before the socket is read: resend until stored
				fmt.Fprintf(u, "<134>1 %s pod bind - - - %s udp over net1", time.Now().UTC().Format(time.RFC3339), run)
			}
			var res searchResult
			n.getJSON("/api/v1/logs/search?"+url.Values{"q": {run + " " + what + " over net1"}, "from": {"-1h"}}.Encode(), &res)
			if len(res.Events) == 0 {
				return fmt.Errorf("%s: not stored yet", what)
			}
			return nil
		})
	}

	// Inside the pod, loopback finds nothing on those ports: the listeners
	// are on net1 only, not on every address as --http 0.0.0.0 would be.
	for _, port := range []string{httpPort, tcpPort} {
		if conn, err := p.dial("tcp", net.JoinHostPort("127.0.0.1", port)); err == nil {
			conn.Close()
			t.Fatalf("port %s answers on the pod's loopback: not bound to net1 alone", port)
		}
		conn, err := p.dial("tcp", net.JoinHostPort(p.podIP, port))
		if err != nil {
			t.Fatalf("port %s not reachable on net1 from inside the pod: %v", port, err)
		}
		conn.Close()
	}
}

// TestBindNetworkUnknownNetworkFails: a pod whose annotation lacks the
// network must not start listening somewhere else; it exits with an error
// naming the flag and the networks it has.
func TestBindNetworkUnknownNetworkFails(t *testing.T) {
	status := writeNetworkStatus(t, "198.18.60.2")
	cmd := exec.Command(wirelogBin, "run", "--http", "127.0.0.1:0", "--data", t.TempDir(),
		"--syslog-udp", "", "--syslog-tcp", "",
		"--bind-network", "wirelog-dpdk", "--network-status-file", status, "--bind-network-wait", "1s")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("started without the network:\n%s", out)
	}
	for _, want := range []string{"--bind-network wirelog-dpdk", "wirelog/wirelog-sriov", status} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("error does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "running") {
		t.Fatalf("listeners were started:\n%s", out)
	}
}
