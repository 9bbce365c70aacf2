package syslog

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/xdp"
)

// xdpGeometry sizes each receive queue's AF_XDP socket: 4096 frames of
// 2 KiB (8 MiB of UMEM per queue, so a VF with a handful of queues stays
// small) and an RX ring of 2048 — about 10 ms at 200k datagrams/s, as much as
// the producers' queue absorbs beyond it. A frame longer than 2 KiB minus
// the kernel's headroom (jumbo MTU) is dropped by the kernel and counted in
// wirelog_syslog_xdp_ring_drops_total.
var xdpGeometry = xdp.Geometry{Frames: 4096, FrameSize: 2048, Ring: 2048}

// xdpIdlePoll bounds how long an idle AF_XDP reader sleeps in poll(2)
// before it looks at the closing flag again.
const xdpIdlePoll = 50 * time.Millisecond

// xdpQueue is one receive queue's AF_XDP socket.
type xdpQueue struct {
	sock  *xdp.Socket
	label string        // metric label: the queue index
	drops atomic.Uint64 // last XDP_STATISTICS read, kept after Close
}

// startXDP attaches the redirect program for the UDP listener's port to
// cfg.XDP and opens one AF_XDP socket per receive queue. It runs
// in the calling thread's network namespace, as the UDP sockets do.
func (s *Server) startXDP() (err error) {
	if len(s.udp) == 0 {
		return fmt.Errorf("needs --syslog-udp: the UDP listener's port is the one redirected, and it receives what AF_XDP does not")
	}
	port := s.udp[0].addr.Port
	ifindex, queues, err := xdp.Interface(s.cfg.XDP)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.closeXDP()
		}
	}()
	for q := 0; q < queues; q++ {
		sock, err := xdp.Open(ifindex, q, xdpGeometry)
		if q > 0 && errors.Is(err, unix.EINVAL) {
			break // the interface has fewer queues in use than it was created with (veth, ethtool -L)
		}
		if err != nil {
			return err
		}
		s.xdpQueues = append(s.xdpQueues, &xdpQueue{sock: sock, label: strconv.Itoa(q)})
	}
	if s.xdpProg, err = xdp.Attach(ifindex, queues, port, xdp.ModeAuto); err != nil {
		return err
	}
	for _, q := range s.xdpQueues {
		if err := s.xdpProg.Register(q.sock); err != nil {
			return err
		}
	}
	s.cfg.Logger.Info("syslog: receiving UDP through AF_XDP", "interface", s.cfg.XDP, "port", port,
		"queues", len(s.xdpQueues), "xdp_mode", s.xdpProg.Mode.String())
	return nil
}

// xdpLoop reads one queue's socket until Close, then drains its RX ring.
// Batching follows udpLoop: a batch goes to the producers when full, or
// xdpLinger after its first message. While every producer is busy the loop
// stops reading, the RX ring fills and the kernel drops at the socket —
// counted in wirelog_syslog_xdp_ring_drops_total.
func (s *Server) xdpLoop(q *xdpQueue) {
	defer s.wg.Done()
	r := s.newReceiver(&s.xdpStats, udpProducers, udpQueued)
	var recv, first time.Time // first: when the pending batch got its first message
	var lastSrc [6]byte       // the last sender's IPv4 address and port, and its attrs members
	var peer []byte
	handle := func(frame []byte) {
		msg, ok := xdp.UDPPayload(frame)
		if !ok {
			s.xdpMalformed.Add(1)
			return
		}
		// The sender: IPv4 source address and UDP source port (the program
		// redirects only IPv4 without options, so the offsets are fixed).
		var src [6]byte
		copy(src[:4], frame[14+12:14+16])
		copy(src[4:], frame[14+20:14+22])
		if src != lastSrc || peer == nil {
			lastSrc = src
			peer = event.AppendClientAddr(peer[:0], netip.AddrPortFrom(netip.AddrFrom4([4]byte(src[:4])), uint16(src[4])<<8|uint16(src[5])))
		}
		r.peer = peer
		truncated := false
		if len(msg) > s.cfg.MaxMessage {
			msg, truncated = msg[:s.cfg.MaxMessage], true
		}
		r.handle(msg, truncated, recv)
		if r.full() {
			r.flush()
			first = time.Time{}
		}
	}
	for {
		closing := s.closing.Load() // read before the ring: what follows is drained
		recv = time.Now()
		n := q.sock.Receive(handle)
		if n == 0 && closing {
			break
		}
		if r.b.len() > 0 {
			if first.IsZero() {
				first = recv
			}
			if time.Since(first) >= xdpLinger {
				r.flush()
				first = time.Time{}
			}
		}
		if n == 0 {
			wait := xdpIdlePoll
			if !first.IsZero() {
				wait = max(time.Millisecond, xdpLinger-time.Since(first))
			}
			q.sock.Wait(wait)
		}
	}
	r.close()
	if n, err := q.sock.Drops(); err == nil {
		q.drops.Store(n)
	}
}

// detachXDP detaches the program: from then on every datagram goes to the
// kernel (and the UDP listener) while the loops drain their rings.
func (s *Server) detachXDP() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.xdpProg != nil {
		s.xdpProg.Close()
		s.xdpProg = nil
	}
}

// closeXDP detaches the program and frees the sockets; the loops must have ended.
func (s *Server) closeXDP() {
	s.detachXDP()
	s.mu.Lock() // a scrape may be reading the sockets' statistics
	defer s.mu.Unlock()
	for _, q := range s.xdpQueues {
		if q.sock != nil {
			q.sock.Close()
			q.sock = nil
		}
	}
}

var (
	descXDPDrops     = desc("xdp_ring_drops_total", "Datagrams the kernel dropped at a --syslog-xdp AF_XDP socket (RX ring full, no free frame, frame too long), by receive queue.", "queue")
	descXDPMalformed = desc("xdp_malformed_total", "Frames redirected to AF_XDP whose UDP length exceeds the frame; not produced.")
)

func describeXDP(ch chan<- *prometheus.Desc) {
	ch <- descXDPDrops
	ch <- descXDPMalformed
}

// collectXDP exports the AF_XDP counters; the per-message ones are in the
// wirelog_syslog_* set with transport="xdp".
func (s *Server) collectXDP(ch chan<- prometheus.Metric) {
	if len(s.xdpQueues) == 0 {
		return
	}
	ch <- counter(descXDPMalformed, s.xdpMalformed.Load())
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.xdpQueues {
		if q.sock != nil {
			if n, err := q.sock.Drops(); err == nil {
				q.drops.Store(n)
			}
		}
		ch <- counter(descXDPDrops, q.drops.Load(), q.label)
	}
}
