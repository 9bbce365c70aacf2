package netlab

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/wirelog/wirelog/internal/event"
	sysparse "github.com/wirelog/wirelog/internal/parse/syslog"
)

// AF_XDP socket geometry: 16384 frames of 2 KiB (32 MiB of UMEM) and an RX
// ring of 8192 descriptors — 40 ms at 200k packets/s, the same order as
// the kernel path's 8 MiB socket buffer holds of small datagrams, so a
// receiver that is descheduled for a moment loses the same on both paths.
const (
	xskFrames    = 16384
	xskFrameSize = 2048
	xskRing      = 8192
	xskFillRing  = xskFrames // every frame fits in the fill ring: it never overflows
)

// xdpProgram returns the XDP program: IPv4/UDP datagrams (no IP options,
// not fragmented) for dstPort go to the AF_XDP socket of their receive
// queue; everything else (ARP, other ports) continues to the kernel stack.
// Written with cilium/ebpf's assembler, so building needs no clang.
func xdpProgram(xsks *ebpf.Map, dstPort int) asm.Instructions {
	portLE := int32(dstPort>>8 | (dstPort&0xff)<<8) // a network-order u16 as the LE load sees it
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),              // r6 = ctx
		asm.LoadMem(asm.R2, asm.R6, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R6, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 14+20+8),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),         // too short for eth+ip+udp
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),   // ethertype
		asm.JNE.Imm(asm.R5, 0x0008, "pass"),         // != IPv4
		asm.LoadMem(asm.R5, asm.R2, 14, asm.Byte),   // version + IHL
		asm.JNE.Imm(asm.R5, 0x45, "pass"),           // options: leave to the kernel
		asm.LoadMem(asm.R5, asm.R2, 14+6, asm.Half), // flags + fragment offset
		asm.And.Imm(asm.R5, 0xff3f),                 // MF or an offset: a fragment
		asm.JNE.Imm(asm.R5, 0, "pass"),
		asm.LoadMem(asm.R5, asm.R2, 14+9, asm.Byte), // protocol
		asm.JNE.Imm(asm.R5, unix.IPPROTO_UDP, "pass"),
		asm.LoadMem(asm.R5, asm.R2, 14+20+2, asm.Half), // UDP destination port
		asm.JNE.Imm(asm.R5, portLE, "pass"),
		asm.LoadMapPtr(asm.R1, xsks.FD()),
		asm.LoadMem(asm.R2, asm.R6, 16, asm.Word), // rx_queue_index
		asm.Mov.Imm(asm.R3, 2),                    // XDP_PASS if no socket on that queue
		asm.FnRedirectMap.Call(),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 2).WithSymbol("pass"), // XDP_PASS
		asm.Return(),
	}
}

// xskReceiver is a receiver reading an AF_XDP socket (copy mode) on the
// pod's VF stand-in, fed by xdpProgram.
type xskReceiver struct {
	ns      *namespace
	ifindex int
	prog    *ebpf.Program
	xsks    *ebpf.Map
	fd      int
	umem    []byte
	rxMem   []byte
	fillMem []byte
	compMem []byte
	off     unix.XDPMmapOffsets
	parse   bool // parse and encode each message as the syslog receiver does

	tid   int
	cur   atomic.Pointer[stepStats]
	stale atomic.Uint64
	stop  atomic.Bool
	done  chan struct{}
}

// startXSKReceiver loads the XDP program on ifPodVF in the pod namespace,
// opens and binds the AF_XDP socket to its queue 0 and starts receiving on
// a thread pinned to cpu. Any failure is ErrUnavailable with the kernel's
// reason, after undoing what was done.
func startXSKReceiver(pod *namespace, port, cpu int, parse bool) (rx *xskReceiver, err error) {
	x := &xskReceiver{ns: pod, fd: -1, parse: parse, done: make(chan struct{})}
	defer func() {
		if err != nil {
			x.release()
			err = fmt.Errorf("%w: AF_XDP on %s: %v", ErrUnavailable, ifPodVF, err)
		}
	}()
	link, err := pod.nl.LinkByName(ifPodVF)
	if err != nil {
		return nil, err
	}
	x.ifindex = link.Attrs().Index
	x.xsks, err = ebpf.NewMap(&ebpf.MapSpec{Name: "wl_xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("create XSK map (needs CONFIG_XDP_SOCKETS and root): %w", err)
	}
	x.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "wl_xsk_redirect", Type: ebpf.XDP, License: "GPL",
		Instructions: xdpProgram(x.xsks, port)})
	if err != nil {
		return nil, fmt.Errorf("load XDP program: %w", err)
	}
	if err := inNamespace(pod.h, x.openSocket); err != nil {
		return nil, err
	}
	if err := x.xsks.Put(uint32(0), uint32(x.fd)); err != nil {
		return nil, fmt.Errorf("put the socket in the XSK map: %w", err)
	}
	// Native (driver) mode: veth runs XDP in its NAPI poll.
	if err := inNamespace(pod.h, func() error {
		return netlink.LinkSetXdpFdWithFlags(link, x.prog.FD(), nl.XDP_FLAGS_DRV_MODE)
	}); err != nil {
		return nil, fmt.Errorf("attach XDP program to %s: %w", ifPodVF, err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(x.done)
		runtime.LockOSThread() // exits locked: the pinned thread is discarded
		var set unix.CPUSet
		set.Set(cpu)
		unix.SchedSetaffinity(0, &set)
		x.tid = unix.Gettid()
		close(ready)
		x.loop()
	}()
	<-ready
	return x, nil
}

// openSocket creates the UMEM, the rings and the socket, bound to queue 0
// of ifPodVF in copy mode (veth has no zero-copy support). It runs inside
// the pod namespace: the interface index is resolved there.
func (x *xskReceiver) openSocket() error {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open AF_XDP socket (kernel without CONFIG_XDP_SOCKETS?): %w", err)
	}
	x.fd = fd
	x.umem, err = unix.Mmap(-1, 0, xskFrames*xskFrameSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("allocate UMEM: %w", err)
	}
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&x.umem[0]))), Len: uint64(len(x.umem)), Size: xskFrameSize}
	if err := setsockoptRaw(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		return fmt.Errorf("register UMEM: %w", err)
	}
	for _, r := range []struct{ opt, n int }{{unix.XDP_UMEM_FILL_RING, xskFillRing}, {unix.XDP_UMEM_COMPLETION_RING, xskRing}, {unix.XDP_RX_RING, xskRing}} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, r.opt, r.n); err != nil {
			return fmt.Errorf("size AF_XDP ring %d: %w", r.opt, err)
		}
	}
	size := uint32(unsafe.Sizeof(x.off))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&x.off)), uintptr(unsafe.Pointer(&size)), 0); e != 0 {
		return fmt.Errorf("read AF_XDP ring offsets: %w", e)
	}
	mm := func(pgoff int64, length uint64) ([]byte, error) {
		return unix.Mmap(fd, pgoff, int(length), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	}
	if x.rxMem, err = mm(unix.XDP_PGOFF_RX_RING, x.off.Rx.Desc+xskRing*uint64(unsafe.Sizeof(unix.XDPDesc{}))); err != nil {
		return fmt.Errorf("map RX ring: %w", err)
	}
	if x.fillMem, err = mm(unix.XDP_UMEM_PGOFF_FILL_RING, x.off.Fr.Desc+xskFillRing*8); err != nil {
		return fmt.Errorf("map fill ring: %w", err)
	}
	if x.compMem, err = mm(unix.XDP_UMEM_PGOFF_COMPLETION_RING, x.off.Cr.Desc+xskRing*8); err != nil {
		return fmt.Errorf("map completion ring: %w", err)
	}
	// Hand every frame to the kernel.
	fill := x.fillAddrs()
	for i := range fill {
		fill[i] = uint64(i * xskFrameSize)
	}
	atomic.StoreUint32(x.u32(x.fillMem, x.off.Fr.Producer), xskFillRing)
	if err := unix.Bind(fd, &unix.SockaddrXDP{Flags: unix.XDP_COPY, Ifindex: uint32(x.ifindexHere()), QueueID: 0}); err != nil {
		return fmt.Errorf("bind AF_XDP socket to %s queue 0: %w", ifPodVF, err)
	}
	return nil
}

func (x *xskReceiver) ifindexHere() int { return x.ifindex }

func (x *xskReceiver) u32(mem []byte, off uint64) *uint32 {
	return (*uint32)(unsafe.Pointer(&mem[off]))
}

func (x *xskReceiver) rxDescs() []unix.XDPDesc {
	return unsafe.Slice((*unix.XDPDesc)(unsafe.Pointer(&x.rxMem[x.off.Rx.Desc])), xskRing)
}

func (x *xskReceiver) fillAddrs() []uint64 {
	return unsafe.Slice((*uint64)(unsafe.Pointer(&x.fillMem[x.off.Fr.Desc])), xskFillRing)
}

func setsockoptRaw(fd, opt int, p unsafe.Pointer, n uintptr) error {
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), n, 0); e != 0 {
		return e
	}
	return nil
}

// loop consumes the RX ring, handles each datagram and returns its frame
// to the fill ring; it sleeps in poll(2) when the ring is empty.
func (x *xskReceiver) loop() {
	rxProd, rxCons := x.u32(x.rxMem, x.off.Rx.Producer), x.u32(x.rxMem, x.off.Rx.Consumer)
	fillProd := x.u32(x.fillMem, x.off.Fr.Producer)
	descs, fill := x.rxDescs(), x.fillAddrs()
	var parser sysparse.Parser
	var ev event.Event
	var enc []byte
	pfd := []unix.PollFd{{Fd: int32(x.fd), Events: unix.POLLIN}}
	for !x.stop.Load() {
		cons := *rxCons
		prod := atomic.LoadUint32(rxProd)
		if prod == cons {
			unix.Poll(pfd, int(recvPoll/time.Millisecond))
			continue
		}
		n := prod - cons
		now := nowNS()
		st := x.cur.Load()
		fp := *fillProd
		var got, stale uint64
		for i := uint32(0); i < n; i++ {
			d := descs[(cons+i)&(xskRing-1)]
			frame := x.umem[d.Addr : d.Addr+uint64(d.Len)]
			fill[(fp+i)&(xskFillRing-1)] = d.Addr
			if len(frame) < 42 {
				stale++
				continue
			}
			payload := frame[42:]
			var seq, sent uint64
			var ok bool
			if x.parse {
				// What the syslog receiver does per message: parse
				// RFC 5424 into an event and encode it for the log.
				parser.Parse(payload, time.Now(), &ev)
				enc = event.AppendJSON(enc[:0], &ev)
				seq, sent, ok = findMarker(enc)
			} else {
				var err error
				seq, sent, err = ParsePayload(payload)
				ok = err == nil
			}
			if !ok || st == nil || uint16(seq>>stepShift) != st.step {
				stale++
				continue
			}
			got++
			if now > sent {
				st.hist.add(now - sent)
			} else {
				st.hist.add(0)
			}
		}
		atomic.StoreUint32(fillProd, fp+n)
		atomic.StoreUint32(rxCons, cons+n)
		if st != nil && got > 0 {
			st.received.Add(got)
		}
		if stale > 0 {
			x.stale.Add(stale)
		}
	}
}

// drops is what the socket lost: RX ring full and fill ring empty.
func (x *xskReceiver) drops() uint64 {
	var s unix.XDPStatistics
	size := uint32(unsafe.Sizeof(s))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(x.fd), unix.SOL_XDP, unix.XDP_STATISTICS,
		uintptr(unsafe.Pointer(&s)), uintptr(unsafe.Pointer(&size)), 0); e != 0 {
		return 0
	}
	return s.Rx_dropped + s.Rx_ring_full + s.Rx_fill_ring_empty_descs
}

func (x *xskReceiver) begin(step uint16) *stepStats {
	st := &stepStats{step: step}
	x.cur.Store(st)
	return st
}

func (x *xskReceiver) end() { x.cur.Store(nil) }

func (x *xskReceiver) cpu(time.Duration) (time.Duration, error) {
	return threadCPU(unix.Getpid(), x.tid)
}

func (x *xskReceiver) describe() string {
	what := "bare payload check"
	if x.parse {
		what = "RFC 5424 parse + event encode per message, as the syslog receiver"
	}
	return "AF_XDP socket (copy mode) fed by an XDP redirect program (cilium/ebpf), " + what + ", thread pinned to the receive core"
}

// Stop ends the receive loop, detaches the program and frees the socket.
func (x *xskReceiver) Stop() {
	x.stop.Store(true)
	select {
	case <-x.done:
		x.release()
	case <-time.After(5 * recvPoll):
		// The loop still reads the rings: unmapping them now would
		// crash it. Detach the program; the namespace's deletion and
		// the process's exit free the rest.
		x.detach()
	}
}

func (x *xskReceiver) detach() {
	if x.prog != nil && x.ifindex > 0 {
		inNamespace(x.ns.h, func() error {
			if l, err := netlink.LinkByIndex(x.ifindex); err == nil {
				return netlink.LinkSetXdpFdWithFlags(l, -1, nl.XDP_FLAGS_DRV_MODE)
			}
			return nil
		})
	}
}

func (x *xskReceiver) release() {
	x.detach()
	for _, m := range [][]byte{x.rxMem, x.fillMem, x.compMem} {
		if m != nil {
			unix.Munmap(m)
		}
	}
	x.rxMem, x.fillMem, x.compMem = nil, nil, nil
	if x.fd >= 0 {
		unix.Close(x.fd)
		x.fd = -1
	}
	if x.umem != nil {
		unix.Munmap(x.umem)
		x.umem = nil
	}
	if x.prog != nil {
		x.prog.Close()
		x.prog = nil
	}
	if x.xsks != nil {
		x.xsks.Close()
		x.xsks = nil
	}
}
