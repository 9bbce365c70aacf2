// Package tlstest makes throwaway PKIs for tests that run real TLS: a CA,
// X.509-SVIDs (a spiffe:// URI SAN) for clients and servers, and
// certificate files laid out the way Kubernetes Secret volumes (and so
// cert-manager) lay them out, with the atomic ..data symlink swap used to
// rotate them. Not for production use.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a self-signed certificate authority.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	PEM  []byte
}

var serial atomic.Int64

// NewCA makes a CA valid from an hour ago for a day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1) + time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"wirelog test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &CA{Cert: c, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Leaf describes a certificate to issue.
type Leaf struct {
	SPIFFEID  string // URI SAN; "" for none
	DNS       []string
	IPs       []net.IP
	NotBefore time.Time // default an hour ago
	NotAfter  time.Time // default in a day
}

// Issue signs a leaf usable as both client and server certificate and
// returns its certificate and PKCS#8 key as PEM.
func (ca *CA) Issue(t testing.TB, l Leaf) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if l.NotBefore.IsZero() {
		l.NotBefore = time.Now().Add(-time.Hour)
	}
	if l.NotAfter.IsZero() {
		l.NotAfter = time.Now().Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1) + time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "wirelog-test-" + strconv.FormatInt(serial.Load(), 10)},
		NotBefore:    l.NotBefore,
		NotAfter:     l.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     l.DNS,
		IPAddresses:  l.IPs,
	}
	if l.SPIFFEID != "" {
		u, err := url.Parse(l.SPIFFEID)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// ServerLeaf is a serving certificate for 127.0.0.1 and localhost.
func ServerLeaf(id string) Leaf {
	return Leaf{SPIFFEID: id, DNS: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}
}

// WriteFile writes b to dir/name and returns the path.
func WriteFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Secret is a directory laid out like a mounted Kubernetes Secret:
// name → ..data/name, ..data → ..<version>/. Update swaps ..data
// atomically (rename of a new symlink over the old), as the kubelet does
// when cert-manager renews a certificate.
type Secret struct {
	Dir     string
	version int
}

// NewSecret creates the directory with files (name → content).
func NewSecret(t testing.TB, dir string, files map[string][]byte) *Secret {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Secret{Dir: dir}
	s.Update(t, files)
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// Path is the stable path of a file in the secret.
func (s *Secret) Path(name string) string { return filepath.Join(s.Dir, name) }

// Update writes a new version and swaps ..data to it in one rename.
func (s *Secret) Update(t testing.TB, files map[string][]byte) {
	t.Helper()
	s.version++
	vdir := "..v" + strconv.Itoa(s.version)
	if err := os.MkdirAll(filepath.Join(s.Dir, vdir), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		WriteFile(t, filepath.Join(s.Dir, vdir), name, b)
	}
	tmp := filepath.Join(s.Dir, "..data_tmp")
	os.Remove(tmp)
	if err := os.Symlink(vdir, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.Dir, "..data")); err != nil {
		t.Fatal(err)
	}
}
