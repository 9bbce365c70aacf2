package xdp

import (
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Geometry sizes a socket's UMEM and rings. Ring sizes are powers of two.
type Geometry struct {
	Frames    int // UMEM frames; all of them sit in the fill ring at start
	FrameSize int // bytes per frame: 2048 holds any 1500-byte-MTU frame
	Ring      int // RX and completion ring descriptors
}

// DefaultGeometry is 16384 frames of 2 KiB (32 MiB of UMEM) and an RX ring
// of 8192 descriptors — 40 ms at 200k packets/s, the same order as an 8 MiB
// UDP socket buffer holds of small datagrams, so a reader that is
// descheduled for a moment loses the same on both paths.
var DefaultGeometry = Geometry{Frames: 16384, FrameSize: 2048, Ring: 8192}

// Socket is an AF_XDP socket in copy mode bound to one receive queue, with
// its UMEM and mapped rings. One goroutine at a time may call Receive.
type Socket struct {
	fd      int
	queue   int
	g       Geometry
	umem    []byte
	rxMem   []byte
	fillMem []byte
	compMem []byte
	off     unix.XDPMmapOffsets

	rxProd, rxCons, fillProd *uint32
	descs                    []unix.XDPDesc
	fill                     []uint64
	pfd                      []unix.PollFd
}

// Open creates the socket bound to queue of ifindex (resolved in the
// calling thread's network namespace), every UMEM frame handed to the kernel.
func Open(ifindex, queue int, g Geometry) (_ *Socket, err error) {
	if g == (Geometry{}) {
		g = DefaultGeometry
	}
	if g.Frames&(g.Frames-1) != 0 || g.Ring&(g.Ring-1) != 0 || g.Frames <= 0 || g.Ring <= 0 {
		return nil, fmt.Errorf("AF_XDP geometry %+v: frames and ring must be powers of two", g)
	}
	s := &Socket{fd: -1, queue: queue, g: g}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, classify(ErrSocket, "open AF_XDP socket (kernel without CONFIG_XDP_SOCKETS?)", err)
	}
	s.fd = fd
	s.umem, err = unix.Mmap(-1, 0, g.Frames*g.FrameSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, classify(ErrSocket, "allocate UMEM", err)
	}
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&s.umem[0]))), Len: uint64(len(s.umem)), Size: uint32(g.FrameSize)}
	if err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		return nil, classify(ErrSocket, "register UMEM (locked-memory limit, ulimit -l?)", err)
	}
	for _, r := range []struct{ opt, n int }{{unix.XDP_UMEM_FILL_RING, g.Frames}, {unix.XDP_UMEM_COMPLETION_RING, g.Ring}, {unix.XDP_RX_RING, g.Ring}} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, r.opt, r.n); err != nil {
			return nil, classify(ErrSocket, fmt.Sprintf("size AF_XDP ring %d", r.opt), err)
		}
	}
	size := uint32(unsafe.Sizeof(s.off))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&s.off)), uintptr(unsafe.Pointer(&size)), 0); e != 0 {
		return nil, classify(ErrSocket, "read AF_XDP ring offsets", e)
	}
	mm := func(pgoff int64, length uint64) ([]byte, error) {
		return unix.Mmap(fd, pgoff, int(length), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	}
	if s.rxMem, err = mm(unix.XDP_PGOFF_RX_RING, s.off.Rx.Desc+uint64(g.Ring)*uint64(unsafe.Sizeof(unix.XDPDesc{}))); err != nil {
		return nil, classify(ErrSocket, "map RX ring", err)
	}
	if s.fillMem, err = mm(unix.XDP_UMEM_PGOFF_FILL_RING, s.off.Fr.Desc+uint64(g.Frames)*8); err != nil {
		return nil, classify(ErrSocket, "map fill ring", err)
	}
	if s.compMem, err = mm(unix.XDP_UMEM_PGOFF_COMPLETION_RING, s.off.Cr.Desc+uint64(g.Ring)*8); err != nil {
		return nil, classify(ErrSocket, "map completion ring", err)
	}
	s.rxProd, s.rxCons = u32(s.rxMem, s.off.Rx.Producer), u32(s.rxMem, s.off.Rx.Consumer)
	s.fillProd = u32(s.fillMem, s.off.Fr.Producer)
	s.descs = unsafe.Slice((*unix.XDPDesc)(unsafe.Pointer(&s.rxMem[s.off.Rx.Desc])), g.Ring)
	s.fill = unsafe.Slice((*uint64)(unsafe.Pointer(&s.fillMem[s.off.Fr.Desc])), g.Frames)
	s.pfd = []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	// Hand every frame to the kernel: the fill ring holds them all, so it
	// never overflows when frames come back.
	for i := range s.fill {
		s.fill[i] = uint64(i * g.FrameSize)
	}
	atomic.StoreUint32(s.fillProd, uint32(g.Frames))
	if err := unix.Bind(fd, &unix.SockaddrXDP{Flags: unix.XDP_COPY, Ifindex: uint32(ifindex), QueueID: uint32(queue)}); err != nil {
		return nil, classify(ErrSocket, fmt.Sprintf("bind AF_XDP socket to interface index %d queue %d (does the interface have that queue?)", ifindex, queue), err)
	}
	return s, nil
}

// Queue is the receive queue the socket is bound to.
func (s *Socket) Queue() int { return s.queue }

// Receive calls fn with every frame waiting in the RX ring and gives the
// frames back to the kernel; fn must not keep the slice. It returns how
// many frames it handled, 0 when the ring was empty.
func (s *Socket) Receive(fn func(frame []byte)) int {
	cons := *s.rxCons
	prod := atomic.LoadUint32(s.rxProd)
	n := prod - cons
	if n == 0 {
		return 0
	}
	rmask, fmask := uint32(s.g.Ring-1), uint32(s.g.Frames-1)
	fp := *s.fillProd
	for i := uint32(0); i < n; i++ {
		d := s.descs[(cons+i)&rmask]
		if end := d.Addr + uint64(d.Len); end <= uint64(len(s.umem)) {
			fn(s.umem[d.Addr:end:end])
		}
		s.fill[(fp+i)&fmask] = d.Addr
	}
	atomic.StoreUint32(s.fillProd, fp+n)
	atomic.StoreUint32(s.rxCons, cons+n)
	return int(n)
}

// Wait blocks until frames are waiting or timeout passes (poll(2)).
func (s *Socket) Wait(timeout time.Duration) error {
	if atomic.LoadUint32(s.rxProd) != *s.rxCons {
		return nil
	}
	_, err := unix.Poll(s.pfd, int(timeout/time.Millisecond))
	if err == unix.EINTR {
		return nil
	}
	return err
}

// Drops is what the socket lost: RX ring full, fill ring empty, and
// frames the kernel could not copy (XDP_STATISTICS).
func (s *Socket) Drops() (uint64, error) {
	var st unix.XDPStatistics
	size := uint32(unsafe.Sizeof(st))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(s.fd), unix.SOL_XDP, unix.XDP_STATISTICS,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&size)), 0); e != 0 {
		return 0, fmt.Errorf("read AF_XDP statistics: %w", e)
	}
	return st.Rx_dropped + st.Rx_ring_full + st.Rx_fill_ring_empty_descs, nil
}

// Close unmaps the rings and the UMEM and closes the socket. No Receive
// may be running.
func (s *Socket) Close() error {
	for _, m := range [][]byte{s.rxMem, s.fillMem, s.compMem} {
		if m != nil {
			unix.Munmap(m)
		}
	}
	s.rxMem, s.fillMem, s.compMem, s.descs, s.fill = nil, nil, nil, nil, nil
	var err error
	if s.fd >= 0 {
		err = unix.Close(s.fd)
		s.fd = -1
	}
	if s.umem != nil {
		unix.Munmap(s.umem)
		s.umem = nil
	}
	return err
}

func u32(mem []byte, off uint64) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }

func setsockopt(fd, opt int, p unsafe.Pointer, n uintptr) error {
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), n, 0); e != 0 {
		return e
	}
	return nil
}
