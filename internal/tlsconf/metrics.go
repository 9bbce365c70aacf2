package tlsconf

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirelog/wirelog/internal/promset"
)

// Handshake results (wirelog_tls_handshakes_total{result}).
const (
	ResultOK           = "ok"
	ResultUnknownCA    = "unknown_ca"     // client certificate not signed by --tls-client-ca
	ResultExpired      = "expired"        // client certificate outside its validity period
	ResultNoClientCert = "no_client_cert" // --tls-client-ca is set and the client sent none
	ResultDenied       = "spiffe_denied"  // verified, but no --allow-spiffe-id rule allows its ID
	ResultBadCert      = "bad_certificate"
	ResultError        = "handshake_error" // plaintext, protocol or version mismatch, client refused our certificate
)

type metrics struct {
	handshakes *prometheus.CounterVec
	denied     *prometheus.CounterVec
	expiry     *prometheus.GaugeVec
	reloads    *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_tls_handshakes_total",
			Help: "TLS handshakes on wirelog's listeners by listener and result (ok, unknown_ca, expired, no_client_cert, spiffe_denied, bad_certificate, handshake_error).",
		}, []string{"listener", "result"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_tls_requests_denied_total",
			Help: "HTTP requests answered 403 because the client's SPIFFE ID is not allowed the route's role (--allow-spiffe-id).",
		}, []string{"role"}),
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wirelog_tls_cert_expiry_timestamp_seconds",
			Help: "When the certificate in use expires (Unix seconds): cert=serving is --tls-cert's leaf, cert=client_ca the earliest expiry in --tls-client-ca.",
		}, []string{"cert"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_tls_reloads_total",
			Help: "Certificate, key and CA reloads from disk by result (ok, error); on error the previous material stays in use.",
		}, []string{"result"}),
	}
	return m
}

func (m *metrics) collector() prometheus.Collector {
	return promset.Set{m.handshakes, m.denied, m.expiry, m.reloads}
}
