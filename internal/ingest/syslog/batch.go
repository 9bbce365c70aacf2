package syslog

import (
	"errors"
	"time"

	"github.com/wirelog/wirelog/internal/event"
	sysparse "github.com/wirelog/wirelog/internal/parse/syslog"
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
// parser, one reusable event, the batch and the local counters.
type receiver struct {
	s      *Server
	st     *stats
	parser sysparse.Parser
	ev     event.Event
	b      batch
	l      local
}

func (s *Server) newReceiver(st *stats) *receiver {
	return &receiver{s: s, st: st, parser: sysparse.Parser{Location: s.cfg.Location}}
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
	r.b.add(&r.ev, recv)
}

func (r *receiver) full() bool { return r.b.full(r.s.cfg.BatchRecords, r.s.cfg.BatchBytes) }

// flush produces the batch, holding it and retrying while the log pushes
// back. It returns an error only when the messages cannot be produced at
// all: the producer is closed, or Close's drain deadline passed.
func (r *receiver) flush() error {
	r.st.add(&r.l)
	if r.b.len() == 0 {
		return nil
	}
	s := r.s
	recs := r.b.records(s.cfg.Topic)
	n := uint64(len(recs))
	defer r.b.reset()
	backoff := retryMin
	warned := false
	for {
		err := s.producer.Produce(s.produceCtx, recs)
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
