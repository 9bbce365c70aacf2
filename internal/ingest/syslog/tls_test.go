package syslog

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/freeport"
	"github.com/wirelog/wirelog/internal/parse/proxyproto"
	sysparse "github.com/wirelog/wirelog/internal/parse/syslog"
	"github.com/wirelog/wirelog/internal/tlsconf"
	"github.com/wirelog/wirelog/internal/tlsconf/tlstest"
)

const (
	idSender = "spiffe://cluster.local/ns/logs/sa/rsyslog"
	idOther  = "spiffe://cluster.local/ns/ui/sa/dashboard"
)

// tlsFixture is a syslog server with a TLS listener requiring client
// certificates from ca, senders allowed by SPIFFE ID.
type tlsFixture struct {
	ca  *tlstest.CA
	dir string
	rec *recorder
	s   *Server
	ts  *tlsconf.Server
}

func startTLS(t *testing.T, mod func(*Config)) *tlsFixture {
	f := &tlsFixture{ca: tlstest.NewCA(t, "syslog CA"), dir: t.TempDir(), rec: newRecorder(t)}
	crt, key := f.ca.Issue(t, tlstest.ServerLeaf("spiffe://cluster.local/ns/logs/sa/wirelog"))
	rule, err := tlsconf.ParseRule("ingest=spiffe://cluster.local/ns/logs/sa/*")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f.ts, err = tlsconf.NewServer(ctx, tlsconf.Options{
		CertFile:     tlstest.WriteFile(t, f.dir, "tls.crt", crt),
		KeyFile:      tlstest.WriteFile(t, f.dir, "tls.key", key),
		ClientCAFile: tlstest.WriteFile(t, f.dir, "ca.crt", f.ca.PEM),
		Allow:        tlsconf.Policy{rule},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.UDPAddr, cfg.TCPAddr = "", ""
	cfg.TLSAddr = "127.0.0.1:0"
	cfg.TLS = f.ts.RawConfig("syslog", tlsconf.RoleIngest)
	cfg.OnHandshakeError = func(err error) { f.ts.CountHandshakeError("syslog", err) }
	cfg.MaxMessage = 1024
	if mod != nil {
		mod(&cfg)
	}
	f.s = start(t, f.rec, cfg)
	return f
}

func (f *tlsFixture) clientTLS(t *testing.T, ca *tlstest.CA, leaf tlstest.Leaf) *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(f.ca.PEM)
	tc := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	if ca != nil {
		crt, key := ca.Issue(t, leaf)
		c, err := tls.X509KeyPair(crt, key)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc
}

// frame is an RFC 5425 frame: MSG-LEN SP SYSLOG-MSG.
func frame(msg string) string { return strconv.Itoa(len(msg)) + " " + msg }

// sendTLS writes the frames and reports the first error of the
// connection (a refused handshake shows on the first read or write).
func sendTLS(addr string, tc *tls.Config, data string) error {
	c, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := io.WriteString(c, data); err != nil {
		return err
	}
	// TLS 1.3: the server's verdict on our certificate arrives after our
	// handshake finished; a read shows it (EOF = accepted, closed by us later).
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil
	}
	return err
}

func TestTLSSyslog(t *testing.T) {
	f := startTLS(t, nil)
	addr := f.s.TLSAddr().String()
	good := f.clientTLS(t, f.ca, tlstest.Leaf{SPIFFEID: idSender})
	msg := "<34>1 2026-12-06T05:00:00Z web01 nginx 42 ID7 - hello over TLS"
	if err := sendTLS(addr, good, frame(msg)+frame(msg+" again")); err != nil {
		t.Fatalf("allowed sender: %v", err)
	}
	recs := f.rec.waitFor(t, 2, 5*time.Second)
	if recs[0].Message != "hello over TLS" || recs[0].Host != "web01" {
		t.Fatalf("record %+v", recs[0])
	}
	if recs[0].Attrs["client.address"] != "127.0.0.1" {
		t.Fatalf("client.address = %v, want 127.0.0.1 (attrs %v)", recs[0].Attrs["client.address"], recs[0].Attrs)
	}
	if p, ok := recs[0].Attrs["client.port"].(float64); !ok || p < 1 {
		t.Fatalf("client.port = %v", recs[0].Attrs["client.port"])
	}

	refused := func(name string, tc *tls.Config, raw bool) {
		t.Helper()
		before := metrics(t, f.s)["wirelog_syslog_connections_refused_total{reason=tls_handshake}"]
		var err error
		if raw {
			var c net.Conn
			c, err = net.Dial("tcp", addr)
			if err == nil {
				io.WriteString(c, frame(msg)+"\n")
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err = c.Read(make([]byte, 64))
				c.Close()
				if err == nil {
					err = fmt.Errorf("got bytes") // the TLS alert: refused all the same
				}
			}
		} else {
			err = sendTLS(addr, tc, frame(msg))
		}
		if err == nil {
			t.Errorf("%s: connection was not refused", name)
		}
		waitUntil(t, func() bool {
			return metrics(t, f.s)["wirelog_syslog_connections_refused_total{reason=tls_handshake}"] == before+1
		}, name+": refusal counted")
	}
	refused("plaintext", nil, true)
	refused("no client certificate", f.clientTLS(t, nil, tlstest.Leaf{}), false)
	refused("other CA", f.clientTLS(t, tlstest.NewCA(t, "other"), tlstest.Leaf{SPIFFEID: idSender}), false)
	refused("expired", f.clientTLS(t, f.ca, tlstest.Leaf{SPIFFEID: idSender, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}), false)
	refused("disallowed SPIFFE ID", f.clientTLS(t, f.ca, tlstest.Leaf{SPIFFEID: idOther}), false)

	// Bad frames: one over the limit (cut and counted), one truncated by
	// the sender closing; the connection and the listener go on.
	long := "<34>1 2026-12-06T05:00:00Z web01 nginx 42 ID7 - " + strings.Repeat("x", 2000)
	if err := sendTLS(addr, good, frame(long)+frame(msg+" after the long one")+"500 <34>1 cut short"); err != nil {
		t.Fatal(err)
	}
	recs = f.rec.waitFor(t, 5, 5*time.Second)
	if recs[3].Message != "hello over TLS after the long one" {
		t.Fatalf("message after an oversize frame: %+v", recs[3])
	}
	waitUntil(t, func() bool { return metrics(t, f.s)["wirelog_syslog_truncated_total{transport=tls}"] == 2 }, "oversize and truncated frames counted")
	if err := sendTLS(addr, good, frame(msg)); err != nil {
		t.Fatalf("listener after bad input: %v", err)
	}
	f.rec.waitFor(t, 6, 5*time.Second)
}

func TestConnectionLimits(t *testing.T) {
	f := startTLS(t, func(c *Config) { c.MaxConnsPerSrc = 2; c.MaxConns = 3 })
	addr := f.s.TLSAddr().String()
	good := f.clientTLS(t, f.ca, tlstest.Leaf{SPIFFEID: idSender})
	var open []*tls.Conn
	for i := 0; i < 2; i++ {
		c, err := tls.Dial("tcp", addr, good)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		open = append(open, c)
	}
	waitUntil(t, func() bool { return metrics(t, f.s)["wirelog_syslog_tls_connections_open"] == 2 }, "two open")
	if err := sendTLS(addr, good, frame("<34>1 - h a - - - third")); err == nil {
		t.Fatal("a third connection from the same source was accepted")
	}
	if metrics(t, f.s)["wirelog_syslog_connections_refused_total{reason=max_connections_per_source}"] != 1 {
		t.Fatal("per-source refusal not counted")
	}
	// The open ones still work.
	io.WriteString(open[0], frame("<34>1 - h a - - - still here"))
	if recs := f.rec.waitFor(t, 1, 5*time.Second); recs[0].Message != "still here" {
		t.Fatalf("%+v", recs[0])
	}
}

func TestProxyProtocol(t *testing.T) {
	f := startTLS(t, func(c *Config) { c.ProxyProtocol = true })
	addr := f.s.TLSAddr().String()
	good := f.clientTLS(t, f.ca, tlstest.Leaf{SPIFFEID: idSender})
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	hdr := proxyproto.AppendV2(nil, &net.TCPAddr{IP: net.IPv4(198, 18, 0, 9), Port: 33333}, &net.TCPAddr{IP: net.IPv4(198, 18, 0, 1), Port: 6514})
	if _, err := raw.Write(hdr); err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, good)
	io.WriteString(c, frame("<34>1 - h a - - - via the balancer"))
	recs := f.rec.waitFor(t, 1, 5*time.Second)
	if recs[0].Attrs["client.address"] != "198.18.0.9" || recs[0].Attrs["client.port"] != float64(33333) {
		t.Fatalf("attrs %v, want the PROXY header's source", recs[0].Attrs)
	}
	// Without the header: refused and counted.
	if err := sendTLS(addr, good, frame("<34>1 - h a - - - direct")); err == nil {
		t.Fatal("a connection without PROXY header was served")
	}
	waitUntil(t, func() bool {
		return metrics(t, f.s)["wirelog_syslog_connections_refused_total{reason=proxy_header}"] == 1
	}, "proxy refusal counted")
}

// TestRsyslogOverTLS: Debian's rsyslogd (omfwd with the OpenSSL stream
// driver, mutual TLS, octet-counted framing) forwards what it receives on
// a plain imptcp port to wirelog's TLS listener.
func TestRsyslogOverTLS(t *testing.T) {
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		t.Fatalf("rsyslogd not installed: run scripts/deps/60-tls.sh (%v)", err)
	}
	f := startTLS(t, nil)
	dir := t.TempDir()
	crt, key := f.ca.Issue(t, tlstest.Leaf{SPIFFEID: idSender})
	ca := tlstest.WriteFile(t, dir, "ca.crt", f.ca.PEM)
	crtF, keyF := tlstest.WriteFile(t, dir, "c.crt", crt), tlstest.WriteFile(t, dir, "c.key", key)
	in := freeport.Port(t)
	_, port, _ := net.SplitHostPort(f.s.TLSAddr().String())
	conf := fmt.Sprintf(`global(workDirectory=%q DefaultNetstreamDriver="ossl"
  DefaultNetstreamDriverCAFile=%q DefaultNetstreamDriverCertFile=%q DefaultNetstreamDriverKeyFile=%q)
module(load="imptcp")
input(type="imptcp" address="127.0.0.1" port="%d")
action(type="omfwd" target="127.0.0.1" port=%q protocol="tcp" TCP_Framing="octet-counted"
  StreamDriver="ossl" StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost"
  template="RSYSLOG_SyslogProtocol23Format")
`, dir, ca, crtF, keyF, in, port)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// rsyslogd's own output goes to a file, read only in failure messages.
	outPath := filepath.Join(dir, "rsyslogd.out")
	outF, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer outF.Close()
	rsyslogOut := func() string { b, _ := os.ReadFile(outPath); return string(b) }
	cmd := exec.Command(bin, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = outF, outF
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var c net.Conn
	waitUntil(t, func() bool {
		c, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(in))
		return err == nil
	}, "rsyslogd listening")
	if err != nil {
		t.Fatalf("rsyslogd: %v\n%s", err, rsyslogOut())
	}
	defer c.Close()
	const n = 50
	for i := 0; i < n; i++ {
		fmt.Fprintf(c, "<30>Dec  6 05:00:00 relay01 app[7]: line %d through rsyslog over TLS\n", i)
	}
	recs := f.rec.waitFor(t, n, 30*time.Second)
	seen := map[string]bool{}
	for _, r := range recs {
		// rsyslog keeps the space after "app[7]:" in MSG (RFC 3164 has no delimiter rule).
		seen[strings.TrimSpace(r.Message)] = true
		if r.Attrs["client.address"] != "127.0.0.1" {
			t.Fatalf("client.address %v", r.Attrs["client.address"])
		}
	}
	for i := 0; i < n; i++ {
		if m := fmt.Sprintf("line %d through rsyslog over TLS", i); !seen[m] {
			t.Fatalf("missing %q; got e.g. %+v (rsyslogd: %s)", m, recs[0], rsyslogOut())
		}
	}
	if metrics(t, f.s)["wirelog_syslog_tls_connections_total"] < 1 {
		t.Fatal("no TLS connection counted")
	}
}

func waitUntil(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUDPSenderAddress(t *testing.T) {
	rec := newRecorder(t)
	cfg := testConfig()
	cfg.TCPAddr = ""
	s := start(t, rec, cfg)
	c, err := net.Dial("udp", s.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "<34>1 2026-12-06T05:00:00Z web01 app - - [ex@1 k=\"v\"] over udp")
	recs := rec.waitFor(t, 1, 5*time.Second)
	local := c.LocalAddr().(*net.UDPAddr)
	if recs[0].Attrs["client.address"] != "127.0.0.1" || recs[0].Attrs["client.port"] != float64(local.Port) {
		t.Fatalf("attrs %v, want client.address 127.0.0.1 and client.port %d", recs[0].Attrs, local.Port)
	}
	if _, ok := recs[0].Attrs["sd"]; !ok {
		t.Fatalf("structured data lost when adding the sender: %v", recs[0].Attrs)
	}
}

// FuzzTLSFrames feeds a byte stream through a real TLS connection (the
// record layer splits and joins it arbitrarily) into the RFC 5425 frame
// reader. Its seeds run in go test; go test -fuzz=FuzzTLSFrames explores.
// Invariants: no panic, no message over the maximum, every byte of a
// well-formed frame sequence comes out as the messages put in.
func FuzzTLSFrames(f *testing.F) {
	f.Add([]byte("5 <1>ab3 <2>"), uint8(3))
	f.Add([]byte("2000 <34>1 - h a - - - x"), uint8(200))
	f.Add([]byte("<34>lf framed\n<35>two\n"), uint8(1))
	f.Add([]byte("99999999999 x"), uint8(7))
	ca := tlstest.NewCA(f, "fuzz")
	crt, key := ca.Issue(f, tlstest.ServerLeaf(""))
	cert, err := tls.X509KeyPair(crt, key)
	if err != nil {
		f.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		a, b := net.Pipe()
		srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{cert}})
		cli := tls.Client(b, &tls.Config{RootCAs: pool, ServerName: "localhost"})
		go func() {
			defer cli.Close()
			step := int(chunk)%64 + 1
			for i := 0; i < len(data); i += step {
				if _, err := cli.Write(data[i:min(i+step, len(data))]); err != nil {
					return
				}
			}
		}()
		defer srv.Close()
		const maxMsg = 512
		fr := sysparseFramer(srv, maxMsg)
		for {
			msg, _, err := fr.Next()
			if err != nil {
				break
			}
			if len(msg) > maxMsg {
				t.Fatalf("message of %d bytes over the %d maximum", len(msg), maxMsg)
			}
		}
	})
}

func sysparseFramer(r io.Reader, max int) *sysparse.Framer { return sysparse.NewFramer(r, max) }
