package tlsconf

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
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

// Client is the TLS side of a client: the certificate it presents
// (re-read from disk when it changes) and the CAs it trusts.
type Client struct {
	src        source
	serverName string
}

// NewClient loads the files and watches them until ctx ends. Errors name
// the flags (FlagPrefix-ca, -cert, -key).
func NewClient(ctx context.Context, o ClientOptions, logger *slog.Logger) (*Client, error) {
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
	c := &Client{serverName: o.ServerName}
	if o.CAFile == "" && o.CertFile == "" {
		c.src = staticSource{&material{}}
		return c, nil
	}
	src, err := newFileSource(o.CertFile, o.KeyFile, o.CAFile, logger.With("component", "tls"), func(*material, error) {})
	if err != nil {
		return nil, renameFlags(err, p)
	}
	go src.watch(ctx, DefaultReloadInterval)
	c.src = src
	return c, nil
}

// Config returns a *tls.Config for clients that dial through their own
// stack (net/http, the OTel exporter): the client certificate follows
// rotation; the CAs are those loaded when Config is called (ConfigFor and
// DialContext use the current ones on every connection).
func (c *Client) Config() *tls.Config { return clientConfig(c.src, c.serverName) }

// ConfigFor is Config for a connection to host, verifying host (unless
// ServerName was given) against the CAs loaded now.
func (c *Client) ConfigFor(host string) *tls.Config {
	name := c.serverName
	if name == "" {
		name = host
	}
	return clientConfig(c.src, name)
}

// DialContext dials addr with d and does the TLS handshake with the
// current certificate and CAs: a rotated CA is trusted by the next
// connection. franz-go (kgo.Dialer) and http.Transport.DialTLSContext
// take it.
func (c *Client) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		raw, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(raw, c.ConfigFor(host))
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		return tc, nil
	}
}

// NewClientConfig is NewClient(…).Config(): a *tls.Config for a client
// (TLS 1.2+, modern suites) whose client certificate is re-read from disk
// when it changes, until ctx ends. The OTLP trace exporter and other
// clients built on net/http call it.
func NewClientConfig(ctx context.Context, o ClientOptions, logger *slog.Logger) (*tls.Config, error) {
	c, err := NewClient(ctx, o, logger)
	if err != nil {
		return nil, err
	}
	return c.Config(), nil
}

// renameFlags: the file source names the server flags; a client's are
// prefix-ca/-cert/-key.
func renameFlags(err error, p string) error {
	if p == "--tls" {
		return errors.New(strings.NewReplacer("--tls-client-ca", "--tls-ca").Replace(err.Error()))
	}
	r := strings.NewReplacer("--tls-client-ca", p+"-ca", "--tls-cert", p+"-cert", "--tls-key", p+"-key")
	return errors.New(r.Replace(err.Error()))
}

type staticSource struct{ m *material }

func (s staticSource) current() *material { return s.m }

// clientConfig presents the source's current certificate on every
// handshake and verifies the server with crypto/tls's own verification
// (names and IP SANs included) against the CAs current now (nil = the
// system roots).
func clientConfig(src source, serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: modernSuites,
		ServerName:   serverName,
		RootCAs:      src.current().pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if m := src.current(); m.cert != nil {
				return m.cert, nil
			}
			return &tls.Certificate{}, nil // no certificate to send
		},
	}
}
