package netlab

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wirelog/wirelog/internal/ingest/syslog"
	"github.com/wirelog/wirelog/internal/transport"
)

// Receivers a version-1 report may name in Config.Receiver.
const (
	ReceiverSyslog = "syslog"
	ReceiverBare   = "bare"
)

// rxMeter is what a step needs from a receiver.
type rxMeter interface {
	begin(step uint16) *stepStats
	end()
	// cpu is the receiver's CPU time so far; senderCPU is subtracted when
	// the receiver shares its process accounting with the generator.
	cpu(senderCPU time.Duration) (time.Duration, error)
	Stop()
	describe() string
}

func (r *receiver) cpu(time.Duration) (time.Duration, error) { return r.threadCPU() }
func (r *receiver) describe() string {
	return "bare recvmmsg receiver (internal/netlab), 1 socket, thread pinned to the receive core"
}

// countingProducer stands in for the durable log behind the syslog
// receiver: it finds the lab marker in each encoded event and counts it.
type countingProducer struct {
	cur   atomic.Pointer[stepStats]
	stale atomic.Uint64
}

func (p *countingProducer) Produce(_ context.Context, recs []transport.Record) error {
	now := nowNS()
	st := p.cur.Load()
	var got, bytesIn, stale uint64
	for i := range recs {
		seq, sent, ok := findMarker(recs[i].Value)
		if !ok || st == nil || uint16(seq>>stepShift) != st.step {
			stale++
			continue
		}
		got++
		bytesIn += uint64(len(recs[i].Value))
		st.hist.add(since(sent, now))
		// The record's timestamp is when wirelog's receiver read the
		// datagram (time.Now, monotonic reading included), so it splits
		// the latency into the path's and the batching's.
		if ts := recs[i].Timestamp; !ts.IsZero() {
			read := uint64(max(ts.Sub(epoch), 0))
			st.recvHist.add(since(sent, read))
			st.batchHist.add(since(read, now))
		}
	}
	if st != nil && got > 0 {
		st.received.Add(got)
		st.bytes.Add(bytesIn)
	}
	p.stale.Add(stale)
	return nil
}

func (p *countingProducer) Ready(context.Context) error { return nil }
func (p *countingProducer) Close() error                { return nil }

// since is b − a in ns, 0 when the clocks' order says otherwise.
func since(a, b uint64) uint64 {
	if b > a {
		return b - a
	}
	return 0
}

// findMarker finds "S<16 hex>T<16 hex>" (the lab payload's sequence and
// send time) anywhere in b: the syslog receiver's record puts the payload
// after a header (a raw UDP record) or re-encodes it as JSON, so the
// offsets of the raw payload no longer hold.
func findMarker(b []byte) (seq, sent uint64, ok bool) {
	for off := 0; off+34 <= len(b); {
		i := bytes.IndexByte(b[off:], 'S')
		if i < 0 || off+i+34 > len(b) {
			return 0, 0, false
		}
		j := off + i
		if b[j+17] == 'T' {
			s, ok1 := parseHex16(b[j+1:])
			t, ok2 := parseHex16(b[j+18:])
			if ok1 && ok2 {
				return s, t, true
			}
		}
		off = j + 1
	}
	return 0, 0, false
}

// syslogReceiver runs wirelog's syslog server in the pod namespace.
type syslogReceiver struct {
	srv  *syslog.Server
	prod *countingProducer
	xdp  string
}

// startSyslogReceiver starts the syslog server with its UDP socket bound
// inside ns (a socket belongs to the namespace of the thread that creates
// it, wherever its goroutines later run) and TCP off. With xdpIface set the
// port is received through AF_XDP on that interface (--syslog-xdp), as a
// production ingest pod on a VF would.
func startSyslogReceiver(ns netns.NsHandle, port int, xdpIface string) (*syslogReceiver, error) {
	r := &syslogReceiver{prod: &countingProducer{}, xdp: xdpIface}
	cfg := syslog.DefaultConfig()
	cfg.UDPAddr = fmt.Sprintf("0.0.0.0:%d", port)
	cfg.TCPAddr = ""
	cfg.XDP = xdpIface
	cfg.UDPSockets = 1 // one receive core
	cfg.RcvBuf = DefaultRcvBuf
	cfg.Logger = slog.New(slog.DiscardHandler)
	err := inNamespace(ns, func() error {
		var err error
		r.srv, err = syslog.Start(context.Background(), r.prod, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("start wirelog's syslog receiver in the pod namespace: %w", err)
	}
	return r, nil
}

func (r *syslogReceiver) begin(step uint16) *stepStats {
	st := &stepStats{step: step}
	r.prod.cur.Store(st)
	return st
}

func (r *syslogReceiver) end() { r.prod.cur.Store(nil) }

func (r *syslogReceiver) Stop() { r.srv.Close() }

// cpu is the whole process's CPU time less the generator's: the syslog
// server's goroutines move between threads, so no single thread holds it.
// It includes the Go runtime's work for the receiver (GC, scheduler) and
// the lab's own small bookkeeping.
func (r *syslogReceiver) cpu(senderCPU time.Duration) (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	total := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return total - senderCPU, nil
}

func (r *syslogReceiver) describe() string {
	if r.xdp != "" {
		return "wirelog syslog ingest through AF_XDP (--syslog-xdp " + r.xdp + ": RFC 5424 parse, event encode, batch) into a counting producer"
	}
	return "wirelog syslog UDP ingest (internal/ingest/syslog: recvmmsg, RFC 5424 parse, event encode, batch) into a counting producer, 1 socket"
}
