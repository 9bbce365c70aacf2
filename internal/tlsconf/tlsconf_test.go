package tlsconf_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wirelog/wirelog/internal/tlsconf"
	"github.com/wirelog/wirelog/internal/tlsconf/tlstest"
)

const (
	idShipper = "spiffe://cluster.local/ns/logs/sa/shipper"
	idReader  = "spiffe://cluster.local/ns/ui/sa/dashboard"
	idProm    = "spiffe://cluster.local/ns/monitoring/sa/prometheus"
	idStray   = "spiffe://cluster.local/ns/other/sa/intruder"
	idServer  = "spiffe://cluster.local/ns/logs/sa/wirelog"
)

// fixture is a running HTTPS server behind tlsconf, with the PKI around it.
type fixture struct {
	t      *testing.T
	dir    string
	ca     *tlstest.CA
	secret *tlstest.Secret // tls.crt, tls.key, ca.crt as a Secret volume
	srv    *tlsconf.Server
	reg    *prometheus.Registry
	addr   string
}

func rules(t *testing.T, ss ...string) tlsconf.Policy {
	var p tlsconf.Policy
	for _, s := range ss {
		r, err := tlsconf.ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		p = append(p, r)
	}
	return p
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, dir: t.TempDir(), ca: tlstest.NewCA(t, "cluster CA")}
	crt, key := f.ca.Issue(t, tlstest.ServerLeaf(idServer))
	f.secret = tlstest.NewSecret(t, f.dir+"/secret", map[string][]byte{"tls.crt": crt, "tls.key": key, "ca.crt": f.ca.PEM})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	opts := tlsconf.Options{
		CertFile: f.secret.Path("tls.crt"), KeyFile: f.secret.Path("tls.key"), ClientCAFile: f.secret.Path("ca.crt"),
		Allow:          rules(t, "ingest="+"spiffe://cluster.local/ns/logs/sa/*", "query="+idReader, "metrics="+idProm),
		ReloadInterval: 100 * time.Millisecond,
	}
	var err error
	f.srv, err = tlsconf.NewServer(ctx, opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f.reg = prometheus.NewRegistry()
	f.reg.MustRegister(f.srv.Collector())
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/logs", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintln(w, `{"accepted":1}`)
	})
	mux.HandleFunc("GET /api/v1/stats", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, `{"events":0}`) })
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "up 1") })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: f.srv.Authorize(mux), ErrorLog: f.srv.ErrorLog("http"), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(tls.NewListener(ln, f.srv.HTTPConfig("http")))
	t.Cleanup(func() { hs.Close() })
	f.addr = ln.Addr().String()
	return f
}

// client returns an HTTPS client trusting the fixture's CA and presenting
// a certificate for id from ca (nil ca: no client certificate).
func (f *fixture) client(ca *tlstest.CA, leaf tlstest.Leaf) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(f.ca.PEM)
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	if ca != nil {
		crt, key := ca.Issue(f.t, leaf)
		c, err := tls.X509KeyPair(crt, key)
		if err != nil {
			f.t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

func (f *fixture) count(result string) float64 {
	return testutil.ToFloat64(mustVec(f.t, f.reg, "wirelog_tls_handshakes_total", map[string]string{"listener": "http", "result": result}))
}

// mustVec finds one series by name and labels in a registry.
func mustVec(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) prometheus.Collector {
	return gaugeFunc(func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		next:
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
						continue next
					}
				}
				if m.Counter != nil {
					return m.Counter.GetValue()
				}
				return m.Gauge.GetValue()
			}
		}
		return 0
	})
}

type gaugeFunc func() float64

func (g gaugeFunc) Describe(ch chan<- *prometheus.Desc) {
	prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x", Help: "x"}, g).Describe(ch)
}
func (g gaugeFunc) Collect(ch chan<- prometheus.Metric) {
	prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x", Help: "x"}, g).Collect(ch)
}

func post(c *http.Client, url string) (int, string, error) {
	resp, err := c.Post(url, "application/x-ndjson", strings.NewReader(`{"message":"hi"}`+"\n"))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func get(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func TestRefusesWhoItDoesNotKnow(t *testing.T) {
	f := newFixture(t)
	base := "https://" + f.addr

	t.Run("plaintext", func(t *testing.T) {
		before := f.count(tlsconf.ResultError)
		resp, err := http.Post("http://"+f.addr+"/api/v1/logs", "application/x-ndjson", strings.NewReader("{}\n"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Fatalf("plaintext request served: %d", resp.StatusCode)
			}
		}
		waitFor(t, func() bool { return f.count(tlsconf.ResultError) > before }, "handshake_error counted")
	})
	t.Run("no client certificate", func(t *testing.T) {
		before := f.count(tlsconf.ResultNoClientCert)
		if code, _, err := post(f.client(nil, tlstest.Leaf{}), base+"/api/v1/logs"); err == nil {
			t.Fatalf("served without a client certificate: %d", code)
		}
		waitFor(t, func() bool { return f.count(tlsconf.ResultNoClientCert) == before+1 }, "no_client_cert counted")
	})
	t.Run("other CA", func(t *testing.T) {
		other := tlstest.NewCA(t, "someone else's CA")
		if code, _, err := post(f.client(other, tlstest.Leaf{SPIFFEID: idShipper}), base+"/api/v1/logs"); err == nil {
			t.Fatalf("served a certificate from another CA: %d", code)
		}
		waitFor(t, func() bool { return f.count(tlsconf.ResultUnknownCA) == 1 }, "unknown_ca counted")
	})
	t.Run("expired", func(t *testing.T) {
		leaf := tlstest.Leaf{SPIFFEID: idShipper, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}
		if code, _, err := post(f.client(f.ca, leaf), base+"/api/v1/logs"); err == nil {
			t.Fatalf("served an expired certificate: %d", code)
		}
		waitFor(t, func() bool { return f.count(tlsconf.ResultExpired) == 1 }, "expired counted")
	})
	t.Run("disallowed ID gets 403", func(t *testing.T) {
		code, body, err := post(f.client(f.ca, tlstest.Leaf{SPIFFEID: idStray}), base+"/api/v1/logs")
		if err != nil || code != http.StatusForbidden || !strings.Contains(body, idStray) {
			t.Fatalf("want 403 naming %s, got %d %q %v", idStray, code, body, err)
		}
		if f.count(tlsconf.ResultDenied) != 1 {
			t.Fatalf("spiffe_denied = %v, want 1", f.count(tlsconf.ResultDenied))
		}
	})
	t.Run("certificate without SPIFFE ID gets 403", func(t *testing.T) {
		code, body, err := post(f.client(f.ca, tlstest.Leaf{DNS: []string{"shipper"}}), base+"/api/v1/logs")
		if err != nil || code != http.StatusForbidden || !strings.Contains(body, "SPIFFE") {
			t.Fatalf("want 403 about the missing SPIFFE ID, got %d %q %v", code, body, err)
		}
	})
}

func TestRolesPerRoute(t *testing.T) {
	f := newFixture(t)
	base := "https://" + f.addr
	shipper := f.client(f.ca, tlstest.Leaf{SPIFFEID: idShipper})
	reader := f.client(f.ca, tlstest.Leaf{SPIFFEID: idReader})
	prom := f.client(f.ca, tlstest.Leaf{SPIFFEID: idProm})
	for _, c := range []struct {
		name   string
		client *http.Client
		do     func(*http.Client, string) (int, string, error)
		path   string
		want   int
	}{
		{"shipper sends", shipper, post, "/api/v1/logs", http.StatusAccepted},
		{"shipper cannot read", shipper, get, "/api/v1/stats", http.StatusForbidden},
		{"shipper cannot scrape", shipper, get, "/metrics", http.StatusForbidden},
		{"reader reads", reader, get, "/api/v1/stats", http.StatusOK},
		{"reader cannot send", reader, post, "/api/v1/logs", http.StatusForbidden},
		{"prometheus scrapes", prom, get, "/metrics", http.StatusOK},
		{"prometheus cannot read", prom, get, "/api/v1/stats", http.StatusForbidden},
		{"health for any allowed ID", shipper, get, "/healthz", http.StatusOK},
	} {
		code, body, err := c.do(c.client, base+c.path)
		if err != nil || code != c.want {
			t.Errorf("%s: %s → %d %q %v, want %d", c.name, c.path, code, body, err, c.want)
		}
	}
	if n := testutil.ToFloat64(mustVec(t, f.reg, "wirelog_tls_requests_denied_total", map[string]string{"role": "query"})); n != 2 {
		t.Errorf("denied query requests = %v, want 2", n)
	}
	exp := testutil.ToFloat64(mustVec(t, f.reg, "wirelog_tls_cert_expiry_timestamp_seconds", map[string]string{"cert": "serving"}))
	if d := time.Until(time.Unix(int64(exp), 0)); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("serving certificate expiry gauge %v is %v away, want about a day", exp, d)
	}
}

func TestRotation(t *testing.T) {
	f := newFixture(t)
	base := "https://" + f.addr
	shipper := f.client(f.ca, tlstest.Leaf{SPIFFEID: idShipper})
	if code, _, err := post(shipper, base+"/api/v1/logs"); err != nil || code != http.StatusAccepted {
		t.Fatalf("before rotation: %d %v", code, err)
	}
	serialOf := func() string {
		c, err := tls.Dial("tcp", f.addr, shipperTLS(t, f))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	old := serialOf()

	// cert-manager renews the serving certificate: the ..data swap.
	crt, key := f.ca.Issue(t, tlstest.ServerLeaf(idServer))
	f.secret.Update(t, map[string][]byte{"tls.crt": crt, "tls.key": key, "ca.crt": f.ca.PEM})
	newSerial := leafSerial(t, crt)
	waitFor(t, func() bool { return serialOf() == newSerial }, "a new connection sees the new certificate")
	if old == newSerial {
		t.Fatal("test bug: same serial")
	}
	// A half-written rotation (the new certificate with the old key) does
	// not load: the previous pair stays in use and the error is counted.
	crtBad, _ := f.ca.Issue(t, tlstest.ServerLeaf(idServer))
	f.secret.Update(t, map[string][]byte{"tls.crt": crtBad, "tls.key": key, "ca.crt": f.ca.PEM})
	reloadErrs := mustVec(t, f.reg, "wirelog_tls_reloads_total", map[string]string{"result": "error"})
	waitFor(t, func() bool { return testutil.ToFloat64(reloadErrs) >= 1 }, "the failed reload counted")
	if got := serialOf(); got != newSerial {
		t.Fatalf("after a failed reload the server presents %s, want the last good %s", got, newSerial)
	}
	f.secret.Update(t, map[string][]byte{"tls.crt": crt, "tls.key": key, "ca.crt": f.ca.PEM})

	// The keep-alive connection opened before the swap still works.
	if code, _, err := post(shipper, base+"/api/v1/logs"); err != nil || code != http.StatusAccepted {
		t.Fatalf("old connection after rotation: %d %v", code, err)
	}

	// The CA is rotated: certificates of the old CA are no longer trusted
	// on new connections.
	ca1 := f.ca
	ca2 := tlstest.NewCA(t, "cluster CA 2")
	crt2, key2 := ca2.Issue(t, tlstest.ServerLeaf(idServer))
	f.secret.Update(t, map[string][]byte{"tls.crt": crt2, "tls.key": key2, "ca.crt": ca2.PEM})
	f.ca = ca2 // clients trust the new CA for the server from now on
	fresh := f.client(ca2, tlstest.Leaf{SPIFFEID: idShipper})
	waitFor(t, func() bool { code, _, err := post(fresh, base+"/api/v1/logs"); return err == nil && code == 202 }, "the new CA's clients are served")
	before := f.count(tlsconf.ResultUnknownCA)
	stale := f.client(ca1, tlstest.Leaf{SPIFFEID: idShipper})
	if code, _, err := post(stale, base+"/api/v1/logs"); err == nil {
		t.Fatalf("a certificate of the rotated-out CA was served: %d", code)
	}
	if f.count(tlsconf.ResultUnknownCA) != before+1 {
		t.Fatal("the rotated-out CA's certificate was not counted as unknown_ca")
	}
}

// shipperTLS is a raw TLS client config presenting a shipper SVID of f.ca
// and trusting f.ca.
func shipperTLS(t *testing.T, f *fixture) *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(f.ca.PEM)
	crt, key := f.ca.Issue(t, tlstest.Leaf{SPIFFEID: idShipper})
	c, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{c}, ServerName: "localhost"}
}

func leafSerial(t *testing.T, crt []byte) string {
	b, _ := pem.Decode(crt)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPeersNoOneHereWrote: curl and openssl s_client with client
// certificates, against the same listener.
func TestCurlAndOpenSSL(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	ca := tlstest.WriteFile(t, dir, "ca.crt", f.ca.PEM)
	crt, key := f.ca.Issue(t, tlstest.Leaf{SPIFFEID: idShipper})
	crtF, keyF := tlstest.WriteFile(t, dir, "c.crt", crt), tlstest.WriteFile(t, dir, "c.key", key)
	scrt, skey := f.ca.Issue(t, tlstest.Leaf{SPIFFEID: idStray})
	scrtF, skeyF := tlstest.WriteFile(t, dir, "s.crt", scrt), tlstest.WriteFile(t, dir, "s.key", skey)

	curl := func(args ...string) string {
		out, err := exec.Command("curl", append([]string{"-sS", "--max-time", "10", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code} %{ssl_verify_result}"}, args...)...).CombinedOutput()
		if err != nil {
			return "error: " + strings.TrimSpace(string(out))
		}
		return string(out)
	}
	url := "https://localhost:" + portOf(f.addr) + "/api/v1/logs"
	if got := curl("--cert", crtF, "--key", keyF, "--data-binary", `{"message":"from curl"}`, url); got != "202 0" {
		t.Errorf("curl with the shipper's SVID: %s, want 202 0", got)
	}
	if got := curl("--cert", scrtF, "--key", skeyF, "--data-binary", "{}", url); got != "403 0" {
		t.Errorf("curl with a disallowed SVID: %s, want 403 0", got)
	}
	if got := curl("--data-binary", "{}", url); !strings.HasPrefix(got, "error") && !strings.HasPrefix(got, "000") {
		t.Errorf("curl without a client certificate: %s, want a TLS failure", got)
	}

	sclient := func(args ...string) (string, error) {
		cmd := exec.Command("openssl", append([]string{"s_client", "-connect", f.addr, "-servername", "localhost", "-CAfile", ca, "-verify_return_error", "-tls1_3"}, args...)...)
		cmd.Stdin = strings.NewReader("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := sclient("-cert", crtF, "-key", keyF, "-ign_eof")
	if err != nil || !strings.Contains(out, "Verify return code: 0 (ok)") || !strings.Contains(out, "TLSv1.3") || !strings.Contains(out, "HTTP/1.1 200") {
		t.Errorf("openssl s_client with a client certificate: err %v\n%s", err, out)
	}
	if got := f.count(tlsconf.ResultOK); got < 2 {
		t.Errorf("ok handshakes = %v after curl and openssl, want at least 2", got)
	}
	before := f.count(tlsconf.ResultNoClientCert)
	out, _ = sclient("-ign_eof")
	if strings.Contains(out, "HTTP/1.1 200") {
		t.Errorf("openssl s_client without a client certificate was served:\n%s", out)
	}
	waitFor(t, func() bool { return f.count(tlsconf.ResultNoClientCert) == before+1 }, "no_client_cert counted for openssl")
	// TLS 1.1 is refused outright.
	cmd := exec.Command("openssl", "s_client", "-connect", f.addr, "-tls1_1", "-cert", crtF, "-key", keyF)
	cmd.Stdin = strings.NewReader("")
	if out, err := cmd.CombinedOutput(); err == nil && strings.Contains(string(out), "Cipher is") && !strings.Contains(string(out), "Cipher is (NONE)") {
		t.Errorf("TLS 1.1 handshake succeeded:\n%s", out)
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

var _ = errors.New
var _ = os.Getenv

// TestClientRotation: a client built with NewClient presents the client
// certificate current on disk on each new connection (DialContext), and
// trusts a rotated CA without being rebuilt.
func TestClientRotation(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	crt, key := f.ca.Issue(t, tlstest.Leaf{SPIFFEID: idShipper})
	sec := tlstest.NewSecret(t, dir+"/client", map[string][]byte{"tls.crt": crt, "tls.key": key, "ca.crt": f.ca.PEM})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl, err := tlsconf.NewClient(ctx, tlsconf.ClientOptions{CAFile: sec.Path("ca.crt"), CertFile: sec.Path("tls.crt"), KeyFile: sec.Path("tls.key")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The server's view of the client: which certificate did it get?
	hc := &http.Client{Transport: &http.Transport{DialTLSContext: cl.DialContext(&net.Dialer{}), DisableKeepAlives: true}}
	if code, _, err := post(hc, "https://"+f.addr+"/api/v1/logs"); err != nil || code != 202 {
		t.Fatalf("client before rotation: %d %v", code, err)
	}
	// Rotate the client certificate to an ID the server does not allow:
	// the next connection presents it and gets 403, proving it was used.
	crt2, key2 := f.ca.Issue(t, tlstest.Leaf{SPIFFEID: idStray})
	sec.Update(t, map[string][]byte{"tls.crt": crt2, "tls.key": key2, "ca.crt": f.ca.PEM})
	waitFor(t, func() bool {
		code, _, err := post(hc, "https://"+f.addr+"/api/v1/logs")
		return err == nil && code == 403
	}, "the rotated client certificate presented")
	if _, err := tlsconf.NewClient(ctx, tlsconf.ClientOptions{CertFile: sec.Path("tls.crt"), FlagPrefix: "--kafka-tls"}, nil); err == nil || !strings.Contains(err.Error(), "--kafka-tls-cert and --kafka-tls-key") {
		t.Fatalf("cert without key: %v, want an error naming the flags", err)
	}
}
