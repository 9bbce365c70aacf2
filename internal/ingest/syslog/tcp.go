package syslog

import (
	"errors"
	"io"
	"net"
	"time"

	sysparse "github.com/wirelog/wirelog/internal/parse/syslog"
	"github.com/wirelog/wirelog/internal/telemetry"
)

// acceptLoop accepts TCP (or TLS, when tlsOn) connections until Close.
func (s *Server) acceptLoop(ln net.Listener, st *stats, tlsOn bool) {
	defer s.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: wait rather than spin.
			s.cfg.Logger.Warn("syslog: accept failed", "tls", tlsOn, "err", err)
			time.Sleep(backoff)
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		ok, full := s.track(c)
		if !ok {
			c.Close()
			if !full {
				return // closing
			}
			s.connStats.refused(refusedTotal, s.cfg.Logger, c.RemoteAddr(), "--syslog-max-connections")
			continue
		}
		st.connections.Add(1)
		st.open.Add(1)
		s.wg.Add(1)
		go s.serveConn(c, st, tlsOn)
	}
}

// connReader is the framer's view of a connection. Before a read it hands
// the pending batch to the connection's producer goroutine if that one is
// idle; if it is busy, the read goes ahead for at most tcpLinger and the
// batch keeps growing (larger batches when the log is the bottleneck), and
// a batch that is full, or a read that finds nothing within tcpLinger,
// waits for the producer. So while the log pushes back, the connection is
// read at most one batch ahead, its socket buffers fill, the TCP window
// closes and the sender's writes block — backpressure without loss. One
// producer per connection keeps its messages in order.
type connReader struct {
	s    *Server
	c    net.Conn
	r    *receiver
	recv time.Time // when the last read returned: the messages' receive time
}

func (cr *connReader) Read(p []byte) (int, error) {
	for {
		lingering, err := cr.r.offer()
		if err != nil {
			return 0, err
		}
		if cr.s.closing.Load() {
			return 0, errShutdown
		}
		var deadline time.Time
		if lingering {
			deadline = time.Now().Add(tcpLinger)
		} else if idle := cr.s.cfg.IdleTimeout; idle > 0 {
			deadline = time.Now().Add(idle)
		}
		cr.c.SetReadDeadline(deadline)
		if cr.s.closing.Load() { // Close may have set its deadline just before ours
			return 0, errShutdown
		}
		n, err := cr.c.Read(p)
		cr.recv = time.Now()
		if n == 0 && lingering && isTimeout(err) {
			if err := cr.r.flush(); err != nil { // nothing came: wait for the producer
				return 0, err
			}
			continue
		}
		return n, err
	}
}

func (s *Server) serveConn(c net.Conn, st *stats, tlsOn bool) {
	defer s.wg.Done()
	defer st.open.Add(-1)
	defer s.untrack(c)
	defer c.Close()
	conn, peer, ok := s.openConn(c, tlsOn)
	if !ok {
		return
	}
	defer s.release(peer.Addr())
	r := s.newReceiver(st, 1, 0)
	var endSpan func()
	r.conn, endSpan = telemetry.SyslogConn(s.produceCtx, c)
	defer endSpan()
	r.peer = appendPeer(nil, peer)
	cr := &connReader{s: s, c: conn, r: r}
	fr := sysparse.NewFramer(cr, s.cfg.MaxMessage)
	var err error
	for {
		var msg []byte
		var truncated bool
		msg, truncated, err = fr.Next()
		if err != nil {
			break
		}
		r.handle(msg, truncated, cr.recv)
		if r.full() {
			if err = r.flush(); err != nil {
				break
			}
		}
	}
	st.framingErrors.Add(fr.FramingErrors())
	if ferr := r.close(); ferr != nil && err == nil {
		err = ferr
	}
	switch {
	case err == io.EOF, errors.Is(err, errShutdown), errors.Is(err, net.ErrClosed):
	case isTimeout(err):
		if !s.closing.Load() {
			st.idleTimeouts.Add(1)
		}
	default:
		st.readErrors.Add(1)
		s.cfg.Logger.Debug("syslog: connection ended", "tls", tlsOn, "remote", peer.String(), "err", err)
	}
}
