package syslog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirelog/wirelog/internal/transport"
	"github.com/wirelog/wirelog/internal/xdp"
)

// Server runs the syslog listeners of one Config.
type Server struct {
	cfg      Config
	producer transport.Producer

	udp   []*udpSocket
	tcpLn net.Listener
	tlsLn net.Listener // syslog over TLS (RFC 5425): a TCP listener, the handshake is done per connection

	udpStats stats
	tcpStats stats
	tlsStats stats

	// Connections refused by --syslog-max-connections(-per-source), and
	// TLS or PROXY headers that failed: see conn.go.
	connStats connStats

	xdpProg      *xdp.Program // --syslog-xdp
	xdpQueues    []*xdpQueue
	xdpStats     stats
	xdpMalformed atomic.Uint64

	// produceCtx is cancelled when Close's drain deadline passes: the
	// receive loops then stop retrying a log that pushes back.
	produceCtx context.Context
	cancel     context.CancelFunc
	closing    atomic.Bool
	wg         sync.WaitGroup

	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	perSource map[netip.Addr]int

	closeOnce sync.Once
}

// Start binds the configured listeners and starts receiving; it returns
// once both are bound (an error names the flag to fix). The server closes
// itself, draining, when ctx is done; Close does the same on demand.
func Start(ctx context.Context, producer transport.Producer, cfg Config) (*Server, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, producer: producer, conns: map[net.Conn]struct{}{}, perSource: map[netip.Addr]int{}}
	s.produceCtx, s.cancel = context.WithCancel(context.Background())
	if cfg.UDPAddr != "" {
		socks, err := listenUDP(ctx, &cfg)
		if err != nil {
			s.cancel()
			return nil, fmt.Errorf("--syslog-udp %s: %w", cfg.UDPAddr, err)
		}
		s.udp = socks
		cfg.Logger.Info("syslog: listening on UDP", "addr", socks[0].addr.String(),
			"sockets", len(socks), "rcvbuf", socks[0].rcvbuf, "rcvbuf_asked", cfg.RcvBuf)
	}
	if cfg.XDP != "" {
		if err := s.startXDP(); err != nil {
			for _, u := range s.udp {
				u.close()
			}
			s.cancel()
			return nil, fmt.Errorf("--syslog-xdp %s: %w", cfg.XDP, err)
		}
	}
	if cfg.TCPAddr != "" {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", cfg.TCPAddr)
		if err != nil {
			for _, u := range s.udp {
				u.close()
			}
			s.closeXDP()
			s.cancel()
			return nil, fmt.Errorf("--syslog-tcp %s: %w", cfg.TCPAddr, err)
		}
		s.tcpLn = ln
		cfg.Logger.Info("syslog: listening on TCP", "addr", ln.Addr().String())
	}
	if cfg.TLSAddr != "" {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", cfg.TLSAddr)
		if err != nil {
			for _, u := range s.udp {
				u.close()
			}
			if s.tcpLn != nil {
				s.tcpLn.Close()
			}
			s.closeXDP()
			s.cancel()
			return nil, fmt.Errorf("--syslog-tls %s: %w", cfg.TLSAddr, err)
		}
		s.tlsLn = ln
		cfg.Logger.Info("syslog: listening on TLS (RFC 5425)", "addr", ln.Addr().String(), "mutual_tls", cfg.TLS.ClientAuth != 0, "proxy_protocol", cfg.ProxyProtocol)
	}
	for _, u := range s.udp {
		s.wg.Add(1)
		go s.udpLoop(u)
	}
	for _, q := range s.xdpQueues {
		s.wg.Add(1)
		go s.xdpLoop(q)
	}
	if s.tcpLn != nil {
		s.wg.Add(1)
		go s.acceptLoop(s.tcpLn, &s.tcpStats, false)
	}
	if s.tlsLn != nil {
		s.wg.Add(1)
		go s.acceptLoop(s.tlsLn, &s.tlsStats, true)
	}
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.produceCtx.Done():
		}
	}()
	return s, nil
}

// UDPAddr is the bound UDP address (nil when UDP is disabled).
func (s *Server) UDPAddr() net.Addr {
	if len(s.udp) == 0 {
		return nil
	}
	return s.udp[0].addr
}

// TCPAddr is the bound TCP address (nil when TCP is disabled).
func (s *Server) TCPAddr() net.Addr {
	if s.tcpLn == nil {
		return nil
	}
	return s.tcpLn.Addr()
}

// TLSAddr is the bound syslog-over-TLS address (nil when disabled).
func (s *Server) TLSAddr() net.Addr {
	if s.tlsLn == nil {
		return nil
	}
	return s.tlsLn.Addr()
}

// Close stops receiving and drains: datagrams already in the kernel queue
// and bytes already read from TCP are parsed and produced, retrying while
// the log pushes back, for at most Config.DrainTimeout; what is still not
// durable then is counted in wirelog_syslog_rejected_total{reason="shutdown"}.
// It returns when every receive goroutine has ended.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.detachXDP()
		now := time.Now()
		if s.tcpLn != nil {
			s.tcpLn.Close()
		}
		if s.tlsLn != nil {
			s.tlsLn.Close()
		}
		for _, u := range s.udp {
			u.wake() // the receive loop drains and ends
		}
		s.mu.Lock()
		for c := range s.conns {
			c.SetReadDeadline(now)
		}
		s.mu.Unlock()
		deadline := time.AfterFunc(s.cfg.DrainTimeout, s.cancel)
		s.wg.Wait()
		deadline.Stop()
		s.cancel()
		s.closeXDP() // the AF_XDP loops have drained their rings
	})
	return nil
}

// track registers an accepted connection so Close can wake it; it
// refuses one past --syslog-max-connections.
func (s *Server) track(c net.Conn) (ok, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false, false
	}
	if s.cfg.MaxConns > 0 && len(s.conns) >= s.cfg.MaxConns {
		return false, true
	}
	s.conns[c] = struct{}{}
	return true, false
}

// admit counts a connection of src against --syslog-max-connections-per-source.
func (s *Server) admit(src netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.MaxConnsPerSrc > 0 && s.perSource[src] >= s.cfg.MaxConnsPerSrc {
		return false
	}
	s.perSource[src]++
	return true
}

func (s *Server) release(src netip.Addr) {
	s.mu.Lock()
	if s.perSource[src]--; s.perSource[src] <= 0 {
		delete(s.perSource, src)
	}
	s.mu.Unlock()
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
