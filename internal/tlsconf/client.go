package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// ClientOptions are the files of a TLS client (loadgen, the OTLP trace
// exporter, a Kafka client).
type ClientOptions struct {
	CAFile     string // PEM CAs to verify the server; "" = the system roots
	CertFile   string // client certificate (SVID) for mutual TLS; "" = none
	KeyFile    string // its key
	ServerName string // name to verify; "" = the host dialled
	// Flag prefix for error messages, e.g. "--tls" → "--tls-ca".
	FlagPrefix string
}

// NewClientConfig returns a *tls.Config for a client: TLS 1.2+, the
// client certificate and the CA re-read from disk when they change, until
// ctx ends (so a long-running client follows rotation for new
// connections). The OTLP trace exporter, loadgen and the Kafka client call
// it.
func NewClientConfig(ctx context.Context, o ClientOptions, logger *slog.Logger) (*tls.Config, error) {
	if logger == nil {
		logger = slog.Default()
	}
	p := o.FlagPrefix
	if p == "" {
		p = "--tls"
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, fmt.Errorf("%s-cert and %s-key go together", p, p)
	}
	if o.CAFile == "" && o.CertFile == "" {
		return &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}, nil
	}
	src, err := newFileSource(o.CertFile, o.KeyFile, o.CAFile, logger.With("component", "tls"), func(*material, error) {})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, renameFlags(err, p))
	}
	go src.watch(ctx, DefaultReloadInterval)
	return clientConfig(src, o.ServerName), nil
}

// renameFlags: the file source names the server flags; a client's are
// prefix-ca/-cert/-key.
func renameFlags(err error, p string) error {
	if p == "--tls" {
		return err
	}
	r := strings.NewReplacer("--tls-client-ca", p+"-ca", "--tls-cert", p+"-cert", "--tls-key", p+"-key")
	return errors.New(r.Replace(err.Error()))
}

// clientConfig verifies the server against the source's current CA pool
// (or the system roots when it has none) on every handshake, so a rotated
// CA is used without rebuilding the client.
func clientConfig(src source, serverName string) *tls.Config {
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: modernSuites,
		ServerName:   serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if m := src.current(); m.cert != nil {
				return m.cert, nil
			}
			return &tls.Certificate{}, nil // no certificate to send
		},
	}
	if src.current().pool == nil {
		return c // system roots, verified by crypto/tls itself
	}
	// The standard verification cannot take a pool that changes; do the
	// same verification ourselves against the current one.
	c.InsecureSkipVerify = true //nolint:gosec // verified in VerifyConnection below
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the server sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, x := range cs.PeerCertificates[1:] {
			inter.AddCert(x)
		}
		name := serverName
		if name == "" {
			name = cs.ServerName
		}
		if name == "" {
			return errors.New("tls: no server name to verify the server's certificate against")
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
			Roots:         src.current().pool,
			Intermediates: inter,
			DNSName:       name,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		return err
	}
	return c
}
