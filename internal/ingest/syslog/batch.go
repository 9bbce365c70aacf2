package syslog

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/wirelog/wirelog/internal/event"
	sysparse "github.com/wirelog/wirelog/internal/parse/syslog"
	"github.com/wirelog/wirelog/internal/telemetry"
	"github.com/wirelog/wirelog/internal/transport"
)

// batch collects encoded events for one Produce call. Keys and values live
// in one arena that is reused after every successful Produce, so a steady
// stream allocates nothing per message. Records are cut from the arena only
// when the batch is produced, because appending may move it.
type batch struct {
	arena []byte
	spans []span
	recs  []transport.Record
}

type span struct {
	key, val, end int
	recv          time.Time
}

func (b *batch) len() int { return len(b.spans) }

// add encodes e (event.AppendJSON) with its partition key: the host, or the
// service when the sender named no host.
func (b *batch) add(e *event.Event, recv time.Time) {
	k := len(b.arena)
	key := e.Host
	if key == "" {
		key = e.Service
	}
	b.arena = append(b.arena, key...)
	v := len(b.arena)
	b.arena = event.AppendJSON(b.arena, e)
	b.spans = append(b.spans, span{k, v, len(b.arena), recv})
}

// addRaw appends the raw syslog record of msg, keyed by the sender's address.
func (b *batch) addRaw(key, msg []byte, m *sysparse.RecordMeta) {
	k := len(b.arena)
	b.arena = append(b.arena, key...)
	v := len(b.arena)
	b.arena = sysparse.AppendRecord(b.arena, msg, m)
	b.spans = append(b.spans, span{k, v, len(b.arena), m.Recv})
}

func (b *batch) full(records, bytes int) bool {
	return len(b.spans) >= records || len(b.arena) >= bytes
}

func (b *batch) records(topic string) []transport.Record {
	b.recs = b.recs[:0]
	for _, s := range b.spans {
		r := transport.Record{Topic: topic, Value: b.arena[s.val:s.end:s.end], Timestamp: s.recv}
		if s.val > s.key {
			r.Key = b.arena[s.key:s.val:s.val]
		}
		b.recs = append(b.recs, r)
	}
	return b.recs
}

func (b *batch) reset() {
	b.arena = b.arena[:0]
	b.spans = b.spans[:0]
	clear(b.recs) // drop references into the arena the producer might compare
	b.recs = b.recs[:0]
}

// receiver is the per-socket or per-connection state of a receive loop: a
// parser, one reusable event, the batch being filled and the local
// counters. Full batches go to producer goroutines, so the socket is read
// while the previous batch is being made durable; when every producer is
// busy, handing over the next batch blocks and the socket is not read.
type receiver struct {
	s      *Server
	st     *stats
	parser sysparse.Parser
	// limitAttrs replaces the attributes of a message over --max-attributes.
	limitAttrs []byte
	ev         event.Event
	b          *batch
	l          local
	// peer is the sender's "client.address"/"client.port" JSON members,
	// added to every event's attrs (set per connection, or per datagram).
	peer     []byte
	attrsBuf []byte

	work    chan *batch // full batches; a send blocks while producers and queue are all busy
	free    chan *batch // batches to fill; there is always one once a send completed
	workers sync.WaitGroup
	mu      sync.Mutex
	fatal   error           // the log cannot take these messages at all
	conn    context.Context // the TCP connection's span, while tracing (telemetry.SyslogConn)
}

// newReceiver starts producers goroutines and lets queued full batches
// wait for them. TCP uses one producer and no queue: a connection's
// messages stay in order and flow control starts one batch behind. UDP
// promises no order and has no flow control: several producers, whose
// Produce calls the log group-commits, and a queue that rides out a slow
// fsync instead of leaving the kernel to drop.
func (s *Server) newReceiver(st *stats, producers, queued int) *receiver {
	r := &receiver{s: s, st: st, parser: sysparse.Parser{Location: s.cfg.Location},
		b: &batch{}, work: make(chan *batch, queued), free: make(chan *batch, producers+queued)}
	// One batch being filled, at most producers being produced and queued
	// waiting: a free one is always there once a hand-over completed.
	for i := 0; i < producers+queued; i++ {
		r.free <- &batch{}
	}
	for i := 0; i < producers; i++ {
		r.workers.Add(1)
		go r.producer()
	}
	return r
}

// handle parses one message into the batch. A message the parser could not
// understand is still produced (raw line, attrs.parse_error) and counted.
func (r *receiver) handle(msg []byte, truncated bool, recv time.Time) {
	r.l.messages++
	r.l.bytes += uint64(len(msg))
	if truncated {
		r.l.truncated++
	}
	if err := r.parser.Parse(msg, recv, &r.ev); err != nil {
		if err == sysparse.ErrEmpty {
			r.l.empty++
			return
		}
		r.l.parseErrors[parseReasonIndex(err)]++
	}
	if max := r.s.cfg.MaxAttributes; max > 0 && r.parser.Attributes() > max {
		// Kept, as every syslog message is (UDP has no one to answer), but
		// without the attributes that made it too large to store well.
		r.l.parseErrors[limitReason]++
		r.limitAttrs = sysparse.AppendLimitError(r.limitAttrs[:0], r.parser.Attributes(), max)
		r.ev.Attrs = r.limitAttrs
	}
	if len(r.peer) > 0 {
		r.attrsBuf = event.WithMembers(r.attrsBuf, r.ev.Attrs, r.peer)
		r.ev.Attrs = r.attrsBuf
	}
	r.b.add(&r.ev, recv)
}

// handleRaw adds one datagram as a raw record (--syslog-udp-raw): no
// parsing here, the processor does it. Parse errors are then counted by the
// processor, not in wirelog_syslog_parse_errors_total.
func (r *receiver) handleRaw(msg []byte, truncated bool, m *sysparse.RecordMeta, key []byte) {
	r.l.messages++
	r.l.bytes += uint64(len(msg))
	m.Flags = 0
	if truncated {
		r.l.truncated++
		m.Flags = sysparse.RecordFlagTruncated
	}
	if sysparse.IsEmpty(msg) {
		r.l.empty++
		return
	}
	r.b.addRaw(key, msg, m)
}

func (r *receiver) full() bool { return r.b.full(r.s.cfg.BatchRecords, r.s.cfg.BatchBytes) }

// flush hands the batch to a producer goroutine, waiting while all of them
// are busy. It returns the error that makes further reading pointless (the
// producer is closed, or Close's drain deadline passed).
func (r *receiver) flush() error {
	r.st.add(&r.l)
	if r.b.len() > 0 {
		r.work <- r.b
		r.b = <-r.free
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fatal
}

// offer hands the batch over if a producer (or queue slot) is free right
// now, and reports whether a batch is still pending because none was.
func (r *receiver) offer() (pending bool, err error) {
	r.st.add(&r.l)
	if r.b.len() > 0 {
		select {
		case r.work <- r.b:
			r.b = <-r.free
		default:
			pending = true
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return pending, r.fatal
}

// close flushes and waits until every batch handed over is durable (or
// given up on).
func (r *receiver) close() error {
	err := r.flush()
	close(r.work)
	r.workers.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fatal != nil {
		return r.fatal
	}
	return err
}

func (r *receiver) producer() {
	defer r.workers.Done()
	for b := range r.work {
		if err := r.produce(b); err != nil {
			r.mu.Lock()
			if r.fatal == nil {
				r.fatal = err
			}
			r.mu.Unlock()
		}
		b.reset()
		r.free <- b
	}
}

// produce makes b durable, holding it and retrying while the log pushes
// back. It fails only when the messages cannot be produced at all.
func (r *receiver) produce(b *batch) error {
	s := r.s
	recs := b.records(s.cfg.Topic)
	n := uint64(len(recs))
	ctx, end := telemetry.SyslogBatch(s.produceCtx, r.conn, len(recs))
	defer end()
	backoff := retryMin
	warned := false
	for {
		err := s.producer.Produce(ctx, recs)
		if err == nil {
			r.st.accepted.Add(n)
			return nil
		}
		if errors.Is(err, transport.ErrClosed) {
			r.st.rejected[rejectClosed].Add(n)
			return err
		}
		if s.produceCtx.Err() != nil {
			r.st.rejected[rejectShutdown].Add(n)
			return err
		}
		r.st.backpressure.Add(1)
		if !warned && !errors.Is(err, transport.ErrBackpressure) && !errors.Is(err, transport.ErrUnavailable) {
			s.cfg.Logger.Warn("syslog: produce failed, holding the batch and retrying", "records", n, "err", err)
			warned = true
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-s.produceCtx.Done():
			t.Stop()
		}
		backoff = min(backoff*2, retryMax)
	}
}

// errShutdown ends a TCP connection's reads when Close has begun.
var errShutdown = errors.New("syslog: server closing")
