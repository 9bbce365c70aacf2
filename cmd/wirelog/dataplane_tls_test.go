package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/tlsconf/tlstest"
)

// TestDataplaneMutualTLS: the agent's /metrics over mutual TLS, scraped
// only by the allowed Prometheus SPIFFE ID; another ID gets 403, a client
// without certificate fails the handshake.
func TestDataplaneMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "node CA")
	crt, key := ca.Issue(t, tlstest.ServerLeaf("spiffe://cluster.local/ns/wirelog/sa/dataplane"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runDataplane(ctx, []string{"--listen", addr, "--node", "node-7",
			"--dpdk-runtime-dir", dir, "--collector.ovs=false", "--scrape-timeout", "2s",
			"--tls-cert", tlstest.WriteFile(t, dir, "tls.crt", crt), "--tls-key", tlstest.WriteFile(t, dir, "tls.key", key),
			"--tls-client-ca", tlstest.WriteFile(t, dir, "ca.crt", ca.PEM),
			"--allow-spiffe-id", "metrics=spiffe://cluster.local/ns/monitoring/sa/prometheus"})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	client := func(id string) *http.Client {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca.PEM)
		tc := &tls.Config{RootCAs: pool}
		if id != "" {
			c, k := ca.Issue(t, tlstest.Leaf{SPIFFEID: id})
			kp, _ := tls.X509KeyPair(c, k)
			tc.Certificates = []tls.Certificate{kp}
		}
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	}
	prom := client("spiffe://cluster.local/ns/monitoring/sa/prometheus")
	var body string
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := prom.Get("https://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				body = string(b)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /metrics over mTLS within 15 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(body, `wirelog_dataplane_collector_success{collector="dpdk",node="node-7"} 1`) ||
		!strings.Contains(body, `wirelog_tls_handshakes_total{listener="dataplane",result="ok"}`) {
		t.Errorf("/metrics over mTLS lacks the collector or the TLS metrics:\n%s", body)
	}
	resp, err := client("spiffe://cluster.local/ns/logs/sa/shipper").Get("https://" + addr + "/metrics")
	if err != nil || resp.StatusCode != 403 {
		t.Errorf("another SPIFFE ID: %v %v, want 403", resp, err)
	}
	if _, err := client("").Get("https://" + addr + "/metrics"); err == nil {
		t.Error("a client without certificate was served")
	}
}
