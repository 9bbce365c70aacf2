package syslog

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func runLogger(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "logger", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("logger %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestLogger sends RFC 5424 and RFC 3164 messages with util-linux logger —
// a client no one here wrote — over UDP, TCP with LF framing and TCP with
// octet counting, into the embedded durable log, and reads each message
// back from the log with its fields.
func TestLogger(t *testing.T) {
	if _, err := exec.LookPath("logger"); err != nil {
		t.Skip("util-linux logger is not installed: run scripts/deps/40-syslog.sh")
	}
	l := openLog(t)
	s := start(t, l.Producer(), testConfig())
	fullHost, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	shortHost, _, _ := strings.Cut(fullHost, ".") // logger --rfc3164 sends the short name
	udpPort := strconv.Itoa(s.UDPAddr().(*net.UDPAddr).Port)
	tcpPort := strconv.Itoa(s.TCPAddr().(*net.TCPAddr).Port)

	type sent struct {
		format, transport string
		msg               string
	}
	var cases []sent
	for _, tr := range []struct {
		name string
		args []string
	}{
		{"udp", []string{"-d", "-P", udpPort}},
		{"tcp-lf", []string{"-T", "-P", tcpPort}},
		{"tcp-octet", []string{"-T", "--octet-count", "-P", tcpPort}},
	} {
		for _, format := range []string{"rfc5424", "rfc3164"} {
			msg := fmt.Sprintf("wirelog test %s over %s: quote \" backslash \\ tab\tend", format, tr.name)
			args := append([]string{"-n", "127.0.0.1", "--" + format, "-t", "wl-" + tr.name, "-p", "local3.err", "--id=4242"}, tr.args...)
			if format == "rfc5424" {
				args = append(args, "--msgid", "ID9", "--sd-id", "zoo@32473", "--sd-param", `tiger="hungry"`)
			}
			runLogger(t, append(args, msg)...)
			cases = append(cases, sent{format, tr.name, msg})
		}
	}
	recs := readLog(t, l, len(cases), 20*time.Second)
	for _, c := range cases {
		var got *record
		for i := range recs {
			if recs[i].Message == c.msg {
				got = &recs[i]
			}
		}
		if got == nil {
			t.Errorf("%s over %s: message %q not in the log; got %+v", c.format, c.transport, c.msg, recs)
			continue
		}
		host := shortHost
		if c.format == "rfc5424" && got.Host == fullHost {
			host = fullHost
		}
		key := host // the partition key: the host, or for raw UDP records (--syslog-udp-raw) the sender's address
		if c.transport == "udp" {
			key = "127.0.0.1"
		}
		want := fmt.Sprintf("service=wl-%s host=%s level=error facility=local3 severity=err procid=4242 key=%s",
			c.transport, host, key)
		have := fmt.Sprintf("service=%s host=%s level=%s facility=%v severity=%v procid=%v key=%s",
			got.Service, got.Host, got.Level, got.Attrs["facility"], got.Attrs["severity"], got.Attrs["procid"], got.Key)
		if have != want {
			t.Errorf("%s over %s:\n got %s\nwant %s", c.format, c.transport, have, want)
		}
		if time.Since(got.TS) > time.Minute || time.Since(got.TS) < -time.Minute {
			t.Errorf("%s over %s: time %v is not now", c.format, c.transport, got.TS)
		}
		if c.format == "rfc5424" {
			sd, _ := got.Attrs["sd"].(map[string]any)
			zoo, _ := sd["zoo@32473"].(map[string]any)
			if got.Attrs["msgid"] != "ID9" || zoo["tiger"] != "hungry" || sd["timeQuality"] == nil {
				t.Errorf("%s over %s: attrs %v, want msgid ID9 and sd zoo@32473 tiger=hungry and timeQuality", c.format, c.transport, got.Attrs)
			}
		}
	}
	// The accepted counters move once Produce has returned, which can be
	// just after the consumer saw the records: wait for them to settle.
	var m map[string]float64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m = metrics(t, s)
		if m[`wirelog_syslog_accepted_total{transport=udp}`] == 2 && m[`wirelog_syslog_accepted_total{transport=tcp}`] == 4 || time.Now().After(deadline) {
			break
		}
	}
	if m[`wirelog_syslog_accepted_total{transport=udp}`] != 2 || m[`wirelog_syslog_accepted_total{transport=tcp}`] != 4 {
		t.Errorf("accepted counters: udp %v tcp %v, want 2 and 4", m[`wirelog_syslog_accepted_total{transport=udp}`], m[`wirelog_syslog_accepted_total{transport=tcp}`])
	}
}

// TestTCPFlowControl has a client write as fast as it can while the log
// pushes back: the client's writes block (TCP flow control), and once the
// log takes writes again every message arrives, none lost or duplicated.
func TestTCPFlowControl(t *testing.T) {
	rec := newRecorder(t)
	rec.gate(true)
	cfg := testConfig()
	cfg.UDPAddr = ""
	s := start(t, rec, cfg)
	conn, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	const total = 150000 // ~16 MB: more than the loopback socket buffers hold (tcp_rmem + tcp_wmem max ≈ 10 MB)
	var stream bytes.Buffer
	for i := 0; i < total; i++ {
		fmt.Fprintf(&stream, "<14>1 2024-01-05T10:15:32Z host app - - - seq=%07d %s\n", i, strings.Repeat("x", 50))
	}
	data := stream.Bytes()
	blocked := false
	written := 0
	for written < len(data) {
		conn.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := conn.Write(data[written:min(len(data), written+64<<10)])
		written += n
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
			blocked = true
			break
		}
	}
	if !blocked {
		t.Fatalf("wrote all %d bytes while the log pushed back: no flow control", len(data))
	}
	if _, refused := rec.snapshot(); refused == 0 {
		t.Fatal("the producer was never asked while the client was blocked")
	}
	t.Logf("client blocked after %d of %d bytes", written, len(data))

	rec.gate(false)
	conn.SetWriteDeadline(time.Now().Add(60 * time.Second))
	if _, err := conn.Write(data[written:]); err != nil {
		t.Fatalf("write after the log recovered: %v", err)
	}
	conn.Close()
	recs := rec.waitFor(t, total, 60*time.Second)
	seen := make([]bool, total)
	for _, r := range recs {
		var i int
		if _, err := fmt.Sscanf(r.Message, "seq=%07d", &i); err != nil || i < 0 || i >= total {
			t.Fatalf("unexpected message %q", r.Message)
		}
		if seen[i] {
			t.Fatalf("message %d delivered twice", i)
		}
		seen[i] = true
	}
	if len(recs) != total {
		t.Fatalf("%d records, want %d", len(recs), total)
	}
	if m := metrics(t, s); m[`wirelog_syslog_backpressure_total{transport=tcp}`] == 0 {
		t.Error("wirelog_syslog_backpressure_total{transport=tcp} is 0")
	}
}

// TestUDPDropsShowInMetrics overflows a small socket buffer while the log
// pushes back: what the kernel dropped shows in the per-socket and the
// namespace counters, and received + dropped equals sent exactly.
func TestUDPDropsShowInMetrics(t *testing.T) {
	rec := newRecorder(t)
	rec.gate(true)
	cfg := testConfig()
	cfg.TCPAddr = ""
	cfg.UDPSockets = 1
	cfg.RcvBuf = 64 << 10
	cfg.BatchRecords = 16 // wirelog itself holds (1 + producers + queue) batches: ~600 datagrams
	s := start(t, rec, cfg)
	before := metrics(t, s)
	if _, ok := before[`wirelog_syslog_kernel_udp_rcvbuf_errors_total`]; !ok {
		t.Fatalf("kernel counters missing from %v", before)
	}
	conn, err := net.Dial("udp", s.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const sent = 5000
	for i := 0; i < sent; i++ {
		if _, err := fmt.Fprintf(conn, "<14>1 - host app - - - datagram %d", i); err != nil {
			t.Fatal(err)
		}
	}
	m := metrics(t, s)
	drops := m[`wirelog_syslog_udp_socket_drops_total{socket=0}`]
	if drops == 0 {
		t.Fatalf("no kernel drops counted with a %d-byte buffer and a blocked log: %v", cfg.RcvBuf, m)
	}
	if m[`wirelog_syslog_kernel_udp_rcvbuf_errors_total`] < before[`wirelog_syslog_kernel_udp_rcvbuf_errors_total`]+drops {
		t.Errorf("/proc/net/snmp RcvbufErrors rose by %v, less than the socket's %v drops",
			m[`wirelog_syslog_kernel_udp_rcvbuf_errors_total`]-before[`wirelog_syslog_kernel_udp_rcvbuf_errors_total`], drops)
	}
	if m[`wirelog_syslog_backpressure_total{transport=udp}`] == 0 {
		t.Error("backpressure not counted")
	}
	rec.gate(false)
	s.Close()
	recs, _ := rec.snapshot()
	after := metrics(t, s)
	if got := float64(len(recs)) + after[`wirelog_syslog_udp_socket_drops_total{socket=0}`]; got != sent {
		t.Errorf("received %d + dropped %v = %v, want %d sent", len(recs), after[`wirelog_syslog_udp_socket_drops_total{socket=0}`], got, sent)
	}
	if after[`wirelog_syslog_accepted_total{transport=udp}`] != float64(len(recs)) {
		t.Errorf("accepted_total %v, producer got %d", after[`wirelog_syslog_accepted_total{transport=udp}`], len(recs))
	}
	t.Logf("sent %d, received %d, kernel dropped %v", sent, len(recs), after[`wirelog_syslog_udp_socket_drops_total{socket=0}`])
}

// TestCloseDrains checks that Close produces what was already received.
func TestCloseDrains(t *testing.T) {
	rec := newRecorder(t)
	cfg := testConfig()
	s := start(t, rec, cfg)
	conn, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	u, err := net.Dial("udp", s.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for i := 0; i < 100; i++ {
		fmt.Fprintf(conn, "<13>Jan  5 10:15:32 h app: tcp %d\n", i)
		fmt.Fprintf(u, "<13>Jan  5 10:15:32 h app: udp %d", i)
	}
	fmt.Fprintf(conn, "<13>Jan  5 10:15:32 h app: no final newline")
	rec.waitFor(t, 1, 10*time.Second) // the server has started reading
	time.Sleep(100 * time.Millisecond)
	s.Close()
	recs, _ := rec.snapshot()
	if len(recs) != 201 {
		t.Fatalf("after Close the producer has %d records, want 201", len(recs))
	}
}

// TestIdleTimeoutAndOversize closes an idle connection and cuts a message
// longer than the maximum, counting both.
func TestIdleTimeoutAndOversize(t *testing.T) {
	rec := newRecorder(t)
	cfg := testConfig()
	cfg.UDPAddr = ""
	cfg.IdleTimeout = 300 * time.Millisecond
	cfg.MaxMessage = 1024
	s := start(t, rec, cfg)
	conn, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	long := "<13>1 - h app - - - " + strings.Repeat("y", 3000)
	fmt.Fprintf(conn, "%d %s", len(long), long)
	fmt.Fprintf(conn, "%d %s", len("<13>1 - h app - - - after"), "<13>1 - h app - - - after")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("the server sent data instead of closing the idle connection")
	} else if isTimeout(err) {
		t.Fatal("the idle connection was not closed")
	}
	recs := rec.waitFor(t, 2, 5*time.Second)
	if len(recs[0].Message) != 1024-len("<13>1 - h app - - - ") || recs[1].Message != "after" {
		t.Errorf("messages %d bytes and %q; want cut to 1024 bytes and \"after\"", len(recs[0].Message), recs[1].Message)
	}
	m := metrics(t, s)
	if m[`wirelog_syslog_truncated_total{transport=tcp}`] != 1 || m[`wirelog_syslog_tcp_idle_timeouts_total`] != 1 {
		t.Errorf("truncated %v idle timeouts %v, want 1 and 1", m[`wirelog_syslog_truncated_total{transport=tcp}`], m[`wirelog_syslog_tcp_idle_timeouts_total`])
	}
}

// TestParseErrorsAreStored sends malformed messages: each is stored with
// its raw text and counted as a parse error, not lost.
// With --syslog-udp-raw the processor parses, so the ingest counts
// only the empty datagram; without, it counts the parse errors too.
func TestParseErrorsAreStored(t *testing.T) {
	for _, raw := range []bool{true, false} {
		t.Run(fmt.Sprintf("raw=%v", raw), func(t *testing.T) { testParseErrorsAreStored(t, raw) })
	}
}

func testParseErrorsAreStored(t *testing.T, raw bool) {
	rec := newRecorder(t)
	cfg := testConfig()
	cfg.TCPAddr = ""
	cfg.UDPRaw = raw
	s := start(t, rec, cfg)
	u, err := net.Dial("udp", s.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	bad := []string{"no pri at all", "<13>1 2024-13-01T00:00:00Z h a - - - bad month", "<13>1 - h a - - [x y=z] sd"}
	for _, b := range bad {
		fmt.Fprint(u, b)
	}
	fmt.Fprint(u, "\n") // empty: rejected, counted
	recs := rec.waitFor(t, len(bad), 10*time.Second)
	for i, r := range recs {
		if r.Message != bad[i] || r.Attrs["parse_error"] == nil {
			t.Errorf("record %d: %+v, want raw %q with attrs.parse_error", i, r, bad[i])
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := metrics(t, s)
		pe := m[`wirelog_syslog_parse_errors_total{reason=pri,transport=udp}`] +
			m[`wirelog_syslog_parse_errors_total{reason=timestamp,transport=udp}`] +
			m[`wirelog_syslog_parse_errors_total{reason=structured_data,transport=udp}`]
		if raw {
			pe += 3 // counted by the processor (wirelog_processor_syslog_parse_errors_total)
		}
		if pe == 3 && m[`wirelog_syslog_rejected_total{reason=empty,transport=udp}`] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("parse errors %v (want 3), empty rejected %v (want 1)", pe, m[`wirelog_syslog_rejected_total{reason=empty,transport=udp}`])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFlags(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)
	if c.UDPAddr != DefaultAddr || c.TCPAddr != DefaultAddr || c.RcvBuf != DefaultRcvBuf {
		t.Fatalf("defaults not applied: %+v", c)
	}
	err := fs.Parse([]string{"--syslog-udp", "", "--syslog-tcp", "0.0.0.0:6514", "--syslog-udp-sockets", "4",
		"--syslog-rcvbuf", "64MiB", "--syslog-max-message", "8KiB", "--syslog-idle-timeout", "90s", "--syslog-udp-linger", "3ms"})
	if err != nil {
		t.Fatal(err)
	}
	if c.UDPAddr != "" || c.TCPAddr != "0.0.0.0:6514" || c.UDPSockets != 4 || c.RcvBuf != 64<<20 ||
		c.MaxMessage != 8<<10 || c.IdleTimeout != 90*time.Second || c.UDPLinger != 3*time.Millisecond {
		t.Errorf("parsed %+v", c)
	}
	if err := fs.Parse([]string{"--syslog-rcvbuf", "lots"}); err == nil || !strings.Contains(err.Error(), "syslog-rcvbuf") {
		t.Errorf("bad size: %v, want an error naming --syslog-rcvbuf", err)
	}
	c.UDPLinger = -time.Millisecond
	if _, err := Start(context.Background(), newRecorder(t), c); err == nil || !strings.Contains(err.Error(), "--syslog-udp-linger") {
		t.Errorf("Start with a negative linger: %v, want an error naming the flag", err)
	}
	c.UDPLinger = 0
	c.MaxMessage = 100
	if _, err := Start(context.Background(), newRecorder(t), c); err == nil || !strings.Contains(err.Error(), "--syslog-max-message") {
		t.Errorf("Start with a tiny max message: %v, want an error naming the flag", err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	c = testConfig()
	c.TCPAddr = busy.Addr().String()
	if _, err := Start(context.Background(), newRecorder(t), c); err == nil || !strings.Contains(err.Error(), "--syslog-tcp") {
		t.Errorf("Start on a busy port: %v, want an error naming --syslog-tcp", err)
	}
}

// TestUDPReceiveLoops runs every UDP receive loop (the blocking recvmmsg
// loop on a locked or a free thread, and the netpoller loop kept as the
// benchmark's baseline): each stores every datagram with its sender, hands
// over a lingering batch without more traffic, and Close wakes its wait
// promptly and drains what the kernel holds.
func TestUDPReceiveLoops(t *testing.T) {
	for _, loop := range []struct {
		name, addr string
		mode       int
		pause      time.Duration // udpPauseTime; 0 = the default
	}{
		{"blocking-locked", "127.0.0.1:0", udpBlockingLocked, 0},
		// A wildcard address: a dual-stack IPv6 socket (or IPv4 alone
		// where the kernel has no IPv6), sent to over IPv4.
		{"blocking-locked-wildcard", ":0", udpBlockingLocked, 0},
		{"blocking-free", "127.0.0.1:0", udpBlockingFree, 0},
		{"poller", "127.0.0.1:0", udpPoller, 0},
		{"blocking-locked-nopause", "127.0.0.1:0", udpBlockingLocked, -1},
		{"blocking-locked-pause", "127.0.0.1:0", udpBlockingLocked, time.Millisecond},
	} {
		t.Run(loop.name, func(t *testing.T) {
			rec := newRecorder(t)
			cfg := testConfig()
			cfg.TCPAddr = ""
			cfg.UDPAddr = loop.addr
			cfg.udpBlocking = loop.mode
			cfg.udpPauseTime = loop.pause
			s := start(t, rec, cfg)
			c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", s.UDPAddr().(*net.UDPAddr).Port))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// One datagram alone: the linger, not a full batch, hands it over.
			fmt.Fprintf(c, "<14>1 - host app - - - first")
			recs := rec.waitFor(t, 1, 5*time.Second)
			if recs[0].Attrs["client.address"] != "127.0.0.1" {
				t.Fatalf("attrs %v, want client.address 127.0.0.1", recs[0].Attrs)
			}
			const n = 300
			for i := 0; i < n; i++ {
				fmt.Fprintf(c, "<14>1 - host app - - - datagram %d", i)
			}
			time.Sleep(50 * time.Millisecond) // queued in the kernel or received
			start := time.Now()
			s.Close()
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("Close took %v: the receive loop's wait was not woken", d)
			}
			got, _ := rec.snapshot()
			if len(got) != n+1 {
				t.Fatalf("stored %d datagrams, sent %d", len(got), n+1)
			}
		})
	}
}
