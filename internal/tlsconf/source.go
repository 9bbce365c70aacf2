package tlsconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// material is what one handshake uses: the certificate we present and the
// CAs we verify the peer with. It is replaced whole, never changed, so a
// handshake sees one consistent pair while a reload swaps the next one in.
type material struct {
	cert *tls.Certificate // nil: none configured
	pool *x509.CertPool   // nil: peers are not verified against our own CAs
	// Expiries for wirelog_tls_cert_expiry_timestamp_seconds.
	certExpiry, caExpiry time.Time
}

// source hands out the current material.
type source interface {
	current() *material
}

// fileSource reads PEM files and re-reads them every interval. Comparing
// the bytes (not mtimes) catches every way a file changes, including the
// atomic ..data symlink swap of Kubernetes Secret volumes (cert-manager)
// and the SPIFFE helper's rewrites; the files are a few KB.
type fileSource struct {
	certFile, keyFile, caFile string
	log                       *slog.Logger
	onLoad                    func(*material, error)

	cur      atomic.Pointer[material]
	last     [3][]byte // contents behind cur
	lastFail [3][]byte // contents that failed to load: logged once, not every poll
}

func newFileSource(certFile, keyFile, caFile string, log *slog.Logger, onLoad func(*material, error)) (*fileSource, error) {
	f := &fileSource{certFile: certFile, keyFile: keyFile, caFile: caFile, log: log, onLoad: onLoad}
	raw, err := f.read()
	if err != nil {
		return nil, err
	}
	m, err := f.parse(raw)
	if err != nil {
		return nil, err
	}
	f.cur.Store(m)
	f.last = raw
	onLoad(m, nil)
	return f, nil
}

func (f *fileSource) current() *material { return f.cur.Load() }

func (f *fileSource) read() ([3][]byte, error) {
	var raw [3][]byte
	for i, p := range []struct{ name, flag string }{{f.certFile, "--tls-cert"}, {f.keyFile, "--tls-key"}, {f.caFile, "--tls-client-ca"}} {
		if p.name == "" {
			continue
		}
		b, err := os.ReadFile(p.name)
		if err != nil {
			return raw, fmt.Errorf("read %s %s: %w", p.flag, p.name, err)
		}
		raw[i] = b
	}
	return raw, nil
}

func (f *fileSource) parse(raw [3][]byte) (*material, error) {
	m := &material{}
	if f.certFile != "" {
		c, err := tls.X509KeyPair(raw[0], raw[1])
		if err != nil {
			return nil, fmt.Errorf("load --tls-cert %s with --tls-key %s: %w", f.certFile, f.keyFile, err)
		}
		m.cert = &c
		m.certExpiry = c.Leaf.NotAfter
	}
	if f.caFile != "" {
		pool, exp, err := parseCAs(raw[2])
		if err != nil {
			return nil, fmt.Errorf("--tls-client-ca %s: %w", f.caFile, err)
		}
		m.pool, m.caExpiry = pool, exp
	}
	return m, nil
}

// parseCAs reads every CERTIFICATE block of a PEM bundle; it returns the
// earliest expiry among them.
func parseCAs(b []byte) (*x509.CertPool, time.Time, error) {
	pool := x509.NewCertPool()
	var earliest time.Time
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, earliest, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		pool.AddCert(c)
		if earliest.IsZero() || c.NotAfter.Before(earliest) {
			earliest = c.NotAfter
		}
		n++
	}
	if n == 0 {
		return nil, earliest, errors.New("holds no PEM CERTIFICATE block")
	}
	return pool, earliest, nil
}

// watch re-reads the files every interval until ctx ends.
func (f *fileSource) watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.poll()
		}
	}
}

func (f *fileSource) poll() {
	raw, err := f.read()
	if err != nil {
		// A file missing for a moment during a swap: try again next tick.
		f.log.Debug("tls: re-reading certificate files", "err", err)
		return
	}
	if same(raw, f.last) || same(raw, f.lastFail) {
		return
	}
	m, err := f.parse(raw)
	if err != nil {
		// cert and key written one after the other: the pair may not
		// match for one poll. Keep serving with the old pair.
		f.lastFail = raw
		f.log.Error("tls: new certificate files do not load; still serving the previous ones", "err", err)
		f.onLoad(nil, err)
		return
	}
	f.cur.Store(m)
	f.last, f.lastFail = raw, [3][]byte{}
	f.log.Info("tls: reloaded certificates from disk", "cert", f.certFile, "not_after", m.certExpiry, "client_ca", f.caFile)
	f.onLoad(m, nil)
}

func same(a, b [3][]byte) bool {
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// workloadSource takes the SVID and the trust bundle from the SPIFFE
// Workload API (a SPIRE agent's socket), which rotates them itself.
type workloadSource struct {
	src    *workloadapi.X509Source
	cur    atomic.Pointer[material]
	onLoad func(*material, error)
}

func newWorkloadSource(ctx context.Context, addr string, onLoad func(*material, error)) (*workloadSource, error) {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	src, err := workloadapi.NewX509Source(wctx, workloadapi.WithClientOptions(workloadapi.WithAddr(addr)))
	if err != nil {
		return nil, fmt.Errorf("--spiffe-socket %s: no X.509 SVID from the Workload API within 30s (is the SPIRE agent running and this workload registered?): %w", addr, err)
	}
	w := &workloadSource{src: src, onLoad: onLoad}
	if err := w.update(); err != nil {
		src.Close()
		return nil, err
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				src.Close()
				return
			case <-src.Updated():
				if err := w.update(); err != nil {
					onLoad(nil, err)
				}
			}
		}
	}()
	return w, nil
}

func (w *workloadSource) current() *material { return w.cur.Load() }

func (w *workloadSource) update() error {
	svid, err := w.src.GetX509SVID()
	if err != nil {
		return fmt.Errorf("--spiffe-socket: %w", err)
	}
	b, err := w.src.GetX509BundleForTrustDomain(svid.ID.TrustDomain())
	if err != nil {
		return fmt.Errorf("--spiffe-socket: trust bundle of %s: %w", svid.ID.TrustDomain(), err)
	}
	c := &tls.Certificate{PrivateKey: svid.PrivateKey, Leaf: svid.Certificates[0]}
	for _, x := range svid.Certificates {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	m := &material{cert: c, pool: x509.NewCertPool(), certExpiry: c.Leaf.NotAfter}
	for _, a := range b.X509Authorities() {
		m.pool.AddCert(a)
		if m.caExpiry.IsZero() || a.NotAfter.Before(m.caExpiry) {
			m.caExpiry = a.NotAfter
		}
	}
	w.cur.Store(m)
	w.onLoad(m, nil)
	return nil
}
