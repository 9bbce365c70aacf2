package tlsconf_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/tlsconf"
	"github.com/wirelog/wirelog/internal/tlsconf/tlstest"
)

// BenchmarkHandshake measures full (not resumed) TLS handshakes per second
// against a tlsconf listener on loopback, client and server on the same
// machine: TLS 1.3 with and without client certificates (mutual TLS and
// the SPIFFE check), and TLS 1.2 with them.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkHandshake(b *testing.B) {
	for _, c := range []struct {
		name string
		mtls bool
		max  uint16
	}{{"tls13-mtls", true, tls.VersionTLS13}, {"tls13-server-only", false, tls.VersionTLS13}, {"tls12-mtls", true, tls.VersionTLS12}} {
		b.Run(c.name, func(b *testing.B) {
			dir := b.TempDir()
			ca := tlstest.NewCA(b, "bench CA")
			crt, key := ca.Issue(b, tlstest.ServerLeaf("spiffe://cluster.local/ns/logs/sa/wirelog"))
			o := tlsconf.Options{CertFile: tlstest.WriteFile(b, dir, "c", crt), KeyFile: tlstest.WriteFile(b, dir, "k", key)}
			if c.mtls {
				o.ClientCAFile = tlstest.WriteFile(b, dir, "ca", ca.PEM)
				r, _ := tlsconf.ParseRule("ingest=spiffe://cluster.local/ns/logs/sa/*")
				o.Allow = tlsconf.Policy{r}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			srv, err := tlsconf.NewServer(ctx, o, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			scfg := srv.HTTPConfig("bench")
			go func() {
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						tc := tls.Server(conn, scfg)
						tc.Handshake()
						tc.Close()
					}()
				}
			}()
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(ca.PEM)
			ccrt, ckey := ca.Issue(b, tlstest.Leaf{SPIFFEID: "spiffe://cluster.local/ns/logs/sa/shipper"})
			kp, _ := tls.X509KeyPair(ccrt, ckey)
			ccfg := &tls.Config{RootCAs: pool, ServerName: "localhost", MaxVersion: c.max, Certificates: []tls.Certificate{kp},
				ClientSessionCache: nil} // no resumption: every handshake is a full one
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				conn, err := tls.Dial("tcp", ln.Addr().String(), ccfg)
				if err != nil {
					b.Fatal(err)
				}
				// TLS 1.3: the server's verdict on our certificate comes
				// with its first bytes; wait for the close.
				conn.Read(make([]byte, 1))
				conn.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
			// Wall time per handshake mostly measures scheduling on a
			// loaded machine; CPU time (client and server together, the
			// whole process) is what a handshake costs.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/handshake")
		})
	}
}
