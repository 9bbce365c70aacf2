package tlsconf_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"

	"github.com/wirelog/wirelog/internal/tlsconf"
	"github.com/wirelog/wirelog/internal/tlsconf/tlstest"
)

// fakeAgent speaks the SPIFFE Workload API (the real gRPC service, on a
// unix socket) the way a SPIRE agent does: it streams the workload's
// X.509-SVID and trust bundle, and a new one when rotated.
type fakeAgent struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	updates chan *workload.X509SVIDResponse
}

func (a *fakeAgent) FetchX509SVID(_ *workload.X509SVIDRequest, s grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	for {
		select {
		case <-s.Context().Done():
			return nil
		case r := <-a.updates:
			if err := s.Send(r); err != nil {
				return err
			}
		}
	}
}

func svidResponse(t *testing.T, ca *tlstest.CA, id string) (*workload.X509SVIDResponse, string) {
	crt, key := ca.Issue(t, tlstest.ServerLeaf(id))
	cb, _ := pem.Decode(crt)
	kb, _ := pem.Decode(key)
	ab, _ := pem.Decode(ca.PEM)
	leaf, _ := x509.ParseCertificate(cb.Bytes)
	return &workload.X509SVIDResponse{Svids: []*workload.X509SVID{{SpiffeId: id, X509Svid: cb.Bytes, X509SvidKey: kb.Bytes, Bundle: ab.Bytes}}},
		leaf.SerialNumber.String()
}

// TestWorkloadAPISource: --spiffe-socket takes the serving SVID and the
// client CA bundle from the Workload API and follows its rotation.
func TestWorkloadAPISource(t *testing.T) {
	ca := tlstest.NewCA(t, "spire CA")
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	agent := &fakeAgent{updates: make(chan *workload.X509SVIDResponse, 2)}
	gs := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(gs, agent)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	first, firstSerial := svidResponse(t, ca, "spiffe://cluster.local/ns/logs/sa/wirelog")
	agent.updates <- first

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r, _ := tlsconf.ParseRule("ingest=spiffe://cluster.local/ns/logs/sa/*")
	srv, err := tlsconf.NewServer(ctx, tlsconf.Options{SPIFFESocket: "unix://" + sock, Allow: tlsconf.Policy{r}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tln.Close()
	cfg := srv.RawConfig("syslog", tlsconf.RoleIngest)
	go func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(c, cfg)
				if tc.Handshake() == nil {
					tc.Write([]byte("ok"))
				}
				tc.Close()
			}()
		}
	}()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	dial := func(id string) (string, error) {
		crt, key := ca.Issue(t, tlstest.Leaf{SPIFFEID: id})
		kp, _ := tls.X509KeyPair(crt, key)
		c, err := tls.Dial("tcp", tln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{kp}})
		if err != nil {
			return "", err
		}
		defer c.Close()
		if _, err := io.ReadAll(c); err != nil {
			return "", err
		}
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
	}
	if got, err := dial("spiffe://cluster.local/ns/logs/sa/shipper"); err != nil || got != firstSerial {
		t.Fatalf("allowed client: serial %s err %v, want the agent's SVID %s", got, err, firstSerial)
	}
	if _, err := dial("spiffe://cluster.local/ns/ui/sa/dashboard"); err == nil {
		t.Fatal("a client ID no rule allows completed the handshake on a raw TLS listener")
	}
	second, secondSerial := svidResponse(t, ca, "spiffe://cluster.local/ns/logs/sa/wirelog")
	agent.updates <- second
	waitFor(t, func() bool {
		got, err := dial("spiffe://cluster.local/ns/logs/sa/shipper")
		return err == nil && got == secondSerial
	}, "the rotated SVID served")
}
