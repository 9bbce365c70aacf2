package syslog

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/freeport"
	"github.com/wirelog/wirelog/internal/parse/proxyproto"
	"github.com/wirelog/wirelog/internal/tlsconf/tlstest"
)

// TestProxyProtocolV1: with --syslog-proxy-protocol a plain TCP and a TLS
// connection that start with a PROXY v1 text line, written over a real
// TCP connection, are recorded with the client it names; a malformed
// line is refused and counted while the good connection goes on.
func TestProxyProtocolV1(t *testing.T) {
	rec := newRecorder(t)
	cfg := testConfig()
	cfg.UDPAddr = ""
	cfg.ProxyProtocol = true
	s := start(t, rec, cfg)
	c, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PROXY TCP6 2001:db8::9 2001:db8::1 40001 514\r\n<34>1 - h a - - - via v1\n")
	recs := rec.waitFor(t, 1, 5*time.Second)
	if recs[0].Message != "via v1" || recs[0].Attrs["client.address"] != "2001:db8::9" || recs[0].Attrs["client.port"] != float64(40001) {
		t.Fatalf("%+v, want the v1 header's client 2001:db8::9 port 40001", recs[0])
	}
	// A malformed line: refused, counted; the first connection still works.
	bad, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	fmt.Fprintf(bad, "PROXY TCP4 198.18.0.9 198.18.0.1 99999 514\r\n<34>1 - h a - - - not stored\n")
	waitUntil(t, func() bool {
		return metrics(t, s)["wirelog_syslog_connections_refused_total{reason=proxy_header}"] == 1
	}, "malformed v1 header refused and counted")
	fmt.Fprintf(c, "<34>1 - h a - - - still here\n")
	if recs := rec.waitFor(t, 2, 5*time.Second); recs[1].Message != "still here" {
		t.Fatalf("%+v", recs[1])
	}

	// TLS: the v1 line, then the handshake.
	f := startTLS(t, func(c *Config) { c.ProxyProtocol = true })
	raw, err := net.Dial("tcp", f.s.TLSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.Write(proxyproto.AppendV1(nil, &net.TCPAddr{IP: net.IPv4(198, 18, 0, 7), Port: 33334}, &net.TCPAddr{IP: net.IPv4(198, 18, 0, 1), Port: 6514}))
	tc := tls.Client(raw, f.clientTLS(t, f.ca, tlstest.Leaf{SPIFFEID: idSender}))
	io.WriteString(tc, frame("<34>1 - h a - - - v1 then TLS"))
	got := f.rec.waitFor(t, 1, 5*time.Second)
	if got[0].Attrs["client.address"] != "198.18.0.7" || got[0].Attrs["client.port"] != float64(33334) {
		t.Fatalf("attrs %v, want the v1 header's source 198.18.0.7:33334", got[0].Attrs)
	}
}

// TestHAProxy: Debian's HAProxy, the balancer no one here wrote, forwards
// syslog TCP connections to wirelog with a PROXY v1 header (send-proxy)
// on one frontend and a v2 header (send-proxy-v2) on another; each
// message is recorded with the address and port of the client that
// connected to HAProxy, not HAProxy's own.
func TestHAProxy(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("haproxy is needed: run scripts/deps/65-haproxy.sh (%v)", err)
	}
	rec := newRecorder(t)
	cfg := testConfig()
	cfg.UDPAddr = ""
	cfg.ProxyProtocol = true
	s := start(t, rec, cfg)
	dir := t.TempDir()
	v1, v2 := freeport.Port(t), freeport.Port(t)
	conf := fmt.Sprintf(`global
  maxconn 64
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend v1
  bind 127.0.0.1:%d
  default_backend wirelog-v1
frontend v2
  bind 127.0.0.1:%d
  default_backend wirelog-v2
backend wirelog-v1
  server w %s send-proxy
backend wirelog-v2
  server w %s send-proxy-v2
`, v1, v2, s.TCPAddr(), s.TCPAddr())
	confPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-db", "-f", confPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i, port := range []int{v1, v2} {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		var c net.Conn
		waitUntil(t, func() bool { c, err = net.Dial("tcp", addr); return err == nil }, "haproxy listening on "+addr+": "+out.String())
		client := c.LocalAddr().(*net.TCPAddr)
		msg := fmt.Sprintf("through haproxy send-proxy%s", map[int]string{0: "", 1: "-v2"}[i])
		fmt.Fprintf(c, "<34>1 - h a - - - %s\n", msg)
		c.Close()
		recs := rec.waitFor(t, i+1, 10*time.Second)
		got := recs[i]
		if got.Message != msg || got.Attrs["client.address"] != "127.0.0.1" || got.Attrs["client.port"] != float64(client.Port) {
			t.Fatalf("%s: %+v, want client.port %d (the client's, not haproxy's)\nhaproxy: %s", msg, got, client.Port, out.String())
		}
	}
	if n := metrics(t, s)["wirelog_syslog_connections_refused_total{reason=proxy_header}"]; n != 0 {
		t.Fatalf("%v HAProxy connections refused", n)
	}
}
