package netlab

import (
	"fmt"
	"math"
	"math/bits"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	// recvBatch is the most datagrams one recvmmsg call returns.
	recvBatch = 64
	// recvSlot is the buffer per datagram: a whole lab payload always fits.
	recvSlot = 2048
	// recvPoll bounds how long one recvmmsg waits, so the receiver notices
	// Stop within that time.
	recvPoll = 50 * time.Millisecond
)

// stepStats are the receiver's counts for one step. The receive thread
// adds, the orchestrator reads: all atomic.
type stepStats struct {
	step     uint16
	received atomic.Uint64
	bytes    atomic.Uint64
	hist     histogram // send → the receiver (bare) or the log (wirelog view)
	// The wirelog view splits hist: send → wirelog's receiver read the
	// datagram (recvHist), and that read → handed to the log (batchHist).
	recvHist, batchHist histogram
}

// receiver is a bare recvmmsg(2) UDP receiver on a thread pinned to the
// receive core inside the pod namespace: the kernel path with as little
// user-space work on top as possible (read, check, timestamp).
type receiver struct {
	fd    int
	tid   int
	cur   atomic.Pointer[stepStats]
	stale atomic.Uint64 // datagrams of an earlier step or not from the lab
	stop  atomic.Bool
	done  chan struct{}
}

// startReceiver binds 0.0.0.0:port in ns and starts receiving on a thread
// pinned to cpu. It returns once the socket is bound.
func startReceiver(ns netns.NsHandle, port, cpu, rcvbuf int) (*receiver, error) {
	r := &receiver{fd: -1, done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		// This goroutine owns a thread in the pod namespace for its
		// whole life; it exits locked, so the thread is not reused.
		defer close(r.done)
		err := onThreadInline(func() error {
			if err := netns.Set(ns); err != nil {
				return fmt.Errorf("enter pod namespace: %w", err)
			}
			var set unix.CPUSet
			set.Set(cpu)
			unix.SchedSetaffinity(0, &set)
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open UDP socket: %w", err)
			}
			// Several receivers (one per receive core, NewMultiQueueLab)
			// share the port; the kernel spreads flows over them.
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
				unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
			}
			tv := unix.NsecToTimeval(recvPoll.Nanoseconds())
			unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
			if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port}); err != nil {
				unix.Close(fd)
				return fmt.Errorf("bind UDP 0.0.0.0:%d in the pod namespace: %w", port, err)
			}
			r.fd, r.tid = fd, unix.Gettid()
			return nil
		})
		ready <- err
		if err != nil {
			return
		}
		r.loop()
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return r, nil
}

// onThreadInline locks the calling goroutine to its thread and runs fn;
// the goroutine must then exit without unlocking.
func onThreadInline(fn func() error) error {
	runtime.LockOSThread()
	return fn()
}

func (r *receiver) loop() {
	defer unix.Close(r.fd)
	mem := make([]byte, recvBatch*recvSlot)
	iovs := make([]unix.Iovec, recvBatch)
	hdrs := make([]unix.Mmsghdr, recvBatch)
	for i := range hdrs {
		iovs[i].Base = &mem[i*recvSlot]
		iovs[i].SetLen(recvSlot)
		hdrs[i].Hdr.Iov = &iovs[i]
		hdrs[i].Hdr.SetIovlen(1)
	}
	for !r.stop.Load() {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(r.fd), uintptr(unsafe.Pointer(&hdrs[0])),
			recvBatch, unix.MSG_WAITFORONE, 0, 0)
		if errno != 0 || n == 0 {
			continue // EAGAIN after recvPoll, EINTR
		}
		now := nowNS()
		st := r.cur.Load()
		var got, gotBytes, stale uint64
		for i := 0; i < int(n); i++ {
			l := int(hdrs[i].Len)
			seq, sent, err := ParsePayload(mem[i*recvSlot : i*recvSlot+min(l, recvSlot)])
			if err != nil || st == nil || uint16(seq>>stepShift) != st.step {
				stale++
				continue
			}
			got++
			gotBytes += uint64(l)
			if now > sent {
				st.hist.add(now - sent)
			} else {
				st.hist.add(0)
			}
		}
		if st != nil && got > 0 {
			st.received.Add(got)
			st.bytes.Add(gotBytes)
		}
		if stale > 0 {
			r.stale.Add(stale)
		}
	}
}

// begin starts counting a new step.
func (r *receiver) begin(step uint16) *stepStats {
	st := &stepStats{step: step}
	r.cur.Store(st)
	return st
}

// end stops counting (later datagrams count as stale).
func (r *receiver) end() { r.cur.Store(nil) }

// Stop ends the receive loop and closes the socket.
func (r *receiver) Stop() {
	r.stop.Store(true)
	select {
	case <-r.done:
	case <-time.After(5 * recvPoll):
	}
}

// threadCPU is the receive thread's CPU time so far, exactly
// (sum_exec_runtime from schedstat, in ns).
func (r *receiver) threadCPU() (time.Duration, error) {
	return threadCPU(os.Getpid(), r.tid)
}

func threadCPU(pid, tid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/schedstat", pid, tid))
	if err != nil {
		return 0, fmt.Errorf("read thread CPU time: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("read thread CPU time: empty schedstat")
	}
	ns, err := strconv.ParseUint(f[0], 10, 64)
	return time.Duration(ns), err
}

// histogram is a log-linear latency histogram in nanoseconds: 16
// sub-buckets per power of two, so a quantile is within 6.25 %.
type histogram struct {
	b [64 * 16]atomic.Uint64
}

func histIndex(v uint64) int {
	if v < 16 {
		return int(v)
	}
	e := bits.Len64(v) - 5 // v >> e is 16..31
	return (e+1)*16 + int(v>>uint(e)) - 16
}

// histLower is the smallest value of bucket i.
func histLower(i int) uint64 {
	if i < 16 {
		return uint64(i)
	}
	e := i/16 - 1
	return uint64(i%16+16) << uint(e)
}

func (h *histogram) add(v uint64) { h.b[histIndex(v)].Add(1) }

// quantile returns the q-quantile (0..1) as the middle of its bucket, and
// false when the histogram is empty.
func (h *histogram) quantile(q float64) (float64, bool) {
	var total uint64
	for i := range h.b {
		total += h.b[i].Load()
	}
	if total == 0 {
		return 0, false
	}
	rank := uint64(math.Ceil(q * float64(total)))
	rank = max(rank, 1)
	var cum uint64
	for i := range h.b {
		cum += h.b[i].Load()
		if cum >= rank {
			lo := histLower(i)
			hi := histLower(i + 1)
			return float64(lo+hi) / 2, true
		}
	}
	return float64(histLower(len(h.b) - 1)), true
}
