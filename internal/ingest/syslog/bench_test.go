package syslog

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
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

// payload returns the i-th of payloadPool distinct, realistic RFC 5424
// messages of exactly size bytes (at least 48). Realistic and distinct
// because the log compresses its batches: padding with one repeated byte,
// or cycling through a few messages, would compress many times better
// than traffic does and flatter the compressed log.
func payload(size, i int) []byte { return payloads(size)[i%payloadPool] }

// payloads returns the pool of messages of size bytes, rendered once.
func payloads(size int) [][]byte {
	poolMu.Lock()
	defer poolMu.Unlock()
	p := pools[size]
	if p == nil {
		p = syslogLines(size, payloadPool, uint64(size))
		pools[size] = p
	}
	return p
}

// payloadPool distinct messages: more than one batch of the log holds
// (1,024), so a batch never sees the same message twice.
const payloadPool = 8192

var (
	poolMu sync.Mutex
	pools  = map[int][][]byte{}
)

// syslogLines renders n distinct RFC 5424 messages of exactly size bytes:
// sshd, kernel firewall, nginx access, Juniper RT_FLOW and logfmt
// application lines from 200 hosts, with per-message addresses, ports, ids
// and timings, continued with more key=value fields up to size.
func syslogLines(size, n int, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 17))
	users := []string{"root", "admin", "deploy", "alice", "bob", "postgres", "git", "ubuntu"}
	apps := []string{"sshd", "kernel", "nginx", "RT_FLOW", "api", "worker"}
	paths := []string{"/api/v1/orders", "/api/v1/users", "/static/app.js", "/healthz", "/api/v2/search", "/login"}
	ip := func() string { return fmt.Sprintf("10.%d.%d.%d", rng.IntN(256), rng.IntN(256), 1+rng.IntN(254)) }
	hex := func(k int) string {
		b := make([]byte, k)
		for i := range b {
			b[i] = "0123456789abcdef"[rng.IntN(16)]
		}
		return string(b)
	}
	out := make([][]byte, n)
	for i := range out {
		app := apps[rng.IntN(len(apps))]
		p := fmt.Appendf(nil, "<%d>1 2024-01-05T10:%02d:%02d.%03dZ node-%03d %s %d - - ", 8+rng.IntN(180), rng.IntN(60), rng.IntN(60), rng.IntN(1000), rng.IntN(200), app, 100+rng.IntN(60000))
		switch app {
		case "sshd":
			p = fmt.Appendf(p, "Accepted publickey for %s from %s port %d ssh2: RSA SHA256:%s", users[rng.IntN(len(users))], ip(), 1024+rng.IntN(60000), hex(43))
		case "kernel":
			p = fmt.Appendf(p, "[UFW BLOCK] IN=eth0 OUT= MAC=%s SRC=%s DST=%s LEN=%d TTL=%d ID=%d DF PROTO=TCP SPT=%d DPT=%d WINDOW=%d SYN URGP=0",
				hex(12), ip(), ip(), 40+rng.IntN(1400), 32+rng.IntN(96), rng.IntN(65536), 1024+rng.IntN(60000), []int{22, 80, 443, 5432}[rng.IntN(4)], rng.IntN(65536))
		case "nginx":
			p = fmt.Appendf(p, `%s - - [05/Jan/2024:10:15:32 +0000] "GET %s/%d?page=%d HTTP/1.1" %d %d "-" "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.%d.%d"`,
				ip(), paths[rng.IntN(len(paths))], rng.IntN(1000000), rng.IntN(50), []int{200, 200, 304, 404, 502}[rng.IntN(5)], rng.IntN(90000), rng.IntN(9999), rng.IntN(999))
		case "RT_FLOW":
			p = fmt.Appendf(p, `RT_FLOW_SESSION_CREATE [junos@2636.1.1.1.2.129 source-address="%s" source-port="%d" destination-address="%s" destination-port="443" service-name="junos-https" nat-source-address="%s" nat-source-port="%d" policy-name="p-%d" session-id-32="%d" packet-incoming-interface="ge-0/0/%d.0"]`,
				ip(), 1024+rng.IntN(60000), ip(), ip(), 1024+rng.IntN(60000), rng.IntN(300), rng.IntN(1<<31), rng.IntN(8))
		default:
			p = fmt.Appendf(p, `level=%s caller=%s.go:%d msg="request completed" path=%s/%d status=%d duration_ms=%.3f trace_id=%s`,
				[]string{"info", "warn", "error"}[rng.IntN(3)], app, 10+rng.IntN(900), paths[rng.IntN(len(paths))], rng.IntN(100000), []int{200, 201, 404, 500}[rng.IntN(4)], rng.Float64()*300, hex(32))
		}
		for len(p) < size {
			switch rng.IntN(4) {
			case 0:
				p = fmt.Appendf(p, " peer=%s:%d", ip(), 1024+rng.IntN(60000))
			case 1:
				p = fmt.Appendf(p, " request_id=%s", hex(16))
			case 2:
				p = fmt.Appendf(p, " bytes=%d elapsed_ms=%.2f", rng.IntN(1<<20), rng.Float64()*1000)
			default:
				p = fmt.Appendf(p, " user=%s result=%s", users[rng.IntN(len(users))], []string{"ok", "denied", "timeout", "retry"}[rng.IntN(4)])
			}
		}
		out[i] = p[:size]
	}
	return out
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
	iovs := make([]unix.Iovec, batch)
	hdrs := make([]unix.Mmsghdr, batch)
	for i := range hdrs {
		hdrs[i].Hdr.Iov = &iovs[i]
		hdrs[i].Hdr.SetIovlen(1)
	}
	pool := payloads(size) // rendered before the clock starts
	start := time.Now()
	for sent := 0; sent < count && time.Now().Before(deadline); {
		n := min(batch, count-sent)
		for i := 0; i < n; i++ {
			p := pool[(sent+i)%len(pool)]
			iovs[i].Base = &p[0]
			iovs[i].SetLen(len(p))
		}
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

// switchesSelf counts this process's context switches (voluntary: a
// thread slept, on a socket, a futex or a timer; involuntary: preempted),
// every thread's, the ones that ended included.
func switchesSelf() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Nvcsw + ru.Nivcsw
}

// switchesOf counts the context switches of every live thread of pid.
func switchesOf(pid int) int64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	var n int64
	for _, t := range tasks {
		st, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(st), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				c, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += c
			}
		}
	}
	return n
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
	addr     string
	count    func() int64
	cpu      func() time.Duration
	switches func() int64 // context switches; nil = not known
	reads    func() int64 // receive calls that returned datagrams; nil = not known
	drops    func() int64
	busy     func() bool // received but not yet durable
	stop     func()
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
	cfg.udpBlocking = udpPoller // read through Go's poller, as before issue 17's third pass
	socks, err := listenUDP(context.Background(), &cfg)
	if err != nil {
		b.Fatal(err)
	}
	s := socks[0]
	var n, reads atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s.rc.Read(s.readFn) == nil {
			n.Add(int64(s.n))
			reads.Add(1)
		}
	}()
	return rxUnderTest{addr: s.conn.LocalAddr().String(), count: n.Load, cpu: cpuSelf, drops: socketDrops(s),
		switches: switchesSelf, reads: reads.Load,
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
	cfg.udpBlocking = udpPoller // read through Go's poller, as before issue 17's third pass
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

// wirelogRx starts the listener into a discarding producer (logOpts nil)
// or into the embedded durable log opened with *logOpts.
func wirelogRx(b *testing.B, proto string, rcvbuf int, logOpts *disklog.Options, mods ...func(*Config)) rxUnderTest {
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
	if logOpts != nil {
		var err error
		o := *logOpts
		o.MaxLagBytes, o.Logger = -1, slog.New(slog.NewTextHandler(io.Discard, nil))
		l, err = disklog.Open(b.TempDir(), o)
		if err != nil {
			b.Fatal(err)
		}
		c.next = l.Producer()
	}
	s, err := Start(context.Background(), c, cfg)
	if err != nil {
		b.Fatal(err)
	}
	rx := rxUnderTest{count: c.n.Load, cpu: cpuSelf, drops: func() int64 { return -1 }, switches: switchesSelf,
		stop: func() {
			s.Close()
			if l != nil {
				if st := l.Stats(); st.AppendedBytes > 0 {
					b.ReportMetric(float64(st.AppendedRawBytes)/float64(st.AppendedBytes), "log-ratio")
				}
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
		rx.reads = func() int64 { return int64(s.udp[0].reads.Load()) }
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
	return rxUnderTest{addr: addr, count: count, cpu: cpu, drops: func() int64 { return -1 }, stop: stop,
		switches: func() int64 { return switchesOf(pid) }}
}

// measure runs one bounded load of b.N messages against rx and reports the
// receive rate, CPU per message and what was lost.
func measure(b *testing.B, rx rxUnderTest, proto string, size, conns, rate int) {
	defer rx.stop()
	drops0 := rx.drops()
	base := rx.count()
	var sw0, reads0 int64
	if rx.switches != nil {
		sw0 = rx.switches()
	}
	if rx.reads != nil {
		reads0 = rx.reads()
	}
	cpu0 := rx.cpu()
	b.ResetTimer()
	start := time.Now()
	wait := startSender(b, fmt.Sprintf("%s,%s,%d,%d,%d,%d", proto, rx.addr, b.N, size, conns, rate))
	wait()
	senderDone := time.Now()
	got, last := settle(func() int64 { return rx.count() - base }, rx.busy)
	b.StopTimer()
	elapsed := last.Sub(start)
	// CPU and switches cover the same window for every receiver: from
	// before the sender starts to after the count stopped growing.
	cpu := rx.cpu() - cpu0
	if got > 0 {
		b.ReportMetric(float64(got)/elapsed.Seconds(), "rx/s")
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(got), "cpu-ns/rx")
		// From the sender's end to the last line stored: rsyslog's omfile
		// writes its buffer once a second, so its rx/s is lower by that
		// tail even when it kept up (lost 0).
		b.ReportMetric(float64(max(last.Sub(senderDone), 0).Milliseconds()), "tail-ms")
		if rx.switches != nil {
			b.ReportMetric(float64(rx.switches()-sw0)/float64(got), "csw/rx")
		}
		if rx.reads != nil {
			b.ReportMetric(float64(got)/float64(max(rx.reads()-reads0, 1)), "rx/read")
		}
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

// udpRx starts the receiver a benchmark names: "bare-recvmmsg",
// "bare-blocking", "bare-ipv4-readbatch", "rsyslog", or
// "wirelog-discard"/"wirelog-disklog" followed by options, each after a
// dash: a --log-compression codec (none, snappy, lz4, zstd; default: the
// log's default), "json" (--syslog-udp-raw=false), "4MiB" (4 MiB / 4,096
// records per Produce), "256slots" (datagrams per recvmmsg), and the
// receive loop: "locked" (the default: blocking recvmmsg on a locked
// thread), "blocking" (the same on any thread), "poller" (Go's network
// poller, the loop before issue 17's third pass); "pause<duration>" and
// "nopause" (udpPause), "linger<duration>" (--syslog-udp-linger), e.g.
// wirelog-disklog-pause250us-linger10ms.
func udpRx(b *testing.B, name string, rcvbuf int) rxUnderTest {
	switch name {
	case "bare-recvmmsg":
		return bareRecvmmsg(b, rcvbuf)
	case "bare-blocking":
		return bareBlocking(b, rcvbuf)
	case "bare-ipv4-readbatch":
		return bareReadBatch(b, rcvbuf)
	case "rsyslog":
		return rsyslogRx(b, "udp", rcvbuf)
	}
	parts := strings.Split(name, "-")
	if len(parts) < 2 || parts[0] != "wirelog" || (parts[1] != "discard" && parts[1] != "disklog") {
		b.Fatalf("unknown receiver %q", name)
	}
	var logOpts *disklog.Options
	if parts[1] == "disklog" {
		logOpts = &disklog.Options{}
	}
	var mods []func(*Config)
	for _, opt := range parts[2:] {
		switch opt {
		case "none", "snappy", "lz4", "zstd":
			if logOpts == nil {
				b.Fatalf("%s: compression without a log", name)
			}
			logOpts.Compression = opt
		case "json":
			mods = append(mods, func(c *Config) { c.UDPRaw = false })
		case "4MiB":
			mods = append(mods, func(c *Config) { c.BatchBytes, c.BatchRecords = 4<<20, 4096 })
		case "256slots":
			mods = append(mods, func(c *Config) { c.udpSlots = 256 })
		case "blocking":
			mods = append(mods, func(c *Config) { c.udpBlocking = udpBlockingFree })
		case "locked":
			mods = append(mods, func(c *Config) { c.udpBlocking = udpBlockingLocked })
		case "poller":
			mods = append(mods, func(c *Config) { c.udpBlocking = udpPoller })
		case "nopause":
			mods = append(mods, func(c *Config) { c.udpPauseTime = -1 })
		default:
			if d, ok := strings.CutPrefix(opt, "pause"); ok {
				p, err := time.ParseDuration(d)
				if err != nil {
					b.Fatalf("%s: %q: %v", name, opt, err)
				}
				mods = append(mods, func(c *Config) { c.udpPauseTime = p })
				continue
			}
			if d, ok := strings.CutPrefix(opt, "linger"); ok {
				l, err := time.ParseDuration(d)
				if err != nil {
					b.Fatalf("%s: %q: %v", name, opt, err)
				}
				mods = append(mods, func(c *Config) { c.UDPLinger = l })
				continue
			}
			b.Fatalf("%s: unknown option %q", name, opt)
		}
	}
	return wirelogRx(b, "udp", rcvbuf, logOpts, mods...)
}

// udpReceivers are the receivers BenchmarkUDPReceive and BenchmarkUDPPaced
// run (select with -bench '…/<size>B/^(a|b)$').
var udpReceivers = []string{
	"bare-recvmmsg", "bare-ipv4-readbatch", "bare-blocking",
	"wirelog-discard", "wirelog-discard-blocking", "wirelog-discard-poller",
	"wirelog-disklog", "wirelog-disklog-blocking", "wirelog-disklog-poller",
	"wirelog-disklog-snappy", "wirelog-disklog-lz4", "wirelog-disklog-zstd", "wirelog-disklog-snappy-poller",
	"wirelog-disklog-json", "wirelog-disklog-4MiB", "wirelog-disklog-256slots",
	// issue 17, fourth pass: the pause after a read that emptied the
	// socket, and the linger of a batch, against each other.
	"wirelog-discard-nopause", "wirelog-discard-pause250us",
	"wirelog-disklog-nopause", "wirelog-disklog-pause100us", "wirelog-disklog-pause250us",
	"wirelog-disklog-pause500us", "wirelog-disklog-pause1ms",
	"wirelog-disklog-linger5ms", "wirelog-disklog-linger10ms", "wirelog-disklog-linger20ms",
	"wirelog-disklog-pause250us-linger10ms", "wirelog-disklog-pause500us-linger10ms",
	"wirelog-disklog-nopause-linger2ms", "wirelog-discard-nopause-linger2ms", // the third pass's loop
	"wirelog-disklog-linger2ms", "wirelog-disklog-linger5ms",
	"rsyslog",
}

// benchReceivers is udpReceivers, or the comma-separated names in
// $WIRELOG_UDP_RECEIVERS (any combination udpRx takes, for a one-off A/B).
func benchReceivers() []string {
	if v := os.Getenv("WIRELOG_UDP_RECEIVERS"); v != "" {
		return strings.Split(v, ",")
	}
	return udpReceivers
}

// BenchmarkUDPReceive sends b.N datagrams of 64, 256 and 1024 bytes from
// one sender process on loopback, as fast as it can, to each receiver of
// udpReceivers: bare receivers (recvmmsg through Go's poller, x/net/ipv4
// ReadBatch, a blocking recvmmsg thread), wirelog into a discarding
// producer or into the embedded durable log (fsync), and rsyslog (imudp →
// omfile). Run with -benchtime=Nx: b.N is the number of datagrams sent.
func BenchmarkUDPReceive(b *testing.B) {
	const rcvbuf = 32 << 20
	for _, size := range []int{64, 256, 1024} {
		for _, name := range benchReceivers() {
			b.Run(fmt.Sprintf("%dB/%s", size, name), func(b *testing.B) {
				measure(b, udpRx(b, name, rcvbuf), "udp", size, 1, 0)
			})
		}
	}
}

// BenchmarkUDPPaced sends datagrams of 64, 256 and 1024 bytes at a fixed
// 100,000/s, a rate every receiver keeps up with, to compare CPU per
// message at equal load.
func BenchmarkUDPPaced(b *testing.B) {
	for _, size := range []int{64, 256, 1024} {
		for _, name := range benchReceivers() {
			b.Run(fmt.Sprintf("%dB/%s", size, name), func(b *testing.B) {
				measure(b, udpRx(b, name, 32<<20), "udp", size, 1, 100000)
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
				rx = wirelogRx(b, "tcp", 32<<20, nil)
			default:
				rx = wirelogRx(b, "tcp", 32<<20, &disklog.Options{})
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
			cfg.udpBlocking = udpPoller // s.rc: the poller's read, as the comparison was measured
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
