// Package process is wirelog's processor: it consumes log records, decodes
// them into events, stores events and rollups, then commits offsets.
//
// Exactly-once: the store advances each partition's next offset in the same
// transaction as the rows (store.Write), and the consumer resumes from those
// offsets (store.NextOffset is its transport.OffsetSource). A replay after a
// crash re-reads records the store already holds and skips them, so nothing is
// lost and nothing is counted twice. The commit to the log afterwards only
// lets the log apply retention and show lag; it is not what exactly-once rests on.
package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fastjson"

	"github.com/wirelog/wirelog/internal/event"
	sysparse "github.com/wirelog/wirelog/internal/parse/syslog"
	"github.com/wirelog/wirelog/internal/storage"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/telemetry"
	"github.com/wirelog/wirelog/internal/transport"
)

// Options configure a Processor. Zero values mean the defaults.
type Options struct {
	// MaxBatch is the most records stored in one transaction. Larger batches
	// amortise the transaction; smaller ones lower end-to-end latency.
	// Default 20000.
	MaxBatch int
	// OnStored, when set, receives every stored batch (for live tail). It
	// must not keep the slice.
	OnStored func([]event.Event)
	// RetryDelay is the pause after a failed store write before the batch is
	// retried. Default 1s.
	RetryDelay time.Duration
	// MaxWriteTries is how many times a batch is written whole before it
	// is split to dead-letter the records the store refuses (when the store
	// has a dead-letter table). Default DefaultMaxWriteTries.
	MaxWriteTries int
	// DeadLetter, when set, receives records that cannot be decoded (Kafka's
	// dead-letter topic). Without it, or when it fails, such a record is
	// stored as an error event that says what was wrong, so it is never
	// dropped unseen.
	DeadLetter DeadLetterer
	// DurableCommitInterval is how often the offsets a storage.Deferred
	// store proved durable are committed to the log when no segment
	// registration prompts it sooner. Default DurableCommitInterval.
	DurableCommitInterval time.Duration
	// Logger receives the processor's warnings (failed polls, writes,
	// commits); nil means slog.Default().
	Logger *slog.Logger
}

// DeadLetterer sends a record the processor cannot handle aside, with the
// cause, so processing continues.
type DeadLetterer interface {
	SendToDLQ(ctx context.Context, rec transport.Record, cause error) error
}

// Store is what the processor needs of the store. A store that also
// implements storage.Deferred (VictoriaLogs) is durable only later: the
// processor then commits the offsets it reports durable, every
// DurableCommitInterval, instead of each batch's, and rewinds the consumer
// (Rewinder) to replay what it reports lost.
type Store interface {
	Write(ctx context.Context, rows []store.Row) (int, error)
}

// Checkpointer is implemented by a store that folds its write-ahead log
// into its files (DuckDB). The processor starts a checkpoint between batches,
// when CheckpointDue says so, instead of leaving it to the commit of
// whichever batch crosses the WAL threshold (docs/bench/store.md: that
// stalled one write for 2-4 s every ~25 s). The DuckDB store switches writes
// to its twin file and checkpoints the other in the background, so
// Checkpoint returns at once.
type Checkpointer interface {
	CheckpointDue() bool
	Checkpoint(ctx context.Context) error
}

// Rewinder is implemented by consumers that can seek partitions back (Kafka).
type Rewinder interface {
	Rewind(next map[transport.TopicPartition]int64)
}

// DurableCommitInterval is how often offsets a storage.Deferred store
// reports durable are committed to the log.
const DurableCommitInterval = time.Second

// Processor moves records from a Consumer into a Store.
type Processor struct {
	cons  transport.Consumer
	store Store
	opts  Options
	m     metrics

	commitMu    sync.Mutex
	uncommitted map[transport.TopicPartition]int64 // durable, not yet committed (deferred stores)

	mu     sync.Mutex
	fresh  *freshness // set by Run for a store that reports when rows become queryable
	stuck  error      // why the batch in hand cannot be stored, while it cannot
	paused bool
	resume chan struct{}
}

// New returns a processor reading cons and writing st.
func New(cons transport.Consumer, st Store, opts Options) *Processor {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = time.Second
	}
	if opts.MaxWriteTries <= 0 {
		opts.MaxWriteTries = DefaultMaxWriteTries
	}
	if opts.DurableCommitInterval <= 0 {
		opts.DurableCommitInterval = DurableCommitInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}

	return &Processor{cons: cons, store: st, opts: opts, m: newMetrics(), resume: make(chan struct{})}
}

// Collector exports the processor's metrics.
func (p *Processor) Collector() prometheus.Collector { return p.m.set() }

// Pause stops the processor after its current batch, as an operator does
// during store maintenance; the log keeps accepting writes until its bound.
func (p *Processor) Pause() {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
	p.m.paused.Set(1)
}

// Resume undoes Pause.
func (p *Processor) Resume() {
	p.mu.Lock()
	if p.paused {
		p.paused = false
		close(p.resume)
		p.resume = make(chan struct{})
	}
	p.mu.Unlock()
	p.m.paused.Set(0)
}

// Forget drops what the processor tracks for partitions it no longer owns
// (revoked or lost in a rebalance): their records' freshness is measured by
// their new owner.
func (p *Processor) Forget(tps []transport.TopicPartition) {
	p.mu.Lock()
	f := p.fresh
	p.mu.Unlock()
	if f != nil {
		f.forget(tps)
	}
}

// Paused reports whether the processor is paused.
func (p *Processor) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}

func (p *Processor) waitIfPaused(ctx context.Context) error {
	p.mu.Lock()
	paused, ch := p.paused, p.resume
	p.mu.Unlock()
	if !paused {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run processes until ctx is done. It returns nil on cancellation after the
// batch in hand is stored and committed, so SIGTERM loses nothing.
func (p *Processor) Run(ctx context.Context) error {
	var (
		parser fastjson.Parser
		rawDec sysparse.RecordDecoder // raw syslog records (--syslog-udp-raw)
		rows   []store.Row
		raws   [][]byte
		events []event.Event
	)
	deferred, _ := storage.AsDeferred(p.store)
	// A store that makes rows queryable after Write returns says when; the
	// freshness histogram is observed then, not at Write (freshness.go).
	var fresh *freshness
	// segmentDone is kicked when a segment is registered, so its offsets
	// are committed to the log at once instead of at the next tick: a
	// processor that dies then leaves its partitions' next owner nothing
	// already stored to store again.
	segmentDone := make(chan struct{}, 1)
	if qn, ok := p.store.(QueryableNotifier); ok && deferred != nil {
		fresh = newFreshness(p.m.ingestToStored)
		p.mu.Lock()
		p.fresh = fresh
		p.mu.Unlock()
		qn.OnQueryable(func(next map[transport.TopicPartition]int64) {
			fresh.queryable(next)
			select {
			case segmentDone <- struct{}{}:
			default:
			}
		})
	}
	if deferred != nil {
		done := make(chan struct{})
		defer func() { close(done); p.commitDurable(context.WithoutCancel(ctx), deferred) }()
		go func() {
			t := time.NewTicker(p.opts.DurableCommitInterval)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
				case <-segmentDone:
				}
				p.commitDurable(context.WithoutCancel(ctx), deferred)
			}
		}()
	}
	for {
		// Stop consuming once asked to: a consumer with a backlog hands out
		// records even to a cancelled Poll, and storing the whole backlog
		// made a SIGTERM take minutes. What is left stays in the log and is
		// stored after the restart (the store's offsets say where to resume).
		if ctx.Err() != nil {
			return nil
		}
		if err := p.waitIfPaused(ctx); err != nil {
			return nil
		}
		recs, err := p.cons.Poll(ctx, p.opts.MaxBatch)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, transport.ErrClosed) {
				return nil
			}
			p.m.errors.WithLabelValues("poll").Inc()
			p.opts.Logger.Warn("poll failed; retrying", "err", err)
			if !sleep(ctx, p.opts.RetryDelay) {
				return nil
			}
			continue
		}
		if len(recs) == 0 {
			p.checkpointIfDue(ctx)
			continue
		}
		span := telemetry.StartBatch(ctx, recs) // nil while tracing is off
		// A fresh arena per batch: the strings of this batch's events must
		// stay valid while the store and tail subscribers use them.
		var arena event.Arena
		size := 0
		for i := range recs {
			size += len(recs[i].Value)
		}
		// Decoded strings take about the records' bytes (a little more for
		// a syslog record's attributes; the arena grows past a hint).
		arena.Reserve(size + size/8)
		rows, raws = rows[:0], raws[:0]
		for i := range recs {
			r := &recs[i]
			row := store.Row{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Bytes: len(r.Value)}
			var err error
			// The first bytes tell the record formats apart: a binary
			// event record (HTTP ingest), a raw syslog datagram, or JSON.
			switch {
			case event.IsBinaryRecord(r.Value):
				// Bytes: the JSON record's size, so rollups do not change
				// with the record format.
				var size int
				if size, err = event.DecodeBinaryRecord(r.Value, &arena, &row.Event); err == nil {
					row.Bytes = size
				}
			case sysparse.IsRecord(r.Value):
				var perr error
				if perr, err = rawDec.Decode(r.Value, &arena, &row.Event); perr != nil {
					p.m.syslogParse.WithLabelValues(sysparse.Reason(perr)).Inc()
				}
			default:
				err = event.DecodeRecord(&parser, r.Value, &arena, &row.Event)
			}
			if err != nil {
				p.m.errors.WithLabelValues("decode").Inc()
				if p.opts.DeadLetter != nil {
					if dlErr := p.opts.DeadLetter.SendToDLQ(context.WithoutCancel(ctx), *r, err); dlErr == nil {
						p.m.deadLettered.Inc()
						continue
					} else {
						p.opts.Logger.Warn("dead-letter send failed; storing the record as an error event", "err", dlErr)
					}
				}
				// Keep the record as an event that says what was wrong, so
				// the offset advances and nothing disappears unseen.
				row.Event = undecodable(r, err)
			}
			rows = append(rows, row)
			raws = append(raws, r.Value)
		}
		// The batch is retried until stored: the records are not lost by
		// moving on, and the consumer must not run ahead of the store. A
		// record the store refuses for itself is dead-lettered (poison.go).
		if fresh != nil {
			// Before Write: the store may make them queryable before it returns.
			fresh.written(recs, span.Exemplar())
		}
		start := time.Now()
		span.Phase(telemetry.PhaseStore)
		n, dead, err := p.storeRows(ctx, rows, raws)
		if err != nil {
			span.Error(err)
			span.End(len(rows))
			return err
		}
		p.m.stored.Add(float64(n))
		p.m.skipped.Add(float64(len(rows) - n - countTrue(dead)))
		span.Observe(p.m.batchSeconds, time.Since(start).Seconds())
		p.m.batchRecords.Observe(float64(len(rows)))
		// Freshness: from the record's log timestamp (its arrival at
		// ingest, just before its sender's acknowledgement) to queryable.
		stored := time.Now()
		for i := 0; fresh == nil && i < len(recs); i++ {
			if ts := recs[i].Timestamp; !ts.IsZero() {
				span.Observe(p.m.ingestToStored, stored.Sub(ts).Seconds())
			}
		}
		next := make(map[transport.TopicPartition]int64, 1)
		for i := 0; deferred == nil && i < len(recs); i++ {
			tp := transport.TopicPartition{Topic: recs[i].Topic, Partition: recs[i].Partition}
			if o := recs[i].Offset + 1; o > next[tp] {
				next[tp] = o
			}
		}
		span.Phase(telemetry.PhaseCommit)
		if len(next) == 0 {
			// A deferred store's offsets are committed by commitDurable.
		} else if err := p.cons.Commit(context.WithoutCancel(ctx), next); err != nil {
			// Advisory: the store already holds the offsets.
			p.m.errors.WithLabelValues("commit").Inc()
			p.opts.Logger.Warn("offset commit to the log failed (store offsets are authoritative)", "err", err)
		}
		span.End(len(rows))
		if p.opts.OnStored != nil {
			events = events[:0]
			for i := range rows {
				if dead == nil || !dead[i] {
					events = append(events, rows[i].Event)
				}
			}
			p.opts.OnStored(events)
		}
		// Drop every reference to this batch's records and arena before the
		// next Poll: the slices are reused, and a stale element would keep
		// the batch's read buffer and decoded strings (~8 MB at 20,000
		// events) live through the next batch, doubled by GOGC in RSS.
		clear(rows)
		clear(raws)
		clear(events)
		p.checkpointIfDue(ctx)
	}
}

// checkpointIfDue starts the store's checkpoint after a batch is stored,
// committed and handed to tail, when nothing is in hand. A failure is logged
// and counted; the store's own WAL threshold remains the backstop.
func (p *Processor) checkpointIfDue(ctx context.Context) {
	c, ok := p.store.(Checkpointer)
	if !ok || !c.CheckpointDue() {
		return
	}
	if err := c.Checkpoint(context.WithoutCancel(ctx)); err != nil {
		p.m.errors.WithLabelValues("checkpoint").Inc()
		p.opts.Logger.Warn("store checkpoint failed; retrying after the next batch", "err", err)
	}
}

func countTrue(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

// commitDurable commits what a deferred store proved durable, and rewinds
// the partitions whose sent rows it lost, so they are replayed.
func (p *Processor) commitDurable(ctx context.Context, d storage.Deferred) {
	if lost := d.Lost(); len(lost) > 0 {
		p.m.errors.WithLabelValues("store_lost").Inc()
		if r, ok := p.cons.(Rewinder); ok {
			r.Rewind(lost)
		} else {
			p.opts.Logger.Error("the store lost rows it had accepted and this log cannot rewind; they are replayed only after a restart", "offsets", lost)
		}
	}
	p.commitMu.Lock()
	defer p.commitMu.Unlock()
	for tp, o := range d.Durable() {
		if p.uncommitted == nil {
			p.uncommitted = make(map[transport.TopicPartition]int64)
		}
		p.uncommitted[tp] = o
	}
	if len(p.uncommitted) == 0 {
		return
	}
	if err := p.cons.Commit(ctx, p.uncommitted); err != nil {
		p.m.errors.WithLabelValues("commit").Inc()
		p.opts.Logger.Warn("committing durable offsets to the log failed; retrying in a second", "err", err)
		return
	}
	clear(p.uncommitted)
}

func undecodable(r *transport.Record, err error) event.Event {
	raw := r.Value
	if len(raw) > 4096 {
		raw = raw[:4096]
	}
	attrs := []byte(`{"decode_error":`)
	attrs = event.AppendString(attrs, err.Error())
	attrs = append(attrs, `,"raw":`...)
	attrs = event.AppendString(attrs, string(raw))
	attrs = append(attrs, '}')
	ts := r.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	return event.Event{
		Time:    ts.UTC(),
		Service: "wirelog",
		Level:   event.LevelError,
		Message: fmt.Sprintf("undecodable record at %s/%d offset %d", r.Topic, r.Partition, r.Offset),
		Attrs:   attrs,
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
