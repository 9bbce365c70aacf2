// Package tlsconf is the one TLS configuration of every wirelog listener
// and client, for every role (run, ingest, process, dataplane): the
// certificate and key presented, the CA client certificates are verified
// with (mutual TLS), authorization by the client's SPIFFE ID per route
// role, live reload of all of them from disk (or from the SPIFFE Workload
// API), and the handshake and expiry metrics. The same guarantee a service
// mesh's STRICT mTLS gives, without the mesh.
package tlsconf

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"
)

// Defaults.
const (
	// DefaultReloadInterval is how often certificate, key and CA files are
	// re-read. cert-manager renews well before expiry and a new connection
	// picks up the new pair within this period; reading three small files
	// each second costs nothing measurable.
	DefaultReloadInterval = time.Second
)

// Options are the --tls-* flags shared by every role.
type Options struct {
	CertFile         string        // --tls-cert
	KeyFile          string        // --tls-key
	ClientCAFile     string        // --tls-client-ca: require and verify client certificates
	Allow            Policy        // --allow-spiffe-id, repeatable
	MetricsPlaintext string        // --metrics-plaintext: extra plaintext listener for /metrics, /healthz, /readyz
	SPIFFESocket     string        // --spiffe-socket: Workload API instead of files
	ReloadInterval   time.Duration // DefaultReloadInterval when 0
}

// RegisterFlags defines the shared TLS flags on fs.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.CertFile, "tls-cert", o.CertFile, "PEM certificate `file` (chain) every listener presents; turns on TLS (1.2+, 1.3 preferred) on HTTP and /metrics. Re-read within seconds when it changes on disk")
	fs.StringVar(&o.KeyFile, "tls-key", o.KeyFile, "PEM private key `file` of --tls-cert")
	fs.StringVar(&o.ClientCAFile, "tls-client-ca", o.ClientCAFile, "PEM `file` of CAs client certificates must chain to: requires and verifies a client certificate on every connection (mutual TLS). Re-read when it changes")
	fs.Func("allow-spiffe-id", "allow clients whose certificate carries this SPIFFE ID, as `[ROLE=]PATTERN` (repeatable). ROLE is ingest, query or metrics (none = every route); "+
		"PATTERN is an exact ID or a prefix ending in /*, e.g. ingest=spiffe://cluster.local/ns/logs/sa/*. Without any, every certificate of --tls-client-ca is allowed. "+
		"HTTP answers 403 to a disallowed ID; syslog over TLS fails its handshake", func(s string) error {
		r, err := ParseRule(s)
		if err != nil {
			return err
		}
		o.Allow = append(o.Allow, r)
		return nil
	})
	fs.StringVar(&o.MetricsPlaintext, "metrics-plaintext", o.MetricsPlaintext, "also serve /metrics, /healthz and /readyz without TLS on this `address`, for scrapers and probes that cannot present a certificate (off by default)")
	fs.StringVar(&o.SPIFFESocket, "spiffe-socket", o.SPIFFESocket, "SPIFFE Workload API `address` (unix:///run/spire/agent.sock) to take the SVID and trust bundle from instead of --tls-cert/--tls-key/--tls-client-ca; implies mutual TLS")
}

// Enabled reports whether the listeners serve TLS.
func (o *Options) Enabled() bool { return o.CertFile != "" || o.SPIFFESocket != "" }

// Validate checks the flags go together; each error names the flag.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if (o.CertFile == "") != (o.KeyFile == "") {
		bad("--tls-cert and --tls-key go together: set both")
	}
	if o.SPIFFESocket != "" {
		if o.CertFile != "" || o.ClientCAFile != "" {
			bad("--spiffe-socket replaces --tls-cert, --tls-key and --tls-client-ca: set one or the other")
		}
		if !strings.HasPrefix(o.SPIFFESocket, "unix://") && !strings.HasPrefix(o.SPIFFESocket, "tcp://") {
			bad("--spiffe-socket %q: want unix:///path/to/agent.sock or tcp://host:port", o.SPIFFESocket)
		}
	}
	if o.ClientCAFile != "" && o.CertFile == "" {
		bad("--tls-client-ca needs --tls-cert and --tls-key (clients verify the server too)")
	}
	if len(o.Allow) > 0 && o.ClientCAFile == "" && o.SPIFFESocket == "" {
		bad("--allow-spiffe-id needs --tls-client-ca (or --spiffe-socket): IDs come from verified client certificates")
	}
	return errors.Join(errs...)
}
