// Package xdp receives one UDP port of an interface through AF_XDP: an XDP
// program (written with cilium/ebpf's assembler, so building needs no clang)
// redirects IPv4/UDP datagrams for the port to AF_XDP sockets, one per
// receive queue, and passes everything else (ARP, other ports, fragments,
// IP options, IPv6) to the kernel stack untouched.
//
// Sockets run in copy mode, which every XDP-capable driver and veth support.
package xdp

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Sentinel errors; each failure wraps one of them with the kernel's reason.
var (
	// ErrPermission: the process may not load BPF programs or open AF_XDP
	// sockets; run as root or with CAP_NET_ADMIN, CAP_BPF and CAP_NET_RAW.
	ErrPermission = errors.New("not permitted: run as root or with CAP_NET_ADMIN, CAP_BPF and CAP_NET_RAW")
	// ErrNoInterface: the interface named does not exist in this network namespace.
	ErrNoInterface = errors.New("no such interface in this network namespace")
	// ErrProgram: the kernel refused to load or attach the XDP program
	// (kernel without CONFIG_BPF_SYSCALL/CONFIG_XDP_SOCKETS, another XDP
	// program already on the interface, a driver without XDP).
	ErrProgram = errors.New("kernel refused the XDP program")
	// ErrSocket: the kernel refused the AF_XDP socket or its bind to a
	// receive queue (kernel without CONFIG_XDP_SOCKETS, a queue the
	// interface does not have, locked-memory limit too low for the UMEM).
	ErrSocket = errors.New("kernel refused the AF_XDP socket")
)

// classify turns a permission errno into ErrPermission, anything else into kind.
func classify(kind error, what string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%s: %w (%w)", what, ErrPermission, err)
	}
	return fmt.Errorf("%s: %w: %w", what, kind, err)
}

// Interface resolves name in the calling thread's network namespace and
// returns its index and the number of receive queues it was created with
// (IFLA_NUM_RX_QUEUES); fewer may be in use, and binding a socket to one
// that is not fails with EINVAL.
func Interface(name string) (ifindex, queues int, err error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return 0, 0, fmt.Errorf("interface %q: %w (%v)", name, ErrPermission, err)
		}
		return 0, 0, fmt.Errorf("interface %q: %w (ip link shows the names)", name, ErrNoInterface)
	}
	return l.Attrs().Index, max(1, l.Attrs().NumRxQueues), nil
}

// Mode is how the program is attached.
type Mode int

const (
	// ModeAuto tries the driver's native XDP and falls back to generic
	// (SKB) mode when the driver has none.
	ModeAuto Mode = iota
	// ModeDriver is native XDP in the driver's receive path (veth has it).
	ModeDriver
	// ModeGeneric runs the program after the kernel built the skb: any
	// interface, less gain.
	ModeGeneric
)

// Program is the redirect program attached to one interface with its XSK
// map. Sockets are added per receive queue with Register; a queue with no
// socket passes its datagrams to the kernel.
type Program struct {
	xsks *ebpf.Map
	prog *ebpf.Program
	lnk  link.Link
	Mode Mode // the mode it was attached in: ModeDriver or ModeGeneric
}

// Attach loads the program for UDP dstPort and attaches it to ifindex
// (resolved in the calling thread's network namespace; detaching later
// works from any namespace). queues sizes the XSK map.
func Attach(ifindex, queues, dstPort int, mode Mode) (_ *Program, err error) {
	if dstPort <= 0 || dstPort > 65535 {
		return nil, fmt.Errorf("UDP port %d out of range", dstPort)
	}
	p := &Program{}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	p.xsks, err = ebpf.NewMap(&ebpf.MapSpec{Name: "wl_xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(max(1, queues))})
	if err != nil {
		return nil, classify(ErrProgram, "create XSK map (needs CONFIG_XDP_SOCKETS)", err)
	}
	p.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "wl_xsk_redirect", Type: ebpf.XDP, License: "GPL",
		Instructions: redirectProgram(p.xsks, dstPort)})
	if err != nil {
		return nil, classify(ErrProgram, "load XDP program (needs CONFIG_BPF_SYSCALL)", err)
	}
	try := []Mode{mode}
	if mode == ModeAuto {
		try = []Mode{ModeDriver, ModeGeneric}
	}
	var errs []error
	for _, m := range try {
		flags := link.XDPDriverMode
		if m == ModeGeneric {
			flags = link.XDPGenericMode
		}
		p.lnk, err = link.AttachXDP(link.XDPOptions{Program: p.prog, Interface: ifindex, Flags: flags})
		if err == nil {
			p.Mode = m
			return p, nil
		}
		errs = append(errs, fmt.Errorf("%s mode: %w", m, err))
	}
	return nil, classify(ErrProgram, "attach XDP program (is another XDP program attached? does the driver do XDP?)", errors.Join(errs...))
}

func (m Mode) String() string {
	switch m {
	case ModeDriver:
		return "driver"
	case ModeGeneric:
		return "generic"
	}
	return "auto"
}

// Register makes s the receiver of its queue's datagrams.
func (p *Program) Register(s *Socket) error {
	if err := p.xsks.Put(uint32(s.queue), uint32(s.fd)); err != nil {
		return classify(ErrSocket, fmt.Sprintf("put the queue %d socket in the XSK map", s.queue), err)
	}
	return nil
}

// Close detaches the program (every datagram goes to the kernel again) and
// frees it. Sockets are closed separately.
func (p *Program) Close() error {
	var err error
	if p.lnk != nil {
		err = p.lnk.Close()
		p.lnk = nil
	}
	if p.prog != nil {
		p.prog.Close()
		p.prog = nil
	}
	if p.xsks != nil {
		p.xsks.Close()
		p.xsks = nil
	}
	return err
}

// redirectProgram returns the XDP program: IPv4/UDP datagrams (no IP
// options, not fragmented) for dstPort go to the AF_XDP socket of their
// receive queue, or to the kernel when that queue has none; everything
// else continues to the kernel stack.
func redirectProgram(xsks *ebpf.Map, dstPort int) asm.Instructions {
	portLE := int32(dstPort>>8 | (dstPort&0xff)<<8) // a network-order u16 as the LE load sees it
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),              // r6 = ctx
		asm.LoadMem(asm.R2, asm.R6, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R6, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, HeaderLen),
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

// HeaderLen is the Ethernet + IPv4 (no options) + UDP header length of
// every frame the program redirects.
const HeaderLen = 14 + 20 + 8

// UDPPayload returns the UDP payload of a redirected frame, cut to the UDP
// length (a NIC may hand over Ethernet padding after it), and false when the
// frame is shorter than its headers say.
func UDPPayload(frame []byte) ([]byte, bool) {
	if len(frame) < HeaderLen {
		return nil, false
	}
	n := int(frame[14+20+4])<<8 | int(frame[14+20+5])
	if n < 8 || HeaderLen-8+n > len(frame) {
		return nil, false
	}
	return frame[HeaderLen : HeaderLen-8+n], true
}
