package tlsconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Server is the TLS side of every wirelog listener of one process: the
// certificate it presents, the CAs it verifies clients with, the SPIFFE ID
// policy, reloading and the metrics. Each listener takes its *tls.Config
// from it, so one rotation reaches them all.
type Server struct {
	opts Options
	src  source
	m    *metrics
	log  *slog.Logger
	mtls bool
}

// forbiddenBodyDrain bounds what is read of a refused request's body.
const forbiddenBodyDrain = 64 << 10

// errMarker starts every error our verification returns, so the HTTP
// server's handshake log lines we already counted are not counted twice.
const errMarker = "wirelog-tls: "

// Verification errors; a client sees a TLS alert (bad_certificate or
// certificate_required), the server log and metrics say which.
var (
	errNoClientCert = errors.New(errMarker + "the client sent no certificate and --tls-client-ca requires one")
	errDenied       = errors.New(errMarker + "the client's SPIFFE ID is not allowed by any --allow-spiffe-id rule")
)

// NewServer loads the certificate, key and client CA (or connects to the
// Workload API) and starts watching them for changes until ctx ends.
// Errors name the flag to fix.
func NewServer(ctx context.Context, o Options, logger *slog.Logger) (*Server, error) {
	return newServer(ctx, o, logger, newMetrics(), "")
}

// Derive returns a Server for another set of files (syslog's own
// --syslog-tls-cert) that shares s's metrics; its expiry gauges are
// labelled cert=<name>_serving and <name>_client_ca. s may be nil: then
// the new Server has metrics of its own to register.
func (s *Server) Derive(ctx context.Context, o Options, logger *slog.Logger, name string) (*Server, error) {
	m := newMetrics()
	if s != nil {
		m = s.m
	}
	return newServer(ctx, o, logger, m, name+"_")
}

func newServer(ctx context.Context, o Options, logger *slog.Logger, m *metrics, certPrefix string) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if !o.Enabled() {
		return nil, errors.New("tls: NewServer needs --tls-cert and --tls-key, or --spiffe-socket")
	}
	if logger == nil {
		logger = slog.Default()
	}
	s := &Server{opts: o, m: m, log: logger.With("component", "tls")}
	s.mtls = o.ClientCAFile != "" || o.SPIFFESocket != ""
	onLoad := func(m *material, err error) {
		if err != nil {
			s.m.reloads.WithLabelValues("error").Inc()
			return
		}
		s.m.reloads.WithLabelValues("ok").Inc()
		if !m.certExpiry.IsZero() {
			s.m.expiry.WithLabelValues(certPrefix + "serving").Set(float64(m.certExpiry.Unix()))
		}
		if !m.caExpiry.IsZero() {
			s.m.expiry.WithLabelValues(certPrefix + "client_ca").Set(float64(m.caExpiry.Unix()))
		}
	}
	if o.SPIFFESocket != "" {
		src, err := newWorkloadSource(ctx, o.SPIFFESocket, onLoad)
		if err != nil {
			return nil, err
		}
		s.src = src
	} else {
		src, err := newFileSource(o.CertFile, o.KeyFile, o.ClientCAFile, s.log, onLoad)
		if err != nil {
			return nil, err
		}
		s.src = src
		go src.watch(ctx, o.reloadInterval())
	}
	if s.mtls && len(o.Allow) == 0 {
		s.log.Warn("tls: client certificates are verified but no --allow-spiffe-id is set: any certificate of the client CA may use every route")
	}
	return s, nil
}

// MutualTLS reports whether clients must present a verified certificate.
func (s *Server) MutualTLS() bool { return s.mtls }

// Collector returns the TLS metrics.
func (s *Server) Collector() prometheus.Collector { return s.m.collector() }

// modernSuites are the TLS 1.2 suites offered: ECDHE with AEAD only
// (forward secrecy, no CBC, no RSA key exchange). TLS 1.3's suites are
// all modern and not configurable.
var modernSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// HTTPConfig is the *tls.Config of an HTTP listener named listener (the
// metrics label). A client whose SPIFFE ID no rule allows completes the
// handshake (counted as spiffe_denied) and gets 403 on every request, so it
// learns why; Authorize enforces the per-route roles.
func (s *Server) HTTPConfig(listener string) *tls.Config {
	c := s.config(listener, RoleAny, false)
	c.NextProtos = []string{"h2", "http/1.1"}
	return c
}

// RawConfig is the *tls.Config of a non-HTTP listener (syslog over TLS):
// there is no way to answer 403, so a client whose SPIFFE ID is not allowed
// role fails the handshake.
func (s *Server) RawConfig(listener string, role Role) *tls.Config {
	return s.config(listener, role, true)
}

func (s *Server) config(listener string, role Role, strict bool) *tls.Config {
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: modernSuites,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.src.current().cert, nil
		},
	}
	if s.mtls {
		// Request, not require: the chain is verified in VerifyConnection
		// against the CA loaded last, and a missing certificate is counted
		// as no_client_cert instead of a generic handshake error.
		c.ClientAuth = tls.RequestClientCert
	}
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		res, err := s.verify(cs, role, strict)
		s.m.handshakes.WithLabelValues(listener, res).Inc()
		if err != nil {
			s.log.Debug("tls: handshake refused", "listener", listener, "result", res, "err", err)
		}
		return err
	}
	return c
}

// verify checks the client's certificate chain against the current client
// CA and its SPIFFE ID against the policy.
func (s *Server) verify(cs tls.ConnectionState, role Role, strict bool) (string, error) {
	if !s.mtls {
		return ResultOK, nil
	}
	if len(cs.PeerCertificates) == 0 {
		return ResultNoClientCert, errNoClientCert
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         s.src.current().pool,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return classify(err), fmt.Errorf("%sclient certificate %q: %w", errMarker, leaf.Subject.String(), err)
	}
	id, _ := PeerID(leaf)
	if !s.opts.Allow.Allows(role, id) {
		if strict {
			return ResultDenied, fmt.Errorf("%w: %q", errDenied, id.String())
		}
		return ResultDenied, nil
	}
	return ResultOK, nil
}

func classify(err error) string {
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return ResultUnknownCA
	}
	var ci x509.CertificateInvalidError
	if errors.As(err, &ci) && ci.Reason == x509.Expired {
		return ResultExpired
	}
	return ResultBadCert
}

// ErrorLog is the http.Server.ErrorLog of an HTTP listener: it counts the
// handshakes that failed before our verification ran (plaintext clients,
// protocol mismatches, clients refusing our certificate) as
// handshake_error, and logs every line at debug level (a port scanner
// must not flood the log).
func (s *Server) ErrorLog(listener string) *log.Logger {
	return log.New(&errorLogWriter{s: s, listener: listener}, "", 0)
}

type errorLogWriter struct {
	s        *Server
	listener string
}

func (w *errorLogWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	if strings.Contains(line, "TLS handshake error") && !strings.Contains(line, errMarker) {
		w.s.m.handshakes.WithLabelValues(w.listener, ResultError).Inc()
	}
	w.s.log.Debug("tls: http server", "listener", w.listener, "msg", line)
	return len(p), nil
}

// CountHandshakeError counts a handshake that failed before verification
// on a raw listener (the syslog server does the handshake itself).
func (s *Server) CountHandshakeError(listener string, err error) {
	if err != nil && !strings.Contains(err.Error(), errMarker) {
		s.m.handshakes.WithLabelValues(listener, ResultError).Inc()
	}
}

// RouteRole is the role a request needs: GET /metrics needs metrics;
// /healthz, /readyz, / and the Elasticsearch shipper handshake (GET /_…,
// GET /insert/…) any allowed ID (RoleAny); the operator routes
// under /api/v1/processor/ need query; every other POST or PUT is an
// ingest route (this covers routes added later, such as the shippers'
// bulk and push endpoints); everything else (the query API, tail, the
// dashboard, pprof) needs query.
func RouteRole(r *http.Request) Role {
	p := r.URL.Path
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case p == "/healthz" || p == "/readyz" || p == "/":
		return RoleAny
	case get && (strings.HasPrefix(p, "/_") || strings.HasPrefix(p, "/insert/")):
		// The handshake an Elasticsearch shipper makes before its first
		// bulk request (/_license, /_cluster/health, templates, and GET /):
		// canned answers that reveal nothing, so any allowed ID, and an
		// ingest-only shipper gets through.
		return RoleAny
	case p == "/metrics":
		return RoleMetrics
	case strings.HasPrefix(p, "/api/v1/processor/"):
		return RoleQuery
	case r.Method == http.MethodPost || r.Method == http.MethodPut:
		return RoleIngest
	}
	return RoleQuery
}

// Authorize wraps an HTTP handler served on an HTTPConfig listener: a
// request whose client SPIFFE ID is not allowed the route's role (see
// RouteRole) is answered 403 with a JSON body saying which ID and which
// role, and counted. Without client verification it returns h unchanged.
// Bearer-token tenants (--auth-tokens) are checked by h, after this.
func (s *Server) Authorize(h http.Handler) http.Handler {
	if !s.mtls {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			// Not through our listener: nothing to authorize by.
			forbid(w, r, "this route needs a client certificate (mutual TLS)")
			s.m.denied.WithLabelValues(string(RouteRole(r))).Inc()
			return
		}
		role := RouteRole(r)
		id, err := PeerID(r.TLS.PeerCertificates[0])
		if err != nil {
			s.m.denied.WithLabelValues(roleLabel(role)).Inc()
			forbid(w, r, "the client certificate is no SPIFFE X.509-SVID (it needs exactly one spiffe:// URI SAN): "+err.Error())
			return
		}
		if !s.opts.Allow.Allows(role, id) {
			s.m.denied.WithLabelValues(roleLabel(role)).Inc()
			forbid(w, r, fmt.Sprintf("SPIFFE ID %s is not allowed to use the %s routes; the server's --allow-spiffe-id rules decide", id, roleLabel(role)))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func roleLabel(r Role) string {
	if r == RoleAny {
		return "any"
	}
	return string(r)
}

func forbid(w http.ResponseWriter, r *http.Request, msg string) {
	// Read a little of the body first: over HTTP/2 an unread body makes
	// the server reset the stream, and some clients (curl) then report a
	// framing error instead of showing the 403.
	io.Copy(io.Discard, io.LimitReader(r.Body, forbiddenBodyDrain))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// ClientConfig returns a client *tls.Config presenting this server's own
// certificate (its SVID) and verifying peers with its client CA — for a
// wirelog talking to another wirelog (serve to peers) with one identity.
func (s *Server) ClientConfig(serverName string) *tls.Config {
	return clientConfig(s.src, serverName)
}

// reloadInterval is the file poll period.
func (o *Options) reloadInterval() time.Duration {
	if o.ReloadInterval > 0 {
		return o.ReloadInterval
	}
	return DefaultReloadInterval
}
