package syslog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	sysparse "github.com/wirelog/wirelog/internal/parse/syslog"
)

// udpSocket is one SO_REUSEPORT socket and its recvmmsg(2) state. It reads
// with unix recvmmsg directly rather than golang.org/x/net/ipv4 ReadBatch,
// which allocates on every call and measured slower (docs/bench/syslog.md).
type udpSocket struct {
	conn   *net.UDPConn
	rc     syscall.RawConn
	label  string // metric label: the socket's index
	inode  uint64 // to find its line in /proc/net/udp
	rcvbuf int    // effective SO_RCVBUF

	lastDrops atomic.Uint64

	slot  int // bytes per datagram slot
	mem   []byte
	iovs  []unix.Iovec
	hdrs  []unix.Mmsghdr
	names []unix.RawSockaddrInet6 // each datagram's sender (IPv4 fits too)
	// The last sender and its "client.address"/"client.port" members:
	// datagrams come in runs from the same few senders, so the text is
	// rebuilt only when the sender changes.
	lastName unix.RawSockaddrInet6
	lastPeer []byte
	lastAP   netip.AddrPort
	lastKey  []byte // the sender's address as text: the raw records' partition key
	n        int
	errno    syscall.Errno
	readFn   func(fd uintptr) bool // built once: a closure per call would allocate
	drainFn  func(fd uintptr)
}

// listenUDP opens cfg.UDPSockets sockets on one address with SO_REUSEPORT,
// so the kernel spreads datagrams over them by source address and port.
func listenUDP(ctx context.Context, cfg *Config) ([]*udpSocket, error) {
	addr := cfg.UDPAddr
	var socks []*udpSocket
	for i := 0; i < cfg.UDPSockets; i++ {
		var sockErr error
		lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
			err := c.Control(func(fd uintptr) {
				if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
					sockErr = fmt.Errorf("set SO_REUSEPORT: %w", err)
					return
				}
				if cfg.RcvBuf > 0 {
					// SO_RCVBUFFORCE passes net.core.rmem_max but needs CAP_NET_ADMIN.
					if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, cfg.RcvBuf) != nil {
						if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.RcvBuf); err != nil {
							sockErr = fmt.Errorf("set SO_RCVBUF %d (--syslog-rcvbuf): %w", cfg.RcvBuf, err)
						}
					}
				}
			})
			if err != nil {
				return err
			}
			return sockErr
		}}
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			for _, s := range socks {
				s.conn.Close()
			}
			return nil, err
		}
		if i == 0 {
			addr = pc.LocalAddr().String() // a ":0" port: the others join the one picked
		}
		s, err := newUDPSocket(pc.(*net.UDPConn), i, cfg.MaxMessage, cfg.udpSlots)
		if err != nil {
			pc.Close()
			for _, s := range socks {
				s.conn.Close()
			}
			return nil, err
		}
		socks = append(socks, s)
	}
	if want := cfg.RcvBuf; want > 0 && socks[0].rcvbuf < want {
		cfg.Logger.Warn("syslog: UDP receive buffer is smaller than asked; run as root (SO_RCVBUFFORCE) or raise net.core.rmem_max",
			"asked", want, "effective", socks[0].rcvbuf)
	}
	return socks, nil
}

func newUDPSocket(conn *net.UDPConn, index, maxMessage, maxSlots int) (*udpSocket, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	s := &udpSocket{conn: conn, rc: rc, label: strconv.Itoa(index)}
	var st unix.Stat_t
	var serr error
	err = rc.Control(func(fd uintptr) {
		if serr = unix.Fstat(int(fd), &st); serr != nil {
			return
		}
		s.rcvbuf, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	if err = errors.Join(err, serr); err != nil {
		return nil, fmt.Errorf("inspect UDP socket: %w", err)
	}
	s.inode = st.Ino

	// One slot per datagram; a datagram longer than its slot comes back
	// with MSG_TRUNC and is counted as truncated.
	s.slot = min(maxMessage, 65535)
	slots := max(8, min(udpSlotsMax, udpSlotBytes/s.slot))
	if maxSlots > 0 {
		slots = maxSlots // the benchmark's explicit choice, past the memory cap
	}
	s.mem = make([]byte, slots*s.slot)
	s.iovs = make([]unix.Iovec, slots)
	s.hdrs = make([]unix.Mmsghdr, slots)
	s.names = make([]unix.RawSockaddrInet6, slots)
	for i := range s.hdrs {
		s.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&s.names[i]))
		s.iovs[i].Base = &s.mem[i*s.slot]
		s.iovs[i].SetLen(s.slot)
		s.hdrs[i].Hdr.Iov = &s.iovs[i]
		s.hdrs[i].Hdr.SetIovlen(1)
	}
	s.readFn = func(fd uintptr) bool {
		for {
			n, errno := s.recvmmsg(fd)
			switch errno {
			case 0:
				s.n, s.errno = n, 0
				return true
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // wait in the poller (or for the linger deadline)
			default:
				s.n, s.errno = 0, errno
				return true
			}
		}
	}
	s.drainFn = func(fd uintptr) {
		n, errno := s.recvmmsg(fd)
		if errno != 0 {
			n = 0
		}
		s.n, s.errno = n, 0
	}
	return s, nil
}

// recvmmsg reads up to len(hdrs) datagrams without blocking.
func (s *udpSocket) recvmmsg(fd uintptr) (int, syscall.Errno) {
	for i := range s.hdrs { // msg_namelen is value-result: the kernel shrinks it
		s.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
	}
	r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])),
		uintptr(len(s.hdrs)), unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), 0
}

// datagram returns the i-th datagram of the last recvmmsg and whether the
// kernel cut it to the slot.
func (s *udpSocket) datagram(i int) ([]byte, bool) {
	h := &s.hdrs[i]
	n := min(int(h.Len), s.slot)
	return s.mem[i*s.slot : i*s.slot+n], h.Hdr.Flags&unix.MSG_TRUNC != 0
}

// udpLoop receives on one socket until Close, then drains the datagrams
// already queued in the kernel. A batch is handed to the producers when it
// is full, or udpLinger after its first message: waiting that long for
// more datagrams when the socket runs dry keeps batches (and Produce calls)
// large at moderate rates, where handing over every few datagrams would cost
// more CPU than receiving them.
func (s *Server) udpLoop(sock *udpSocket) {
	defer s.wg.Done()
	defer sock.conn.Close()
	r := s.newReceiver(&s.udpStats, udpProducers, udpQueued)
	lingering := false // a read deadline is set for the batch being filled
	stopLinger := func() bool {
		lingering = false
		sock.conn.SetReadDeadline(time.Time{})
		return !s.closing.Load() // Close's deadline may just have been replaced
	}
	for {
		if r.b.len() > 0 && !lingering {
			lingering = true
			sock.conn.SetReadDeadline(time.Now().Add(udpLinger))
			if s.closing.Load() {
				break
			}
		}
		if err := sock.rc.Read(sock.readFn); err != nil {
			if s.closing.Load() || !isTimeout(err) {
				break // Close set a past deadline (or the socket is gone)
			}
			r.flush() // the linger ran out
			if !stopLinger() {
				break
			}
			continue
		}
		if sock.errno != 0 {
			s.cfg.Logger.Warn("syslog: UDP receive failed", "socket", sock.label, "err", sock.errno)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.udpBatch(r, sock)
		if r.full() {
			r.flush() // errors are counted; UDP has no one to tell
			if lingering && !stopLinger() {
				break
			}
		}
	}
	// Drain what the kernel already queued, bounded by the buffer size.
	for i := 0; i*len(sock.hdrs)*64 < max(sock.rcvbuf, 1<<20); i++ {
		if err := sock.rc.Control(sock.drainFn); err != nil || sock.n == 0 {
			break
		}
		s.udpBatch(r, sock)
		if r.full() {
			r.flush()
		}
	}
	r.close()
}

func (s *Server) udpBatch(r *receiver, sock *udpSocket) {
	recv := time.Now()
	if s.cfg.UDPRaw {
		m := sysparse.RecordMeta{Recv: recv, MaxAttributes: s.cfg.MaxAttributes, Location: s.cfg.Location}
		for i := 0; i < sock.n; i++ {
			msg, truncated := sock.datagram(i)
			if len(msg) > s.cfg.MaxMessage {
				msg, truncated = msg[:s.cfg.MaxMessage], true
			}
			sock.peer(i)
			m.Peer = sock.lastAP
			r.handleRaw(msg, truncated, &m, sock.lastKey)
		}
		return
	}
	for i := 0; i < sock.n; i++ {
		msg, truncated := sock.datagram(i)
		if len(msg) > s.cfg.MaxMessage {
			msg, truncated = msg[:s.cfg.MaxMessage], true
		}
		r.peer = sock.peer(i)
		r.handle(msg, truncated, recv)
	}
}

// peer returns the JSON members naming the sender of the i-th datagram.
func (s *udpSocket) peer(i int) []byte {
	n := &s.names[i]
	if *n == s.lastName && s.lastPeer != nil {
		return s.lastPeer
	}
	var ap netip.AddrPort
	switch n.Family {
	case unix.AF_INET:
		in4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(n))
		ap = netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), ntohs(in4.Port))
	case unix.AF_INET6:
		ap = netip.AddrPortFrom(netip.AddrFrom16(n.Addr).Unmap(), ntohs(n.Port))
	default:
		s.lastAP, s.lastKey = netip.AddrPort{}, nil
		return nil
	}
	s.lastName = *n
	s.lastAP = ap
	s.lastPeer = appendPeer(s.lastPeer[:0], ap)
	s.lastKey = ap.Addr().AppendTo(s.lastKey[:0])
	return s.lastPeer
}

// ntohs turns a port as the kernel stores it (network order) into a number.
func ntohs(p uint16) uint16 { return p>>8 | p<<8 }
