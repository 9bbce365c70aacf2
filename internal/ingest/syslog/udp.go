package syslog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
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
	conn   *net.UDPConn    // nil for a blocking socket (udpBlocking)
	rc     syscall.RawConn // of conn
	fd     int             // the blocking socket, read outside Go's poller
	addr   *net.UDPAddr    // bound address
	label  string          // metric label: the socket's index
	inode  uint64          // to find its line in /proc/net/udp
	rcvbuf int             // effective SO_RCVBUF

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
	reads    atomic.Uint64 // recvmmsg calls that returned datagrams (the benchmark's datagrams per wake-up)
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
		var s *udpSocket
		var err error
		if cfg.udpBlocking != udpPoller {
			s, err = listenUDPBlocking(addr, i, cfg)
		} else {
			s, err = listenUDPPoller(ctx, addr, i, cfg)
		}
		if err != nil {
			for _, s := range socks {
				s.close()
			}
			return nil, err
		}
		if i == 0 {
			addr = s.addr.String() // a ":0" port: the others join the one picked
		}
		socks = append(socks, s)
	}
	if want := cfg.RcvBuf; want > 0 && socks[0].rcvbuf < want {
		cfg.Logger.Warn("syslog: UDP receive buffer is smaller than asked; run as root (SO_RCVBUFFORCE) or raise net.core.rmem_max",
			"asked", want, "effective", socks[0].rcvbuf)
	}
	return socks, nil
}

// setupUDPFD sets what every syslog UDP socket needs before bind.
func setupUDPFD(fd int, cfg *Config) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fmt.Errorf("set SO_REUSEPORT: %w", err)
	}
	if cfg.RcvBuf > 0 {
		// SO_RCVBUFFORCE passes net.core.rmem_max but needs CAP_NET_ADMIN.
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, cfg.RcvBuf) != nil {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.RcvBuf); err != nil {
				return fmt.Errorf("set SO_RCVBUF %d (--syslog-rcvbuf): %w", cfg.RcvBuf, err)
			}
		}
	}
	return nil
}

// listenUDPPoller opens a socket read through Go's network poller.
func listenUDPPoller(ctx context.Context, addr string, index int, cfg *Config) (*udpSocket, error) {
	var sockErr error
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		err := c.Control(func(fd uintptr) { sockErr = setupUDPFD(int(fd), cfg) })
		if err != nil {
			return err
		}
		return sockErr
	}}
	pc, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, err
	}
	conn := pc.(*net.UDPConn)
	rc, err := conn.SyscallConn()
	if err != nil {
		pc.Close()
		return nil, err
	}
	s := &udpSocket{conn: conn, rc: rc, addr: conn.LocalAddr().(*net.UDPAddr)}
	var ierr error
	if err := rc.Control(func(fd uintptr) { ierr = s.init(int(fd), index, cfg) }); err != nil || ierr != nil {
		pc.Close()
		return nil, errors.Join(err, ierr)
	}
	return s, nil
}

// listenUDPBlocking opens a blocking socket that Go's poller never sees:
// its receive loop blocks in recvmmsg itself (udpLoopBlocking).
func listenUDPBlocking(addr string, index int, cfg *Config) (*udpSocket, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	family, sa := unix.AF_INET6, unix.Sockaddr(&unix.SockaddrInet6{Port: ua.Port})
	if ip4 := ua.IP.To4(); ip4 != nil {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: ua.Port, Addr: [4]byte(ip4)}
	} else if ua.IP != nil {
		sa.(*unix.SockaddrInet6).Addr = [16]byte(ua.IP.To16())
		if ua.Zone != "" { // a link-local address names its interface
			ifi, err := net.InterfaceByName(ua.Zone)
			if err != nil {
				return nil, err
			}
			sa.(*unix.SockaddrInet6).ZoneId = uint32(ifi.Index)
		}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err == unix.EAFNOSUPPORT && ua.IP == nil {
		// No IPv6 (disabled in the kernel or the container): a wildcard
		// address takes IPv4 alone, as package net does.
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: ua.Port}
		fd, err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if family == unix.AF_INET6 && (ua.IP == nil || ua.IP.IsUnspecified()) {
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0) // ":port" takes IPv4 too, as net does
	}
	if err := setupUDPFD(fd, cfg); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, &net.OpError{Op: "listen", Net: "udp", Addr: ua, Err: os.NewSyscallError("bind", err)}
	}
	s := &udpSocket{fd: fd}
	switch a, _ := unix.Getsockname(fd); a := a.(type) {
	case *unix.SockaddrInet4:
		s.addr = &net.UDPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	case *unix.SockaddrInet6:
		s.addr = &net.UDPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	default:
		unix.Close(fd)
		return nil, fmt.Errorf("getsockname of UDP socket: %v", a)
	}
	if err := s.init(fd, index, cfg); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return s, nil
}

// close releases the socket.
func (s *udpSocket) close() {
	if s.conn != nil {
		s.conn.Close()
	} else {
		unix.Close(s.fd)
	}
}

// wake makes the receive loop return from its wait, for Close.
func (s *udpSocket) wake() {
	if s.conn != nil {
		s.conn.SetReadDeadline(time.Now())
		return
	}
	// A reader blocked in recvmmsg returns; datagrams already queued can
	// still be read (the drain), new ones are not waited for.
	unix.Shutdown(s.fd, unix.SHUT_RD)
}

// init reads the socket's identity and builds the recvmmsg state.
func (s *udpSocket) init(fd, index int, cfg *Config) error {
	maxMessage, maxSlots := cfg.MaxMessage, cfg.udpSlots
	s.label = strconv.Itoa(index)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("inspect UDP socket: %w", err)
	}
	var err error
	if s.rcvbuf, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF); err != nil {
		return fmt.Errorf("inspect UDP socket: %w", err)
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
	return nil
}

// recvmmsg reads up to len(hdrs) datagrams without blocking.
func (s *udpSocket) recvmmsg(fd uintptr) (int, syscall.Errno) {
	return s.recvmmsgFlags(fd, unix.MSG_DONTWAIT)
}

func (s *udpSocket) recvmmsgFlags(fd uintptr, flags int) (int, syscall.Errno) {
	for i := range s.hdrs { // msg_namelen is value-result: the kernel shrinks it
		s.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
	}
	r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])),
		uintptr(len(s.hdrs)), uintptr(flags), 0, 0)
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
// is full, or Config.UDPLinger after its first message: waiting that long for
// more datagrams when the socket runs dry keeps batches (and Produce calls)
// large at moderate rates, where handing over every few datagrams would cost
// more CPU than receiving them.
func (s *Server) udpLoop(sock *udpSocket) {
	if sock.conn == nil {
		s.udpLoopBlocking(sock, s.cfg.udpBlocking == udpBlockingLocked)
		return
	}
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
			sock.conn.SetReadDeadline(time.Now().Add(s.cfg.UDPLinger))
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
		sock.reads.Add(1)
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

// udpLoopBlocking is udpLoop for a blocking socket: recvmmsg with
// MSG_WAITFORONE blocks until a datagram arrives and returns every one
// queued (up to the slots), with no epoll_wait and no empty read before
// each wait. SO_RCVTIMEO bounds the wait while a batch lingers; Close
// wakes the wait with shutdown(SHUT_RD). locked pins the goroutine to its
// OS thread, as a C receiver's thread is.
func (s *Server) udpLoopBlocking(sock *udpSocket, locked bool) {
	defer s.wg.Done()
	defer sock.close()
	if locked {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	r := s.newReceiver(&s.udpStats, udpProducers, udpQueued)
	fd := uintptr(sock.fd)
	linger, pause := s.cfg.UDPLinger, s.cfg.udpPauseTime
	var first time.Time       // when the pending batch got its first datagram
	var timeout time.Duration // SO_RCVTIMEO as set; 0 = none
	setTimeout := func(d time.Duration) {
		if d > 0 {
			d = max(d, 10*time.Microsecond) // a zero timeval would mean no timeout
		}
		tv := unix.NsecToTimeval(d.Nanoseconds())
		unix.SetsockoptTimeval(sock.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		timeout = d
	}
	for !s.closing.Load() {
		if r.b.len() > 0 {
			left := linger - time.Since(first)
			if left <= 0 {
				r.flush()
				continue
			}
			// A read that blocks wakes by the linger's end, give or take an
			// eighth: the timeout set for an earlier read is set again once
			// it would overshoot by more (a setsockopt every linger/8 at
			// most, not one per read).
			if timeout == 0 || timeout > left+linger/8 {
				setTimeout(left)
			}
		} else if timeout != 0 {
			setTimeout(0) // wait without bound: Close wakes us
		}
		n, errno := sock.recvmmsgFlags(fd, unix.MSG_WAITFORONE)
		switch errno {
		case 0:
		case unix.EAGAIN: // the linger ran out with nothing more
			r.flush()
			continue
		case unix.EINTR:
			continue
		default:
			s.cfg.Logger.Warn("syslog: UDP receive failed", "socket", sock.label, "err", errno)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if n == 0 {
			continue // shut down: the loop condition sees closing
		}
		if r.b.len() == 0 {
			first = time.Now()
		}
		sock.n = n
		sock.reads.Add(1)
		s.udpBatch(r, sock)
		if r.full() {
			r.flush()
		}
		if pause > 0 && n < len(sock.hdrs) {
			// The socket ran dry: let the next datagrams gather instead of
			// waking for each (udpPause), within the batch's linger.
			d := pause
			if r.b.len() > 0 {
				d = min(d, linger-time.Since(first))
			}
			if d > 0 {
				ts := unix.NsecToTimespec(d.Nanoseconds())
				unix.Nanosleep(&ts, nil) // EINTR: read early, no harm
			}
		}
	}
	for i := 0; i*len(sock.hdrs)*64 < max(sock.rcvbuf, 1<<20); i++ {
		sock.drainFn(fd)
		if sock.n == 0 {
			break
		}
		s.udpBatch(r, sock)
		if r.full() {
			r.flush()
		}
	}
	r.close()
}
