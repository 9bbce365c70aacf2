package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/parse/proxyproto"
)

// Why a connection was closed before its first message
// (wirelog_syslog_connections_refused_total{reason}).
const (
	refusedTotal     = iota // --syslog-max-connections
	refusedPerSource        // --syslog-max-connections-per-source
	refusedProxy            // --syslog-proxy-protocol: no or a malformed PROXY v1/v2 header
	refusedHandshake        // TLS handshake failed (plaintext client, untrusted, expired, denied ID…)
	numRefused
)

var refusedNames = [numRefused]string{"max_connections", "max_connections_per_source", "proxy_header", "tls_handshake"}

type connStats struct {
	n [numRefused]atomic.Uint64
	// lastLog rate-limits the refusal log lines to one a second: a port
	// scan or a reconnect storm must not flood the log.
	lastLog atomic.Int64
}

func (cs *connStats) refused(reason int, log *slog.Logger, remote net.Addr, detail any) {
	cs.n[reason].Add(1)
	now := time.Now().UnixNano()
	if last := cs.lastLog.Load(); now-last > int64(time.Second) && cs.lastLog.CompareAndSwap(last, now) {
		log.Warn("syslog: connection refused", "reason", refusedNames[reason], "remote", remote.String(), "detail", detail)
	}
}

var descRefused = desc("connections_refused_total", "Syslog TCP/TLS connections closed before their first message, by reason "+
	"(max_connections, max_connections_per_source, proxy_header, tls_handshake).", "reason")

func (cs *connStats) collect(ch chan<- prometheus.Metric) {
	for i := range cs.n {
		ch <- counter(descRefused, cs.n[i].Load(), refusedNames[i])
	}
}

// openConn reads the PROXY header (with --syslog-proxy-protocol), applies
// the per-source limit to the client's address and does the TLS handshake,
// all within HandshakeTimeout. It returns the connection to read messages
// from and the client's address; ok=false means it was refused (counted
// and logged).
func (s *Server) openConn(c net.Conn, tlsOn bool) (conn net.Conn, peer netip.AddrPort, ok bool) {
	peer = addrPort(c.RemoteAddr())
	c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	if s.cfg.ProxyProtocol {
		h, err := proxyproto.Read(c) // v1 (text) or v2 (binary), told apart by the first bytes
		if err != nil {
			s.connStats.refused(refusedProxy, s.cfg.Logger, c.RemoteAddr(), err.Error())
			return nil, peer, false
		}
		if h.Source != nil {
			peer = addrPort(h.Source)
		}
	}
	if !s.admit(peer.Addr()) {
		s.connStats.refused(refusedPerSource, s.cfg.Logger, c.RemoteAddr(), "--syslog-max-connections-per-source from "+peer.Addr().String())
		return nil, peer, false
	}
	conn = c
	if tlsOn {
		tc := tls.Server(c, s.cfg.TLS)
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.HandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			s.release(peer.Addr())
			if s.cfg.OnHandshakeError != nil {
				s.cfg.OnHandshakeError(err)
			}
			s.connStats.refused(refusedHandshake, s.cfg.Logger, c.RemoteAddr(), handshakeHint(err))
			return nil, peer, false
		}
		conn = tc
	}
	c.SetDeadline(time.Time{})
	return conn, peer, true
}

// handshakeHint phrases the commonest failure for an operator.
func handshakeHint(err error) string {
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return "the client does not speak TLS (plaintext syslog on the TLS port? send to --syslog-tcp instead): " + err.Error()
	}
	return err.Error()
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// appendPeer appends the sender's "client.address"/"client.port" members.
func appendPeer(b []byte, ap netip.AddrPort) []byte { return event.AppendClientAddr(b, ap) }
