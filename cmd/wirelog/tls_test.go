//go:build !agent

package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/testproc"
	"github.com/wirelog/wirelog/internal/tlsconf/tlstest"
)

const (
	spiffeShipper = "spiffe://cluster.local/ns/logs/sa/shipper"
	spiffeReader  = "spiffe://cluster.local/ns/ui/sa/dashboard"
	spiffeProm    = "spiffe://cluster.local/ns/monitoring/sa/prometheus"
	spiffeWirelog = "spiffe://cluster.local/ns/logs/sa/wirelog"
)

// mtlsNode is a `wirelog run` with mutual TLS on every listener.
type mtlsNode struct {
	*testproc.Proc
	ca        *tlstest.CA
	secret    *tlstest.Secret
	plainURL  string // --metrics-plaintext
	syslogTLS string
}

func (m *mtlsNode) client(t *testing.T, ca *tlstest.CA, leaf tlstest.Leaf) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(m.ca.PEM)
	tc := &tls.Config{RootCAs: pool}
	if ca != nil {
		crt, key := ca.Issue(t, leaf)
		c, err := tls.X509KeyPair(crt, key)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

var (
	plainRE     = regexp.MustCompile(`metrics_plaintext=(http://[0-9.:]+)`)
	syslogTLSRE = regexp.MustCompile(`syslog_tls=([0-9.:]+)`)
)

func startMTLS(t *testing.T, extra ...string) *mtlsNode {
	m := &mtlsNode{ca: tlstest.NewCA(t, "cluster CA")}
	crt, key := m.ca.Issue(t, tlstest.ServerLeaf(spiffeWirelog))
	m.secret = tlstest.NewSecret(t, t.TempDir()+"/tls", map[string][]byte{"tls.crt": crt, "tls.key": key, "ca.crt": m.ca.PEM})
	probe := m.client(t, m.ca, tlstest.Leaf{SPIFFEID: spiffeProm})
	m.Proc = testproc.StartWith(t, wirelogBin, "wirelog run (mTLS)", probe, append([]string{
		"run", "--http", "127.0.0.1:0", "--data", t.TempDir(), "--syslog-udp", "", "--syslog-tcp", "",
		"--tls-cert", m.secret.Path("tls.crt"), "--tls-key", m.secret.Path("tls.key"), "--tls-client-ca", m.secret.Path("ca.crt"),
		"--allow-spiffe-id", "ingest=spiffe://cluster.local/ns/logs/sa/*",
		"--allow-spiffe-id", "query=" + spiffeReader,
		"--allow-spiffe-id", "metrics=" + spiffeProm,
		"--metrics-plaintext", "127.0.0.1:0", "--syslog-tls", "127.0.0.1:0"},
		extra...)...)
	if !strings.HasPrefix(m.URL, "https://") {
		t.Fatalf("URL %q is not https", m.URL)
	}
	if mm := plainRE.FindStringSubmatch(m.Logs()); mm != nil {
		m.plainURL = mm[1]
	} else {
		t.Fatalf("no metrics_plaintext address in the log:\n%s", m.Logs())
	}
	if mm := syslogTLSRE.FindStringSubmatch(m.Logs()); mm != nil {
		m.syslogTLS = mm[1]
	} else {
		t.Fatalf("no syslog_tls address in the log:\n%s", m.Logs())
	}
	return m
}

func doTLS(c *http.Client, method, u, ct, body string) (int, string, error) {
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestMutualTLSEndToEnd: the real binary with --tls-cert, --tls-client-ca
// and per-role --allow-spiffe-id: HTTP ingest, OTLP, query, tail, /metrics
// and syslog over TLS each refuse what they must and serve the right ID;
// the plaintext metrics port serves only the scrape and the probes.
func TestMutualTLSEndToEnd(t *testing.T) {
	m := startMTLS(t)
	run := fmt.Sprintf("mtls%d", time.Now().UnixNano())
	shipper := m.client(t, m.ca, tlstest.Leaf{SPIFFEID: spiffeShipper})
	reader := m.client(t, m.ca, tlstest.Leaf{SPIFFEID: spiffeReader})
	stray := m.client(t, m.ca, tlstest.Leaf{SPIFFEID: "spiffe://cluster.local/ns/other/sa/x"})
	other := m.client(t, tlstest.NewCA(t, "other CA"), tlstest.Leaf{SPIFFEID: spiffeShipper})
	expired := m.client(t, m.ca, tlstest.Leaf{SPIFFEID: spiffeShipper, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	anon := m.client(t, nil, tlstest.Leaf{})

	// The live tail is open before anything is sent.
	tailReq, _ := http.NewRequest("GET", m.URL+"/api/v1/tail?service=mtls-"+run, nil)
	tailResp, err := reader.Do(tailReq)
	if err != nil || tailResp.StatusCode != 200 {
		t.Fatalf("tail as the reader: %v %v", tailResp, err)
	}
	defer tailResp.Body.Close()
	sawTail := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(tailResp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") && strings.Contains(sc.Text(), run) {
				sawTail <- sc.Text()
				return
			}
		}
	}()

	ndjson := fmt.Sprintf(`{"message":"%s over mtls","service":"mtls-%s"}`+"\n", run, run)
	otlp := fmt.Sprintf(`{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"mtls-%s"}}]},"scopeLogs":[{"logRecords":[{"body":{"stringValue":"%s otlp over mtls"}}]}]}]}`, run, run)
	for _, c := range []struct {
		name   string
		client *http.Client
		method string
		path   string
		ct     string
		body   string
		want   int // 0 = the connection must fail
	}{
		{"ingest: shipper", shipper, "POST", "/api/v1/logs", "application/x-ndjson", ndjson, 202},
		{"otlp: shipper", shipper, "POST", "/v1/logs", "application/json", otlp, 200},
		{"ingest: reader is no sender", reader, "POST", "/api/v1/logs", "application/x-ndjson", ndjson, 403},
		{"otlp: disallowed ID", stray, "POST", "/v1/logs", "application/json", otlp, 403},
		{"query: shipper is no reader", shipper, "GET", "/api/v1/stats", "", "", 403},
		{"tail: shipper is no reader", shipper, "GET", "/api/v1/tail", "", "", 403},
		{"metrics: reader is no scraper", reader, "GET", "/metrics", "", "", 403},
		{"ingest: no client certificate", anon, "POST", "/api/v1/logs", "application/x-ndjson", ndjson, 0},
		{"ingest: other CA", other, "POST", "/api/v1/logs", "application/x-ndjson", ndjson, 0},
		{"ingest: expired", expired, "POST", "/api/v1/logs", "application/x-ndjson", ndjson, 0},
		{"query: other CA", other, "GET", "/api/v1/stats", "", "", 0},
	} {
		code, body, err := doTLS(c.client, c.method, m.URL+c.path, c.ct, c.body)
		switch {
		case c.want == 0 && err == nil:
			t.Errorf("%s: served (%d), want the TLS handshake refused", c.name, code)
		case c.want != 0 && (err != nil || code != c.want):
			t.Errorf("%s: %d %q %v, want %d", c.name, code, body, err, c.want)
		case c.want == 403 && !strings.Contains(body, "SPIFFE ID"):
			t.Errorf("%s: 403 body %q does not say which SPIFFE ID", c.name, body)
		}
	}
	// Plaintext on the TLS port is not served.
	if code, _, err := doTLS(http.DefaultClient, "POST", strings.Replace(m.URL, "https://", "http://", 1)+"/api/v1/logs", "application/x-ndjson", ndjson); err == nil && code < 400 {
		t.Errorf("plaintext request on the TLS port answered %d", code)
	}

	// Syslog over TLS through the binary, from the shipper.
	tc := &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "localhost"}
	tc.RootCAs.AppendCertsFromPEM(m.ca.PEM)
	crt, key := m.ca.Issue(t, tlstest.Leaf{SPIFFEID: spiffeShipper})
	kp, _ := tls.X509KeyPair(crt, key)
	tc.Certificates = []tls.Certificate{kp}
	sc, err := tls.Dial("tcp", m.syslogTLS, tc)
	if err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprintf("<134>1 %s relay mtls-%s - - - %s syslog over tls", time.Now().UTC().Format(time.RFC3339), run, run)
	io.WriteString(sc, strconv.Itoa(len(msg))+" "+msg)
	sc.Close()

	// The reader finds all three, the syslog one with the sender's address.
	eventually(t, 30*time.Second, func() error {
		q := url.Values{"service": {"mtls-" + run}, "from": {"-1h"}}
		code, body, err := doTLS(reader, "GET", m.URL+"/api/v1/logs/search?"+q.Encode(), "", "")
		if err != nil || code != 200 {
			return fmt.Errorf("search: %d %v %s", code, err, body)
		}
		var res struct {
			Events []struct {
				Message string         `json:"message"`
				Attrs   map[string]any `json:"attrs"`
			} `json:"events"`
		}
		json.Unmarshal([]byte(body), &res)
		if len(res.Events) != 3 {
			return fmt.Errorf("found %d events, want 3: %s", len(res.Events), body)
		}
		for _, e := range res.Events {
			if strings.Contains(e.Message, "syslog over tls") && e.Attrs["client.address"] != "127.0.0.1" {
				return fmt.Errorf("syslog event without client.address: %+v", e)
			}
		}
		return nil
	})
	select {
	case <-sawTail:
	case <-time.After(30 * time.Second):
		t.Fatal("the reader's live tail did not deliver the events")
	}

	// The plaintext metrics port: scrape and probes only.
	code, body, err := doTLS(http.DefaultClient, "GET", m.plainURL+"/metrics", "", "")
	if err != nil || code != 200 {
		t.Fatalf("plaintext /metrics: %d %v", code, err)
	}
	for _, want := range []string{
		`wirelog_tls_handshakes_total{listener="http",result="ok"}`,
		`wirelog_tls_handshakes_total{listener="http",result="unknown_ca"}`,
		`wirelog_tls_handshakes_total{listener="http",result="expired"}`,
		`wirelog_tls_handshakes_total{listener="http",result="no_client_cert"}`,
		`wirelog_tls_handshakes_total{listener="http",result="spiffe_denied"}`,
		`wirelog_tls_handshakes_total{listener="syslog",result="ok"}`,
		`wirelog_tls_cert_expiry_timestamp_seconds{cert="serving"}`,
		`wirelog_tls_requests_denied_total{role="query"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, _, _ := doTLS(http.DefaultClient, "GET", m.plainURL+"/api/v1/stats", "", ""); code != 404 {
		t.Errorf("plaintext port served /api/v1/stats: %d", code)
	}
	if code, _, _ := doTLS(http.DefaultClient, "GET", m.plainURL+"/readyz", "", ""); code != 200 {
		t.Errorf("plaintext /readyz: %d", code)
	}

	// Rotation on the running binary: the serving certificate is swapped
	// like cert-manager does; a new connection gets it, the reader's
	// keep-alive connection goes on.
	crt2, key2 := m.ca.Issue(t, tlstest.ServerLeaf(spiffeWirelog))
	m.secret.Update(t, map[string][]byte{"tls.crt": crt2, "tls.key": key2, "ca.crt": m.ca.PEM})
	b, _ := pemDecode(crt2)
	eventually(t, 15*time.Second, func() error {
		c, err := tls.Dial("tcp", strings.TrimPrefix(m.URL, "https://"), tc)
		if err != nil {
			return err
		}
		defer c.Close()
		if got := c.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(b.SerialNumber) != 0 {
			return fmt.Errorf("serial %v, want the new %v", got, b.SerialNumber)
		}
		return nil
	})
	if code, _, err := doTLS(reader, "GET", m.URL+"/api/v1/stats", "", ""); err != nil || code != 200 {
		t.Fatalf("reader after rotation: %d %v", code, err)
	}
}

func pemDecode(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	return x509.ParseCertificate(blk.Bytes)
}

// TestLoadgenOverMutualTLS: loadgen with --tls-ca/--tls-cert/--tls-key
// loads a wirelog that requires client certificates; without them it is
// refused.
func TestLoadgenOverMutualTLS(t *testing.T) {
	m := startMTLS(t)
	dir := t.TempDir()
	crt, key := m.ca.Issue(t, tlstest.Leaf{SPIFFEID: spiffeShipper})
	args := []string{"loadgen", "--target", m.URL, "--count", "5000", "--duration", "60s", "--concurrency", "2", "--batch", "100", "--json", "--quiet",
		"--tls-ca", tlstest.WriteFile(t, dir, "ca.crt", m.ca.PEM)}
	out, err := exec.Command(wirelogBin, append(args, "--tls-cert", tlstest.WriteFile(t, dir, "c.crt", crt), "--tls-key", tlstest.WriteFile(t, dir, "c.key", key))...).Output()
	if err != nil {
		t.Fatalf("loadgen over mTLS: %v\n%s", err, out)
	}
	var rep struct {
		EventsAcked int64            `json:"events_acked"`
		Errors      map[string]int64 `json:"errors"`
	}
	if err := json.Unmarshal(out, &rep); err != nil || rep.EventsAcked != 5000 || len(rep.Errors) != 0 {
		t.Fatalf("report %s (%v)", out, err)
	}
	out, _ = exec.Command(wirelogBin, append(args[:len(args):len(args)], "--count", "100")...).Output()
	if json.Unmarshal(out, &rep) == nil && rep.EventsAcked != 0 {
		t.Fatalf("loadgen without a client certificate had %d events acknowledged", rep.EventsAcked)
	}
}

// TestTokensOnTopOfMutualTLS: bearer-token tenants still apply behind
// mutual TLS — the certificate admits the shipper to the ingest routes,
// the token names its tenant.
func TestTokensOnTopOfMutualTLS(t *testing.T) {
	tokens := tlstest.WriteFile(t, t.TempDir(), "tokens.json", []byte(`{"tokens":[{"token":"s3cret-token-acme","tenant":"acme"}]}`))
	m := startMTLS(t, "--auth-tokens", tokens)
	shipper := m.client(t, m.ca, tlstest.Leaf{SPIFFEID: spiffeShipper})
	body := `{"message":"tenant over mtls"}` + "\n"
	if code, resp, err := doTLS(shipper, "POST", m.URL+"/api/v1/logs", "application/x-ndjson", body); err != nil || code != 401 {
		t.Fatalf("allowed SVID without a token: %d %s %v, want 401", code, resp, err)
	}
	req, _ := http.NewRequest("POST", m.URL+"/api/v1/logs", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer s3cret-token-acme")
	resp, err := shipper.Do(req)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("allowed SVID with the token: %v %v, want 202", resp, err)
	}
	resp.Body.Close()
	stray := m.client(t, m.ca, tlstest.Leaf{SPIFFEID: "spiffe://cluster.local/ns/other/sa/x"})
	req, _ = http.NewRequest("POST", m.URL+"/api/v1/logs", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer s3cret-token-acme")
	if resp, err := stray.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("a valid token from a disallowed SPIFFE ID: %v %v, want 403", resp, err)
	}
}

// TestSyslogTLSOwnCertificate: --syslog-tls with its own certificate and
// client CA while HTTP stays plaintext; without any certificate the
// command refuses to start and names the flags.
func TestSyslogTLSOwnCertificate(t *testing.T) {
	out, err := exec.Command(wirelogBin, "run", "--http", "127.0.0.1:0", "--data", t.TempDir(), "--syslog-udp", "", "--syslog-tcp", "", "--syslog-tls", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--syslog-tls-cert") {
		t.Fatalf("--syslog-tls without a certificate: %v\n%s", err, out)
	}
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "syslog CA")
	crt, key := ca.Issue(t, tlstest.ServerLeaf(""))
	n := startNode(t, t.TempDir(), "--syslog-tls", "127.0.0.1:0",
		"--syslog-tls-cert", tlstest.WriteFile(t, dir, "s.crt", crt), "--syslog-tls-key", tlstest.WriteFile(t, dir, "s.key", key),
		"--syslog-tls-client-ca", tlstest.WriteFile(t, dir, "ca.crt", ca.PEM))
	mm := syslogTLSRE.FindStringSubmatch(n.Logs())
	if mm == nil {
		t.Fatalf("no syslog_tls address in the log:\n%s", n.Logs())
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	ccrt, ckey := ca.Issue(t, tlstest.Leaf{DNS: []string{"relay"}})
	kp, _ := tls.X509KeyPair(ccrt, ckey)
	c, err := tls.Dial("tcp", mm[1], &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{kp}})
	if err != nil {
		t.Fatal(err)
	}
	msg := "<134>1 " + time.Now().UTC().Format(time.RFC3339) + " relay own-cert - - - syslog over its own certificate"
	io.WriteString(c, strconv.Itoa(len(msg))+" "+msg)
	c.Close()
	eventually(t, 30*time.Second, func() error {
		var res searchResult
		n.getJSON("/api/v1/logs/search?"+url.Values{"service": {"own-cert"}, "from": {"-1h"}}.Encode(), &res)
		if len(res.Events) != 1 {
			return fmt.Errorf("found %d events", len(res.Events))
		}
		return nil
	})
	resp, err := http.Get(n.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`wirelog_tls_cert_expiry_timestamp_seconds{cert="syslog_serving"}`, `wirelog_tls_handshakes_total{listener="syslog",result="ok"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
