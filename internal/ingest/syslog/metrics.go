package syslog

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"

	sysparse "github.com/wirelog/wirelog/internal/parse/syslog"
)

// Reasons a received message is not produced (wirelog_syslog_rejected_total).
const (
	rejectEmpty    = iota // nothing but line ends: no event to make
	rejectClosed          // the producer was closed under us
	rejectShutdown        // Close's drain deadline passed with the log still pushing back
	numRejects
)

var rejectNames = [numRejects]string{"empty", "producer_closed", "shutdown"}

// Parse error reasons (wirelog_syslog_parse_errors_total); each event is
// still produced, in best-effort form.
var parseReasons = []string{"pri", "timestamp", "header", "structured_data", "other", "max_attributes"}

// limitReason is the parseReasons index of a message over --max-attributes.
const limitReason = 5

func parseReasonIndex(err error) int {
	switch err {
	case sysparse.ErrPRI:
		return 0
	case sysparse.ErrTimestamp:
		return 1
	case sysparse.ErrHeader:
		return 2
	case sysparse.ErrStructuredData:
		return 3
	}
	return 4
}

// stats are one source's counters. Receive loops add once per batch.
type stats struct {
	messages     atomic.Uint64
	bytes        atomic.Uint64
	accepted     atomic.Uint64
	truncated    atomic.Uint64
	backpressure atomic.Uint64
	rejected     [numRejects]atomic.Uint64
	parseErrors  [6]atomic.Uint64
	// TCP only
	connections   atomic.Uint64
	open          atomic.Int64
	framingErrors atomic.Uint64
	idleTimeouts  atomic.Uint64
	readErrors    atomic.Uint64
	_             [64]byte // keep the UDP and TCP counters on separate cache lines
}

// local accumulates a batch's counts before one atomic add each.
type local struct {
	messages, bytes, truncated uint64
	parseErrors                [6]uint64
	empty                      uint64
}

func (s *stats) add(l *local) {
	s.messages.Add(l.messages)
	s.bytes.Add(l.bytes)
	if l.truncated > 0 {
		s.truncated.Add(l.truncated)
	}
	if l.empty > 0 {
		s.rejected[rejectEmpty].Add(l.empty)
	}
	for i, n := range l.parseErrors {
		if n > 0 {
			s.parseErrors[i].Add(n)
		}
	}
	*l = local{}
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("wirelog_syslog_"+name, help, labels, nil)
}

var (
	descMessages = desc("messages_total", "Syslog messages received (datagrams, or framed TCP messages).", "transport")
	descBytes    = desc("bytes_total", "Bytes of syslog messages received, without framing.", "transport")
	descAccepted = desc("accepted_total", "Syslog events the log made durable.", "transport")
	descRejected = desc("rejected_total", "Syslog messages received but not produced, by reason "+
		"(empty; producer_closed; shutdown: the drain deadline passed while the log pushed back).", "transport", "reason")
	descParse = desc("parse_errors_total", "Syslog messages whose header was not understood, by reason; "+
		"each is still stored with its raw line as message and attrs.parse_error.", "transport", "reason")
	descTruncated    = desc("truncated_total", "Syslog messages longer than --syslog-max-message, stored cut to it.", "transport")
	descBackpressure = desc("backpressure_total", "Times the log pushed back (or was unavailable) and a batch was held "+
		"and retried; TCP stops reading meanwhile, UDP leaves datagrams to the kernel queue.", "transport")
	descConnections    = desc("tcp_connections_total", "Syslog TCP connections accepted.")
	descOpen           = desc("tcp_connections_open", "Syslog TCP connections open now.")
	descFraming        = desc("tcp_framing_errors_total", "Malformed RFC 6587 octet-counting headers; the connection continues with LF framing.")
	descIdle           = desc("tcp_idle_timeouts_total", "Syslog TCP connections closed by --syslog-idle-timeout.")
	descReadErrors     = desc("tcp_read_errors_total", "Syslog TCP connections ended by a read error (reset, …).")
	descTLSConnections = desc("tls_connections_total", "Syslog TLS connections accepted (before the handshake; failed ones are in connections_refused_total{reason=\"tls_handshake\"}).")
	descTLSOpen        = desc("tls_connections_open", "Syslog TLS connections open now.")
	descTLSFraming     = desc("tls_framing_errors_total", "Malformed octet-counting headers on syslog TLS connections; the connection continues with LF framing.")
	descSocketDrops    = desc("udp_socket_drops_total", "Datagrams the kernel dropped on a wirelog syslog UDP socket (the drops column of /proc/net/udp).", "socket")
	descSocketRcvbuf   = desc("udp_socket_rcvbuf_bytes", "Effective receive buffer of a syslog UDP socket, as getsockopt(SO_RCVBUF) reports it (the kernel doubles the asked size for bookkeeping).", "socket")
	descSocketQueue    = desc("udp_socket_queued_bytes", "Bytes waiting in a syslog UDP socket's receive queue (rx_queue of /proc/net/udp).", "socket")
	descRcvbufErrors   = desc("kernel_udp_rcvbuf_errors_total", "UDP datagrams dropped by the kernel because a receive buffer was full, all sockets of the network namespace (/proc/net/snmp Udp RcvbufErrors).")
	descInErrors       = desc("kernel_udp_in_errors_total", "UDP datagrams the kernel failed to deliver, all sockets of the network namespace (/proc/net/snmp Udp InErrors).")
)

// collector exports a Server's counters and the kernel's UDP drop counters.
type collector struct{ s *Server }

// Collector returns the Prometheus collector of the server's metrics, all
// prefixed wirelog_syslog_. Kernel counters are read from /proc at scrape.
func (s *Server) Collector() prometheus.Collector { return collector{s} }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMessages, descBytes, descAccepted, descRejected, descParse,
		descTruncated, descBackpressure, descConnections, descOpen, descFraming, descIdle, descReadErrors,
		descSocketDrops, descSocketRcvbuf, descSocketQueue, descRcvbufErrors, descInErrors,
		descTLSConnections, descTLSOpen, descTLSFraming, descRefused} {
		ch <- d
	}
	describeXDP(ch)
}

func counter(d *prometheus.Desc, v uint64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	for _, src := range []struct {
		name string
		st   *stats
	}{{"udp", &s.udpStats}, {"tcp", &s.tcpStats}, {"xdp", &s.xdpStats}, {"tls", &s.tlsStats}} {
		st := src.st
		ch <- counter(descMessages, st.messages.Load(), src.name)
		ch <- counter(descBytes, st.bytes.Load(), src.name)
		ch <- counter(descAccepted, st.accepted.Load(), src.name)
		ch <- counter(descTruncated, st.truncated.Load(), src.name)
		ch <- counter(descBackpressure, st.backpressure.Load(), src.name)
		for i := range st.rejected {
			ch <- counter(descRejected, st.rejected[i].Load(), src.name, rejectNames[i])
		}
		for i := range st.parseErrors {
			ch <- counter(descParse, st.parseErrors[i].Load(), src.name, parseReasons[i])
		}
	}
	s.collectXDP(ch)
	t := &s.tcpStats
	ch <- counter(descConnections, t.connections.Load())
	ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(t.open.Load()))
	ch <- counter(descFraming, t.framingErrors.Load())
	ch <- counter(descIdle, t.idleTimeouts.Load())
	ch <- counter(descReadErrors, t.readErrors.Load())
	tl := &s.tlsStats
	ch <- counter(descTLSConnections, tl.connections.Load())
	ch <- prometheus.MustNewConstMetric(descTLSOpen, prometheus.GaugeValue, float64(tl.open.Load()))
	ch <- counter(descTLSFraming, tl.framingErrors.Load())
	s.connStats.collect(ch)

	if len(s.udp) > 0 {
		kernel := readKernelUDP(s.udp)
		for _, sock := range s.udp {
			id := sock.label
			ch <- prometheus.MustNewConstMetric(descSocketRcvbuf, prometheus.GaugeValue, float64(sock.rcvbuf), id)
			if k, ok := kernel.sockets[sock.inode]; ok {
				ch <- counter(descSocketDrops, k.drops, id)
				ch <- prometheus.MustNewConstMetric(descSocketQueue, prometheus.GaugeValue, float64(k.queued), id)
			} else { // closed (after Close): keep the last value seen
				ch <- counter(descSocketDrops, sock.lastDrops.Load(), id)
			}
		}
		if kernel.snmpOK {
			ch <- counter(descRcvbufErrors, kernel.rcvbufErrors)
			ch <- counter(descInErrors, kernel.inErrors)
		}
	}
}

type kernelSocket struct{ drops, queued uint64 }

type kernelUDP struct {
	sockets                map[uint64]kernelSocket
	rcvbufErrors, inErrors uint64
	snmpOK                 bool
}

// readKernelUDP reads /proc/net/udp{,6} for the drops of socks and
// /proc/net/snmp for the namespace-wide UDP errors. A /proc that cannot be
// read leaves those metrics out of the scrape rather than failing it.
func readKernelUDP(socks []*udpSocket) kernelUDP {
	k := kernelUDP{sockets: make(map[uint64]kernelSocket, len(socks))}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return k
	}
	want := make(map[uint64]*udpSocket, len(socks))
	for _, s := range socks {
		want[s.inode] = s
	}
	for _, read := range []func() (procfs.NetUDP, error){fs.NetUDP, fs.NetUDP6} {
		lines, err := read()
		if err != nil {
			continue
		}
		for _, l := range lines {
			s, ok := want[l.Inode]
			if !ok || l.Drops == nil {
				continue
			}
			k.sockets[l.Inode] = kernelSocket{drops: *l.Drops, queued: l.RxQueue}
			s.lastDrops.Store(*l.Drops)
		}
	}
	if self, err := fs.Self(); err == nil {
		if snmp, err := self.Snmp(); err == nil && snmp.Udp.RcvbufErrors != nil && snmp.Udp.InErrors != nil {
			k.rcvbufErrors, k.inErrors, k.snmpOK = uint64(*snmp.Udp.RcvbufErrors), uint64(*snmp.Udp.InErrors), true
		}
	}
	return k
}
