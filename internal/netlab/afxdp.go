package netlab

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wirelog/wirelog/internal/xdp"
)

// xskReceiver is a receiver reading an AF_XDP socket (copy mode) on the
// pod's VF stand-in, fed by internal/xdp's redirect program.
type xskReceiver struct {
	prog *xdp.Program
	sock *xdp.Socket

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
func startXSKReceiver(pod *namespace, port, cpu int) (rx *xskReceiver, err error) {
	x := &xskReceiver{done: make(chan struct{})}
	defer func() {
		if err != nil {
			x.release()
			err = fmt.Errorf("%w: AF_XDP on %s: %v", ErrUnavailable, ifPodVF, err)
		}
	}()
	// The interface index, the socket's bind and the program's attachment
	// resolve against the calling thread's namespace; the program's BPF
	// link detaches from anywhere.
	if err := inNamespace(pod.h, func() error {
		ifindex, _, err := xdp.Interface(ifPodVF)
		if err != nil {
			return err
		}
		if x.sock, err = xdp.Open(ifindex, 0, xdp.DefaultGeometry); err != nil {
			return err
		}
		// Native (driver) mode: veth runs XDP in its NAPI poll.
		if x.prog, err = xdp.Attach(ifindex, 1, port, xdp.ModeDriver); err != nil {
			return err
		}
		return x.prog.Register(x.sock)
	}); err != nil {
		return nil, err
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

// loop consumes the RX ring, handles each datagram and returns its frame
// to the kernel; it sleeps in poll(2) when the ring is empty.
func (x *xskReceiver) loop() {
	var now uint64
	var st *stepStats
	var got, stale uint64
	handle := func(frame []byte) {
		payload, ok := xdp.UDPPayload(frame)
		if !ok {
			stale++
			return
		}
		seq, sent, err := ParsePayload(payload)
		if err != nil || st == nil || uint16(seq>>stepShift) != st.step {
			stale++
			return
		}
		got++
		if now > sent {
			st.hist.add(now - sent)
		} else {
			st.hist.add(0)
		}
	}
	for !x.stop.Load() {
		now, st, got, stale = nowNS(), x.cur.Load(), 0, 0
		if x.sock.Receive(handle) == 0 {
			x.sock.Wait(recvPoll)
			continue
		}
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
	n, _ := x.sock.Drops()
	return n
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
	return "AF_XDP socket (copy mode) fed by an XDP redirect program (cilium/ebpf), bare payload check, thread pinned to the receive core"
}

// xskStopWait bounds how long Stop waits for the receive loop to notice:
// it checks every recvPoll, but a thread on a busy core may wait its turn
// for longer, and a socket left bound keeps the queue busy (EBUSY) for the
// next receiver on it.
const xskStopWait = 5 * time.Second

// Stop ends the receive loop, detaches the program and frees the socket.
func (x *xskReceiver) Stop() {
	x.stop.Store(true)
	select {
	case <-x.done:
		x.release()
	case <-time.After(xskStopWait):
		// The loop still reads the rings: unmapping them now would
		// crash it. Detach the program; the namespace's deletion and
		// the process's exit free the rest.
		if x.prog != nil {
			x.prog.Close()
		}
	}
}

func (x *xskReceiver) release() {
	if x.prog != nil {
		x.prog.Close()
		x.prog = nil
	}
	if x.sock != nil {
		x.sock.Close()
		x.sock = nil
	}
}
