package netlab

import (
	"encoding/binary"
	"fmt"
	"net"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// sendBatch is the most datagrams one sendmmsg call carries.
	sendBatch = 64
	// maxStepPackets bounds one step's packet count whatever the flags say.
	maxStepPackets = 50_000_000
	// sendOverrun is how long a sender that cannot keep its pace may run
	// past the step's duration before it stops anyway.
	sendOverrun = 500 * time.Millisecond
	// longLivedFlows is the number of source ports of the long-lived
	// pattern.
	longLivedFlows = 4
)

// sender is a UDP generator on a raw IPv4 socket (IP_HDRINCL) in the client
// namespace: raw, so the new-flow pattern can set any source address and
// port per datagram while still sending in sendmmsg batches.
type sender struct {
	fd   int
	size int
	cpu  int
	buf  []byte
	iovs []unix.Iovec
	hdrs []unix.Mmsghdr
	sa   unix.RawSockaddrInet4

	// new-flow state, kept across steps so flows are not reused soon.
	nextHost byte
	nextPort uint16
}

// sendSpec is one step's traffic.
type sendSpec struct {
	Dst      net.IP
	DstPort  int
	Src      net.IP // the client's address; the new-flow pattern varies the host part
	Flow     string
	Rate     int // packets/s; 0 sends as fast as it can (ceiling)
	Duration time.Duration
	Step     uint16
}

// sendResult is what the generator did.
type sendResult struct {
	Sent    uint64
	Errors  uint64
	Elapsed time.Duration
	CPU     time.Duration // the generator thread's own CPU time
}

// newSender opens the raw socket inside ns and lays out sendBatch
// datagrams of size payload bytes.
func newSender(ns *namespace, size, cpu int) (*sender, error) {
	if size < MinPayload || size > MaxPayload {
		return nil, fmt.Errorf("payload size %d: must be %d to %d bytes (--sizes)", size, MinPayload, MaxPayload)
	}
	s := &sender{size: size, cpu: cpu, fd: -1, nextHost: 10, nextPort: 1024}
	err := inNamespace(ns.h, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return fmt.Errorf("open raw socket: %w", err)
		}
		s.fd = fd
		// A large send buffer keeps sendmmsg from blocking on the socket
		// before the pacing does.
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("generator in %s: %w", ns.name, err)
	}
	pkt := 20 + 8 + size
	s.buf = make([]byte, sendBatch*pkt)
	s.iovs = make([]unix.Iovec, sendBatch)
	s.hdrs = make([]unix.Mmsghdr, sendBatch)
	for i := 0; i < sendBatch; i++ {
		p := s.buf[i*pkt : (i+1)*pkt]
		p[0] = 0x45 // IPv4, 20-byte header
		binary.BigEndian.PutUint16(p[2:], uint16(pkt))
		p[6] = 0x40 // don't fragment
		p[8] = 64   // TTL
		p[9] = unix.IPPROTO_UDP
		binary.BigEndian.PutUint16(p[24:], uint16(8+size))
		fillPayload(p[28:])
		s.iovs[i].Base = &p[0]
		s.iovs[i].SetLen(pkt)
		s.hdrs[i].Hdr.Iov = &s.iovs[i]
		s.hdrs[i].Hdr.SetIovlen(1)
		s.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&s.sa))
		s.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet4
	}
	return s, nil
}

func (s *sender) close() {
	if s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
}

// run sends one step on a thread pinned to the sender's core. Every loop
// is bounded: by the step's packet budget and by its duration plus
// sendOverrun.
func (s *sender) run(sp sendSpec) (sendResult, error) {
	var res sendResult
	err := onThread(func() error {
		var set unix.CPUSet
		set.Set(s.cpu)
		unix.SchedSetaffinity(0, &set) // best effort: a 1-CPU machine has no choice
		tid := unix.Gettid()
		c0, _ := threadCPU(unix.Getpid(), tid)
		res = s.loop(sp)
		c1, _ := threadCPU(unix.Getpid(), tid)
		res.CPU = c1 - c0
		return nil
	})
	return res, err
}

func (s *sender) loop(sp sendSpec) sendResult {
	dst := sp.Dst.To4()
	s.sa = unix.RawSockaddrInet4{Family: unix.AF_INET}
	copy(s.sa.Addr[:], dst)
	src := sp.Src.To4()
	pkt := 20 + 8 + s.size
	for i := 0; i < sendBatch; i++ {
		p := s.buf[i*pkt:]
		copy(p[12:16], src)
		copy(p[16:20], dst)
		binary.BigEndian.PutUint16(p[22:], uint16(sp.DstPort))
		binary.BigEndian.PutUint16(p[20:], uint16(40000+i%longLivedFlows))
	}
	budget := uint64(maxStepPackets)
	if sp.Rate > 0 {
		budget = min(budget, uint64(float64(sp.Rate)*sp.Duration.Seconds()+0.5))
	}
	var res sendResult
	var seq uint64
	start := time.Now()
	deadline := sp.Duration
	if sp.Rate > 0 {
		deadline += sendOverrun
	}
	for res.Sent < budget {
		elapsed := time.Since(start)
		if elapsed >= deadline {
			break
		}
		n := uint64(sendBatch)
		if sp.Rate > 0 {
			due := uint64(float64(sp.Rate)*elapsed.Seconds()) + 1
			if due <= res.Sent {
				// Ahead of pace: wait for the next packet's time. Sleep
				// overshoots, which the next, larger batch absorbs.
				next := time.Duration(float64(res.Sent+1) / float64(sp.Rate) * float64(time.Second))
				if wait := next - elapsed; wait > 20*time.Microsecond {
					time.Sleep(wait)
				}
				continue
			}
			n = min(n, due-res.Sent)
		}
		n = min(n, budget-res.Sent)
		now := nowNS()
		for i := uint64(0); i < n; i++ {
			p := s.buf[int(i)*pkt:]
			if sp.Flow == FlowNew {
				p[15] = s.nextHost
				binary.BigEndian.PutUint16(p[20:], s.nextPort)
				if s.nextPort++; s.nextPort == 0 {
					s.nextPort = 1024
					if s.nextHost++; s.nextHost > 249 {
						s.nextHost = 10
					}
				}
			}
			putHex16(p[28+seqOff:], uint64(sp.Step)<<stepShift|seq)
			putHex16(p[28+tsOff:], now)
			seq++
		}
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(n), 0, 0, 0)
		if errno != 0 {
			res.Errors += n
			if errno == unix.ENOBUFS || errno == unix.EAGAIN {
				time.Sleep(50 * time.Microsecond)
			}
			continue
		}
		res.Sent += uint64(r)
		if uint64(r) < n {
			res.Errors += n - uint64(r)
		}
	}
	res.Elapsed = time.Since(start)
	return res
}
