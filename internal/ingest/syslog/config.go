// Package syslog receives syslog over UDP and TCP and produces each message,
// parsed into a wirelog event, to the durable log.
//
// UDP runs several SO_REUSEPORT sockets, one goroutine each, reading with
// recvmmsg(2) in batches; when the log pushes back the goroutine stops
// reading, the kernel queue fills and the kernel drops — which the exported
// kernel counters show beside wirelog's own. TCP reads one goroutine per
// connection with RFC 6587 framing and stops reading while the log pushes
// back, so TCP flow control slows the sender and nothing is dropped.
package syslog

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Defaults, in one place.
const (
	// DefaultAddr is where both listeners bind unless told otherwise:
	// loopback, so a fresh install receives nothing from the network.
	DefaultAddr = "127.0.0.1:5514"
	// DefaultRcvBuf is the UDP socket receive buffer asked for. The kernel
	// default (net.core.rmem_default, 208 KiB on Debian 12) holds under a
	// millisecond of traffic at a few hundred thousand datagrams/s; 32 MiB
	// rides out a fsync or a GC pause. As root it is set with SO_RCVBUFFORCE,
	// past net.core.rmem_max.
	DefaultRcvBuf = 32 << 20
	// DefaultMaxMessage is the largest message kept whole (64 KiB covers any
	// UDP datagram); longer TCP messages and datagrams are cut to it and
	// counted in wirelog_syslog_truncated_total.
	DefaultMaxMessage = 64 << 10
	// DefaultIdleTimeout closes TCP connections that sent nothing for this
	// long, so dead peers do not hold a goroutine and a socket forever.
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultTopic is the log topic syslog events are produced to (disklog.DefaultTopic).
	DefaultTopic = "wirelog.logs"
	// DefaultBatchRecords and DefaultBatchBytes bound one Produce call: big
	// enough to amortise a durable append, small enough to keep latency low.
	DefaultBatchRecords = 1024
	DefaultBatchBytes   = 1 << 20
	// DefaultDrainTimeout bounds how long Close waits for the log to take
	// the messages already received.
	DefaultDrainTimeout = 30 * time.Second

	// DefaultTLSPort is RFC 5425's port for syslog over TLS; --syslog-tls
	// is off by default because it needs a certificate.
	DefaultTLSPort = 6514
	// DefaultMaxConnections bounds the TCP and TLS connections open at
	// once (each holds a goroutine, buffers and a file descriptor); past
	// it new connections are closed at once and counted.
	DefaultMaxConnections = 10000
	// DefaultMaxConnectionsPerSource bounds the connections of one client
	// address (after PROXY protocol), so one misbehaving sender cannot take
	// them all; a relay needs a handful.
	DefaultMaxConnectionsPerSource = 64
	// DefaultHandshakeTimeout bounds the PROXY header and the TLS
	// handshake, so a client that connects and says nothing does not hold
	// a slot until the idle timeout.
	DefaultHandshakeTimeout = 10 * time.Second

	// DefaultUDPLinger bounds how long a UDP batch waits for more
	// datagrams before it is handed to the log (--syslog-udp-linger), and
	// so how long a received datagram is held in memory only: a crash
	// (kill -9, power loss) loses at most this much (+⅛) of the datagrams
	// received, besides those the kernel still queues, which no receiver
	// can save (UDP has no acknowledgement to withhold); Close and SIGTERM
	// lose none. 10 ms, not the 2 ms before: at 100,000 datagrams/s a
	// batch then fills (DefaultBatchRecords) instead of leaving with ~200
	// records, a fifth of the hand-overs and fsynced group commits, which
	// cut the CPU per line into the durable log by 0.3-1.0 µs
	// (docs/bench/syslog.md, issue 17 fourth pass). A lone datagram is
	// handed to the log 10 ms after it arrived.
	DefaultUDPLinger = 10 * time.Millisecond

	// DefaultUDPRaw: UDP datagrams go into the log as raw syslog records
	// (internal/parse/syslog record.go) and the processor parses them, so
	// the receive path only copies; false parses at ingest and writes the
	// JSON record, as TCP and TLS do.
	DefaultUDPRaw = true

	// udpProducers is the number of Produce calls one UDP socket may have in
	// flight (group-committed by the log) while it goes on reading, and
	// udpQueued the full batches (each ≤ DefaultBatchBytes) that may wait
	// for them: at most 32 MiB per socket, about 0.4 s of traffic at 100,000
	// datagrams/s held across an fsync stall before the kernel queue fills.
	udpProducers = 4
	udpQueued    = 32
	// xdpLinger bounds how long a batch of the AF_XDP loop waits for more
	// datagrams (DefaultUDPLinger's counterpart, not re-measured), and
	// tcpLinger how long a TCP read may wait while a batch is pending.
	xdpLinger = 2 * time.Millisecond
	tcpLinger = 2 * time.Millisecond
	// udpPause is how long the blocking receive loop sleeps after a read
	// that emptied the socket (fewer datagrams than slots) before reading
	// again, so the datagrams of the next ~udpPause arrive in one wake-up
	// and one recvmmsg instead of one each: interrupt coalescing, as NAPI
	// does for a NIC. It only runs while the loop keeps up (a full read
	// never pauses), so it caps no rate; it adds at most udpPause to a
	// datagram's time to the log and holds at most udpPause of traffic in
	// the kernel queue (a few hundred datagrams at 1,000,000/s, well
	// inside --syslog-rcvbuf). Measured at 100,000 datagrams/s: ~50
	// datagrams per wake-up instead of ~4, CPU per line -1.0 µs at 64 B
	// (docs/bench/syslog.md, issue 17 fourth pass).
	udpPause = 250 * time.Microsecond
	// UDP receive loops. The default (zero) is a blocking socket read by
	// recvmmsg(MSG_WAITFORONE) on a goroutine locked to its OS thread
	// (udpLoopBlocking): measured against the others in the same runs
	// (docs/bench/syslog.md, issue 17 third pass), it spent the least CPU
	// per line, with no epoll_wait and no empty read per wake-up. The same
	// loop on any thread, and the loop through Go's network poller (udpLoop,
	// the code before), stay for the benchmark's same-run comparison.
	udpBlockingLocked = 0
	udpBlockingFree   = 1
	udpPoller         = 2
	// udpSlotsMax is the number of datagrams one recvmmsg call can return.
	udpSlotsMax = 64
	// udpSlotBytes caps the memory of one socket's receive slots.
	udpSlotBytes = 4 << 20
	// Backoff between Produce retries while the log pushes back.
	retryMin = time.Millisecond
	retryMax = 500 * time.Millisecond
)

// Config configures the listeners. The zero value is not useful; start from
// DefaultConfig or RegisterFlags.
type Config struct {
	UDPAddr    string // --syslog-udp; "" disables UDP
	TCPAddr    string // --syslog-tcp; "" disables TCP
	XDP        string // --syslog-xdp; interface whose UDPAddr port is read through AF_XDP; "" = off
	UDPSockets int    // --syslog-udp-sockets; SO_REUSEPORT sockets, 0 = GOMAXPROCS
	RcvBuf     int    // --syslog-rcvbuf; bytes asked for each UDP socket
	MaxMessage int    // --syslog-max-message; bytes
	UDPRaw     bool   // --syslog-udp-raw: datagrams become raw syslog records, parsed by the processor
	// MaxAttributes is the ingest limit --max-attributes; a message with
	// more keeps its text and loses its structured data. 0 = unbounded.
	MaxAttributes int
	IdleTimeout   time.Duration // --syslog-idle-timeout; 0 = never
	UDPLinger     time.Duration // --syslog-udp-linger; 0 = DefaultUDPLinger

	TLSAddr         string // --syslog-tls; "" disables syslog over TLS (RFC 5425)
	TLSCertFile     string // --syslog-tls-cert; "" = the shared --tls-cert
	TLSKeyFile      string // --syslog-tls-key
	TLSClientCAFile string // --syslog-tls-client-ca; "" = the shared --tls-client-ca (if any)
	ProxyProtocol   bool   // --syslog-proxy-protocol: TCP and TLS connections start with a PROXY v1 or v2 header
	MaxConns        int    // --syslog-max-connections; TCP + TLS
	MaxConnsPerSrc  int    // --syslog-max-connections-per-source

	// TLS is the listener's configuration, built by the caller from the
	// files above (internal/tlsconf); required when TLSAddr is set.
	TLS *tls.Config
	// OnHandshakeError, when set, is told of every failed TLS handshake
	// (tlsconf counts those its verification did not see).
	OnHandshakeError func(error)
	HandshakeTimeout time.Duration // DefaultHandshakeTimeout when 0

	// udpSlots overrides udpSlotsMax (datagrams per recvmmsg), for the
	// benchmark that measures batch sizes against each other.
	udpSlots int
	// udpBlocking picks the UDP receive loop (udpBlockingLocked, the
	// default; udpBlockingFree; udpPoller), for the benchmark that measures
	// them against each other.
	udpBlocking int
	// udpPauseTime overrides udpPause (0 = the const, negative = no
	// pause), for the benchmark that measures them against each other and
	// the tests of the bounds.
	udpPauseTime time.Duration

	Topic        string         // log topic; DefaultTopic when empty
	Location     *time.Location // zone of RFC 3164 timestamps; time.Local when nil
	BatchRecords int            // records per Produce; DefaultBatchRecords when 0
	BatchBytes   int            // bytes per Produce; DefaultBatchBytes when 0
	DrainTimeout time.Duration  // Close's bound; DefaultDrainTimeout when 0
	Logger       *slog.Logger   // slog.Default() when nil
}

// DefaultConfig returns the configuration `wirelog run` starts with.
func DefaultConfig() Config {
	return Config{
		UDPAddr:     DefaultAddr,
		TCPAddr:     DefaultAddr,
		RcvBuf:      DefaultRcvBuf,
		MaxMessage:  DefaultMaxMessage,
		IdleTimeout: DefaultIdleTimeout,
		UDPRaw:      DefaultUDPRaw,
		UDPLinger:   DefaultUDPLinger,

		MaxConns:       DefaultMaxConnections,
		MaxConnsPerSrc: DefaultMaxConnectionsPerSource,
	}
}

// RegisterFlags binds the --syslog-* flags to c, with c's current values
// (DefaultConfig's when c is zero) as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	if c.UDPAddr == "" && c.TCPAddr == "" && c.RcvBuf == 0 && c.MaxMessage == 0 {
		*c = DefaultConfig()
	}
	fs.StringVar(&c.UDPAddr, "syslog-udp", c.UDPAddr,
		"syslog UDP listen address (RFC 5424 and RFC 3164); empty disables UDP")
	fs.StringVar(&c.TCPAddr, "syslog-tcp", c.TCPAddr,
		"syslog TCP listen address (RFC 6587 octet-counting or LF framing, detected per connection); empty disables TCP")
	fs.StringVar(&c.XDP, "syslog-xdp", c.XDP,
		"network interface (e.g. an SR-IOV VF) on which the --syslog-udp port is received through AF_XDP, bypassing the kernel's UDP stack; "+
			"other traffic goes to the kernel. Needs root (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW) and a kernel with CONFIG_XDP_SOCKETS; empty = off")
	fs.IntVar(&c.UDPSockets, "syslog-udp-sockets", c.UDPSockets,
		"number of SO_REUSEPORT UDP sockets, one receive goroutine each (0 = GOMAXPROCS)")
	fs.Var((*byteSize)(&c.RcvBuf), "syslog-rcvbuf",
		"UDP socket receive buffer, e.g. 32MiB (set with SO_RCVBUFFORCE when run as root; the kernel default is net.core.rmem_default, often 208KiB)")
	fs.Var((*byteSize)(&c.MaxMessage), "syslog-max-message",
		"largest syslog message kept whole, e.g. 64KiB; longer ones are truncated and counted in wirelog_syslog_truncated_total")
	fs.BoolVar(&c.UDPRaw, "syslog-udp-raw", c.UDPRaw,
		"put each UDP datagram into the log as it arrived (with its sender and receive time) and let the processor parse it: "+
			"the receive path only copies, so it keeps up with more datagrams per core. Stored events are the same either way. "+
			"Processors must be this wirelog version or newer (upgrade them first); false writes JSON records, for other consumers of a Kafka topic")
	fs.DurationVar(&c.IdleTimeout, "syslog-idle-timeout", c.IdleTimeout,
		"close syslog TCP connections idle this long (0 = never)")
	fs.DurationVar(&c.UDPLinger, "syslog-udp-linger", c.UDPLinger,
		"longest a received UDP datagram waits in memory for a fuller batch before it is handed to the durable log: "+
			"a crash (not a SIGTERM) can lose this much received traffic; shorter makes datagrams searchable sooner for more CPU per line "+
			"(each hand-over costs a group commit)")
	fs.StringVar(&c.TLSAddr, "syslog-tls", c.TLSAddr,
		"syslog over TLS (RFC 5425, octet-counted frames; LF framing accepted too) listen address, e.g. 127.0.0.1:6514; empty disables. "+
			"Uses --syslog-tls-cert/--syslog-tls-key, or the shared --tls-cert/--tls-key")
	fs.StringVar(&c.TLSCertFile, "syslog-tls-cert", c.TLSCertFile, "PEM certificate `file` of the syslog TLS listener (default: --tls-cert); re-read when it changes on disk")
	fs.StringVar(&c.TLSKeyFile, "syslog-tls-key", c.TLSKeyFile, "PEM private key `file` of --syslog-tls-cert")
	fs.StringVar(&c.TLSClientCAFile, "syslog-tls-client-ca", c.TLSClientCAFile,
		"PEM CA `file`: syslog TLS clients must present a certificate chaining to it (mutual TLS, RFC 5425 §5); default: --tls-client-ca when --syslog-tls-cert is not set. "+
			"A client whose SPIFFE ID no ingest --allow-spiffe-id rule allows fails the handshake")
	fs.BoolVar(&c.ProxyProtocol, "syslog-proxy-protocol", c.ProxyProtocol,
		"syslog TCP and TLS connections start with a PROXY protocol header, v1 (text) or v2 (binary), told apart per connection (behind a load balancer that sends one: HAProxy send-proxy/send-proxy-v2, AWS NLB, nginx, Envoy): the client address it names is recorded as client.address; connections without it are refused")
	fs.IntVar(&c.MaxConns, "syslog-max-connections", c.MaxConns, "most syslog TCP+TLS connections open at once; more are closed at once and counted (0 = no limit)")
	fs.IntVar(&c.MaxConnsPerSrc, "syslog-max-connections-per-source", c.MaxConnsPerSrc, "most syslog TCP+TLS connections from one client address (after PROXY protocol) (0 = no limit)")
}

// check validates c and fills the defaults of the fields without flags.
func (c *Config) check() error {
	if c.UDPSockets < 0 {
		return fmt.Errorf("--syslog-udp-sockets %d: must be 0 (GOMAXPROCS) or more", c.UDPSockets)
	}
	if c.UDPSockets == 0 {
		c.UDPSockets = runtime.GOMAXPROCS(0)
	}
	if c.MaxMessage < 480 { // RFC 5424 §6.1: receivers MUST accept 480 octets
		return fmt.Errorf("--syslog-max-message %d: must be at least 480 bytes (RFC 5424 §6.1)", c.MaxMessage)
	}
	if c.RcvBuf < 0 {
		return fmt.Errorf("--syslog-rcvbuf %d: must not be negative", c.RcvBuf)
	}
	if c.IdleTimeout < 0 {
		return fmt.Errorf("--syslog-idle-timeout %v: must not be negative", c.IdleTimeout)
	}
	if c.TLSAddr != "" && c.TLS == nil {
		return fmt.Errorf("--syslog-tls %s needs a certificate: set --syslog-tls-cert and --syslog-tls-key, or --tls-cert and --tls-key", c.TLSAddr)
	}
	if c.MaxConns < 0 || c.MaxConnsPerSrc < 0 {
		return fmt.Errorf("--syslog-max-connections and --syslog-max-connections-per-source must not be negative")
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	if c.BatchRecords <= 0 {
		c.BatchRecords = DefaultBatchRecords
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.UDPLinger < 0 {
		return fmt.Errorf("--syslog-udp-linger %v: must not be negative", c.UDPLinger)
	}
	if c.UDPLinger == 0 {
		c.UDPLinger = DefaultUDPLinger
	}
	if c.udpPauseTime == 0 {
		c.udpPauseTime = udpPause
	}
	c.udpPauseTime = max(c.udpPauseTime, 0)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// byteSize is an int flag that takes "65536", "64KiB", "32MiB", "1GiB"
// (KB/MB/GB are read as powers of 1024 too, as rsyslog and nginx do).
type byteSize int

func (b *byteSize) String() string {
	if b == nil {
		return "0"
	}
	v := int(*b)
	for _, u := range []struct {
		name string
		n    int
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v >= u.n && v%u.n == 0 {
			return strconv.Itoa(v/u.n) + u.name
		}
	}
	return strconv.Itoa(v)
}

func (b *byteSize) Set(s string) error {
	t := strings.TrimSpace(s)
	mult := 1
	for _, u := range []struct {
		suffix string
		n      int
	}{{"GiB", 1 << 30}, {"GB", 1 << 30}, {"G", 1 << 30}, {"MiB", 1 << 20}, {"MB", 1 << 20}, {"M", 1 << 20},
		{"KiB", 1 << 10}, {"KB", 1 << 10}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(strings.ToUpper(t), strings.ToUpper(u.suffix)) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.n
			break
		}
	}
	v, err := strconv.Atoi(t)
	if err != nil || v < 0 || v > (1<<31)/mult {
		return fmt.Errorf("%q is not a size (bytes, or a number with KiB, MiB or GiB)", s)
	}
	*b = byteSize(v * mult)
	return nil
}
