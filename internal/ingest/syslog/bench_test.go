package syslog

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/wirelog/wirelog/internal/transport"
	"github.com/wirelog/wirelog/internal/transport/disklog"
)

// The load generator runs in a child process (this test binary, re-executed
// with WIRELOG_SYSLOG_SENDER set) so the receiver's CPU time is measured
// alone and the sender gets its own core.
const senderEnv = "WIRELOG_SYSLOG_SENDER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(senderEnv); spec != "" {
		if err := runSender(spec); err != nil {
			fmt.Fprintln(os.Stderr, "sender:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// payload returns an RFC 5424 message of exactly size bytes (at least 48).
func payload(size, i int) []byte {
	p := fmt.Appendf(nil, "<14>1 2024-01-05T10:15:32Z host app - - - %09d ", i)
	for len(p) < size {
		p = append(p, 'x')
	}
	return p[:max(size, len(p))]
}

// runSender sends "proto,addr,count,size,conns,rate" and exits. Bounded in
// count and in time (60 s).
func runSender(spec string) error {
	f := strings.Split(spec, ",")
	if len(f) != 6 {
		return fmt.Errorf("bad spec %q", spec)
	}
	count, _ := strconv.Atoi(f[2])
	size, _ := strconv.Atoi(f[3])
	conns, _ := strconv.Atoi(f[4])
	rate, _ := strconv.Atoi(f[5]) // datagrams/s, 0 = as fast as possible
	deadline := time.Now().Add(60 * time.Second)
	if f[0] == "udp" {
		return sendUDP(f[1], count, size, rate, deadline)
	}
	errs := make(chan error, conns)
	for c := 0; c < conns; c++ {
		go func(c int) { errs <- sendTCP(f[1], count/conns, size, deadline) }(c)
	}
	for c := 0; c < conns; c++ {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

func sendUDP(addr string, count, size, rate int, deadline time.Time) error {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	rc, err := conn.(*net.UDPConn).SyscallConn()
	if err != nil {
		return err
	}
	const batch = 64
	bufs := make([][]byte, batch)
	iovs := make([]unix.Iovec, batch)
	hdrs := make([]unix.Mmsghdr, batch)
	for i := range bufs {
		bufs[i] = payload(size, i)
		iovs[i].Base = &bufs[i][0]
		iovs[i].SetLen(len(bufs[i]))
		hdrs[i].Hdr.Iov = &iovs[i]
		hdrs[i].Hdr.SetIovlen(1)
	}
	start := time.Now()
	for sent := 0; sent < count && time.Now().Before(deadline); {
		n := min(batch, count-sent)
		var serr syscall.Errno
		var done int
		rc.Write(func(fd uintptr) bool {
			r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&hdrs[0])), uintptr(n), 0, 0, 0)
			done, serr = 0, e
			if e == 0 {
				done = int(r)
			}
			return e != unix.EAGAIN
		})
		if serr != 0 && serr != unix.ENOBUFS && serr != unix.ECONNREFUSED {
			return serr
		}
		sent += done
		if rate > 0 {
			if ahead := time.Duration(sent)*time.Second/time.Duration(rate) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
	return nil
}

func sendTCP(addr string, count, size int, deadline time.Time) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetWriteDeadline(deadline)
	w := bufio.NewWriterSize(conn, 256<<10)
	for i := 0; i < count; i++ {
		p := payload(size-1, i)
		w.Write(p)
		w.WriteByte('\n')
	}
	return w.Flush()
}

// startSender launches the sender process; wait returns when it exits.
func startSender(b *testing.B, spec string) (wait func()) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), senderEnv+"="+spec)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the benchmark
	if err := cmd.Start(); err != nil {
		cancel()
		b.Fatal(err)
	}
	return func() {
		defer cancel()
		if err := cmd.Wait(); err != nil {
			b.Fatalf("sender %s: %v", spec, err)
		}
	}
}

func cpuSelf() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// settle waits for the count to stop growing and busy to be false (1.5 s quiet: rsyslog flushes
// its async file writes every second; 15 s at most)
// and returns it with the time it last grew.
func settle(count func() int64, busy func() bool) (int64, time.Time) {
	last, at := count(), time.Now()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		if n := count(); n != last {
			last, at = n, time.Now()
		} else if time.Since(at) > 1500*time.Millisecond && (busy == nil || !busy()) {
			break
		}
	}
	return last, at
}

// counting is a producer that takes everything at once (the "discard"
// log), or wraps a real one and counts what it made durable.
type counting struct {
	next transport.Producer
	n    atomic.Int64
}

func (c *counting) Produce(ctx context.Context, recs []transport.Record) error {
	if c.next != nil {
		if err := c.next.Produce(ctx, recs); err != nil {
			return err
		}
	}
	c.n.Add(int64(len(recs)))
	return nil
}
func (c *counting) Ready(context.Context) error { return nil }
func (c *counting) Close() error                { return nil }

// receiver under test: addr to send to, a received count, stop, and the
// kernel socket drops (-1 when unknown).
type rxUnderTest struct {
	addr  string
	count func() int64
	cpu   func() time.Duration
	drops func() int64
	busy  func() bool // received but not yet durable
	stop  func()
}

func socketDrops(s *udpSocket) func() int64 {
	return func() int64 {
		k := readKernelUDP([]*udpSocket{s})
		return int64(k.sockets[s.inode].drops)
	}
}

// bareRecvmmsg is the bare receiver of every comparison: recvmmsg through
// Go's network poller (rc.Read), counting only.
func bareRecvmmsg(b *testing.B, rcvbuf int) rxUnderTest {
	cfg := testConfig()
	cfg.UDPSockets, cfg.RcvBuf = 1, rcvbuf
	socks, err := listenUDP(context.Background(), &cfg)
	if err != nil {
		b.Fatal(err)
	}
	s := socks[0]
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s.rc.Read(s.readFn) == nil {
			n.Add(int64(s.n))
		}
	}()
	return rxUnderTest{addr: s.conn.LocalAddr().String(), count: n.Load, cpu: cpuSelf, drops: socketDrops(s),
		stop: func() { s.conn.SetReadDeadline(time.Now()); <-done; s.conn.Close() }}
}

// bareBlocking is a bare receiver as a C program would write it: a
// blocking socket read by recvmmsg(MSG_WAITFORONE) on a thread of its own,
// no Go poller between the wake-up and the read.
func bareBlocking(b *testing.B, rcvbuf int) rxUnderTest {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		b.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	port := sa.(*unix.SockaddrInet4).Port
	const slots, slot = 64, 2048
	mem := make([]byte, slots*slot)
	iovs := make([]unix.Iovec, slots)
	hdrs := make([]unix.Mmsghdr, slots)
	for i := range hdrs {
		iovs[i].Base = &mem[i*slot]
		iovs[i].SetLen(slot)
		hdrs[i].Hdr.Iov = &iovs[i]
		hdrs[i].Hdr.SetIovlen(1)
	}
	var n atomic.Int64
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for !stop.Load() {
			r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&hdrs[0])), slots, unix.MSG_WAITFORONE, 0, 0)
			if errno == 0 {
				n.Add(int64(r))
			}
		}
	}()
	return rxUnderTest{addr: fmt.Sprintf("127.0.0.1:%d", port), count: n.Load, cpu: cpuSelf, drops: func() int64 { return -1 },
		stop: func() { stop.Store(true); <-done; unix.Close(fd) }}
}

func bareReadBatch(b *testing.B, rcvbuf int) rxUnderTest {
	cfg := testConfig()
	cfg.UDPSockets, cfg.RcvBuf = 1, rcvbuf
	socks, err := listenUDP(context.Background(), &cfg)
	if err != nil {
		b.Fatal(err)
	}
	s := socks[0]
	pc := ipv4.NewPacketConn(s.conn)
	msgs := make([]ipv4.Message, udpSlotsMax)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 65536)}
	}
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			k, err := pc.ReadBatch(msgs, 0)
			if err != nil {
				return
			}
			n.Add(int64(k))
		}
	}()
	return rxUnderTest{addr: s.conn.LocalAddr().String(), count: n.Load, cpu: cpuSelf, drops: socketDrops(s),
		stop: func() { s.conn.SetReadDeadline(time.Now()); <-done; s.conn.Close() }}
}

func wirelogRx(b *testing.B, proto string, rcvbuf int, durable bool, mods ...func(*Config)) rxUnderTest {
	cfg := testConfig()
	for _, m := range mods {
		m(&cfg)
	}
	cfg.UDPSockets, cfg.RcvBuf = 1, rcvbuf
	if proto == "udp" {
		cfg.TCPAddr = ""
	} else {
		cfg.UDPAddr = ""
	}
	c := &counting{}
	var l *disklog.Log
	if durable {
		var err error
		l, err = disklog.Open(b.TempDir(), disklog.Options{MaxLagBytes: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		c.next = l.Producer()
	}
	s, err := Start(context.Background(), c, cfg)
	if err != nil {
		b.Fatal(err)
	}
	rx := rxUnderTest{count: c.n.Load, cpu: cpuSelf, drops: func() int64 { return -1 },
		stop: func() {
			s.Close()
			if l != nil {
				l.Close()
			}
		}}
	rx.busy = func() bool {
		st := &s.udpStats
		if proto == "tcp" {
			st = &s.tcpStats
		}
		return st.messages.Load()-st.rejected[rejectEmpty].Load() > uint64(c.n.Load())
	}
	if proto == "udp" {
		rx.addr = s.UDPAddr().String()
		rx.drops = socketDrops(s.udp[0])
	} else {
		rx.addr = s.TCPAddr().String()
	}
	return rx
}

// rsyslogRx starts Debian's rsyslogd (imudp/imptcp → omfile, async writes)
// on loopback with a generated config, counting the lines it wrote.
func rsyslogRx(b *testing.B, proto string, rcvbuf int) rxUnderTest {
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		b.Skip("rsyslogd not installed: run scripts/deps/40-syslog.sh")
	}
	dir := b.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	out := filepath.Join(dir, "out.log")
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k")
module(load="imudp" threads="1" batchSize="128")
module(load="imptcp" threads="1")
input(type="imudp" address="127.0.0.1" port="%d" rcvbufSize="%d")
input(type="imptcp" address="127.0.0.1" port="%d")
main_queue(queue.type="FixedArray" queue.size="200000" queue.dequeueBatchSize="1024")
action(type="omfile" file=%q asyncWriting="on" ioBufferSize="256k" flushOnTXEnd="off")
`, dir, port, rcvbuf, port, out)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslogd.pid"))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	pid := cmd.Process.Pid
	stop := func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i > 200 {
			stop()
			b.Fatalf("rsyslogd did not listen on %s: %s", addr, stderr.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	var lines atomic.Int64
	var read int64
	count := func() int64 {
		f, err := os.Open(out)
		if err != nil {
			return 0
		}
		defer f.Close()
		buf := make([]byte, 1<<20)
		for {
			n, err := f.ReadAt(buf, read)
			lines.Add(int64(bytes.Count(buf[:n], []byte{'\n'})))
			read += int64(n)
			if err != nil || n == 0 {
				return lines.Load()
			}
		}
	}
	cpu := func() time.Duration {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0
		}
		f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+2:]))
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		stt, _ := strconv.ParseInt(f[12], 10, 64)
		return time.Duration(ut+stt) * 10 * time.Millisecond // USER_HZ = 100
	}
	return rxUnderTest{addr: addr, count: count, cpu: cpu, drops: func() int64 { return -1 }, stop: stop}
}

// measure runs one bounded load of b.N messages against rx and reports the
// receive rate, CPU per message and what was lost.
func measure(b *testing.B, rx rxUnderTest, proto string, size, conns, rate int) {
	defer rx.stop()
	drops0 := rx.drops()
	base := rx.count()
	cpu0 := rx.cpu()
	b.ResetTimer()
	start := time.Now()
	wait := startSender(b, fmt.Sprintf("%s,%s,%d,%d,%d,%d", proto, rx.addr, b.N, size, conns, rate))
	wait()
	got, last := settle(func() int64 { return rx.count() - base }, rx.busy)
	b.StopTimer()
	elapsed := last.Sub(start)
	cpu := rx.cpu() - cpu0
	if got > 0 {
		b.ReportMetric(float64(got)/elapsed.Seconds(), "rx/s")
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(got), "cpu-ns/rx")
	}
	sent := int64(b.N)
	if proto == "tcp" {
		sent = int64(b.N / conns * conns)
	}
	b.ReportMetric(100*float64(sent-got)/float64(sent), "lost-%")
	if d := rx.drops(); d >= 0 {
		b.ReportMetric(float64(d-drops0), "kernel-drops")
	}
}

// BenchmarkUDPReceive sends b.N datagrams of 64, 256 and 1024 bytes from
// one sender process on loopback, as fast as it can, to: a bare recvmmsg
// receiver (unix.Recvmmsg, no parsing), a bare x/net/ipv4 ReadBatch
// receiver, wirelog into a discarding producer, wirelog into the embedded
// durable log (fsync), and rsyslog (imudp → omfile). Run with
// -benchtime=Nx: b.N is the number of datagrams sent.
func BenchmarkUDPReceive(b *testing.B) {
	const rcvbuf = 32 << 20
	for _, size := range []int{64, 256, 1024} {
		for _, name := range []string{"bare-recvmmsg", "bare-ipv4-readbatch", "bare-blocking", "wirelog-discard", "wirelog-disklog", "wirelog-disklog-json", "wirelog-disklog-4MiB", "wirelog-disklog-256slots", "rsyslog"} {
			b.Run(fmt.Sprintf("%dB/%s", size, name), func(b *testing.B) {
				var rx rxUnderTest
				switch name {
				case "bare-recvmmsg":
					rx = bareRecvmmsg(b, rcvbuf)
				case "bare-blocking":
					rx = bareBlocking(b, rcvbuf)
				case "bare-ipv4-readbatch":
					rx = bareReadBatch(b, rcvbuf)
				case "wirelog-discard":
					rx = wirelogRx(b, "udp", rcvbuf, false)
				case "wirelog-disklog":
					rx = wirelogRx(b, "udp", rcvbuf, true)
				case "wirelog-disklog-json": // parsed at ingest, JSON records (--syslog-udp-raw=false)
					rx = wirelogRx(b, "udp", rcvbuf, true, func(c *Config) { c.UDPRaw = false })
				case "wirelog-disklog-4MiB": // 4 MiB / 4096 records per Produce instead of 1 MiB / 1024
					rx = wirelogRx(b, "udp", rcvbuf, true, func(c *Config) { c.BatchBytes, c.BatchRecords = 4<<20, 4096 })
				case "wirelog-disklog-256slots": // 256 datagrams per recvmmsg instead of 64
					rx = wirelogRx(b, "udp", rcvbuf, true, func(c *Config) { c.udpSlots = 256 })
				case "rsyslog":
					rx = rsyslogRx(b, "udp", rcvbuf)
				}
				measure(b, rx, "udp", size, 1, 0)
			})
		}
	}
}

// BenchmarkUDPPaced sends datagrams of 64, 256 and 1024 bytes at a fixed
// 100,000/s, a rate every receiver keeps up with, to compare CPU per
// message at equal load.
func BenchmarkUDPPaced(b *testing.B) {
	for _, size := range []int{64, 256, 1024} {
		for _, name := range []string{"bare-recvmmsg", "wirelog-disklog", "wirelog-disklog-json", "rsyslog"} {
			b.Run(fmt.Sprintf("%dB/%s", size, name), func(b *testing.B) {
				var rx rxUnderTest
				switch name {
				case "bare-recvmmsg":
					rx = bareRecvmmsg(b, 32<<20)
				case "wirelog-disklog":
					rx = wirelogRx(b, "udp", 32<<20, true)
				case "wirelog-disklog-json":
					rx = wirelogRx(b, "udp", 32<<20, true, func(c *Config) { c.UDPRaw = false })
				case "rsyslog":
					rx = rsyslogRx(b, "udp", 32<<20)
				}
				measure(b, rx, "udp", size, 1, 100000)
			})
		}
	}
}

// BenchmarkTCPReceive sends b.N 256-byte LF-framed messages over 4
// connections as fast as TCP flow control lets them, into wirelog (into a
// discarding producer, and into the durable log) and rsyslog (imptcp → omfile).
func BenchmarkTCPReceive(b *testing.B) {
	for _, name := range []string{"wirelog-discard", "wirelog-disklog", "rsyslog"} {
		b.Run(name, func(b *testing.B) {
			var rx rxUnderTest
			switch name {
			case "rsyslog":
				rx = rsyslogRx(b, "tcp", 32<<20)
			case "wirelog-discard":
				rx = wirelogRx(b, "tcp", 32<<20, false)
			default:
				rx = wirelogRx(b, "tcp", 32<<20, true)
			}
			measure(b, rx, "tcp", 256, 4, 0)
		})
	}
}

// BenchmarkRecvBatch isolates the receive call: the socket is filled with
// 10,000 datagrams of 256 bytes while the timer is stopped, then drained by
// golang.org/x/sys/unix recvmmsg (what the listener uses) or by
// golang.org/x/net/ipv4 ReadBatch, 64 datagrams per call. One op is one
// datagram.
func BenchmarkRecvBatch(b *testing.B) {
	for _, name := range []string{"unix-recvmmsg", "ipv4-readbatch"} {
		b.Run(name, func(b *testing.B) {
			cfg := testConfig()
			cfg.UDPSockets, cfg.RcvBuf = 1, 64<<20
			socks, err := listenUDP(context.Background(), &cfg)
			if err != nil {
				b.Fatal(err)
			}
			s := socks[0]
			defer s.conn.Close()
			snd, err := net.Dial("udp", s.conn.LocalAddr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer snd.Close()
			pc := ipv4.NewPacketConn(s.conn)
			msgs := make([]ipv4.Message, udpSlotsMax)
			for i := range msgs {
				msgs[i].Buffers = [][]byte{make([]byte, s.slot)}
			}
			p := payload(256, 0)
			const fill = 10000
			drops0 := socketDrops(s)()
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			b.StopTimer()
			for got := 0; got < b.N; {
				for i := 0; i < fill; i++ {
					if _, err := snd.Write(p); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				for n := 0; n < fill; {
					if name == "unix-recvmmsg" {
						if err := s.rc.Read(s.readFn); err != nil {
							b.Fatal(err)
						}
						n += s.n
					} else {
						k, err := pc.ReadBatch(msgs, 0)
						if err != nil {
							b.Fatal(err)
						}
						n += k
					}
				}
				b.StopTimer()
				got += fill
			}
			if d := socketDrops(s)() - drops0; d > 0 {
				b.Fatalf("the kernel dropped %d datagrams while filling: the figure is void", d)
			}
		})
	}
}
