package process

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/storage"
	"github.com/wirelog/wirelog/internal/store"
)

// DefaultMaxWriteTries is how many times a batch is written whole before
// it is split to find the records the store cannot take.
const DefaultMaxWriteTries = 3

// DefaultMaxBatch is Options.MaxBatch: large enough that DuckDB's per-
// transaction cost is spread thin (docs/bench/store.md), small enough that a
// batch's rows stay a few MB in memory.
const DefaultMaxBatch = 20000

// DeadLetterStore is the store's dead-letter table (*store.Store has it):
// records it cannot write go there, with the offsets, so the rest proceed.
type DeadLetterStore interface {
	WriteDeadLetters(ctx context.Context, dls []store.DeadLetter) error
}

// transientStoreError reports errors that say nothing about the records:
// the store is closed, or its disk is full or failing. A batch failing so
// is retried whole until the condition passes, never split and dead-lettered.
func transientStoreError(err error) bool {
	if errors.Is(err, store.ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, storage.ErrUnavailable) { // a store that cannot be reached (VictoriaLogs down, 5xx)
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"no space left", "disk full", "i/o error", "io error", "read-only file system", "permission denied"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// storeRows writes rows (raws[i] is the record rows[i] was decoded from)
// until they are stored: whole first; after MaxWriteTries failures that
// are not transient, split in halves until the failing records are alone,
// which go to the dead-letter table with the store's error. It returns how
// many rows were stored and which were dead-lettered, and an error only
// when ctx ends first. While it cannot make progress, Stuck says why.
func (p *Processor) storeRows(ctx context.Context, rows []store.Row, raws [][]byte) (stored int, dead []bool, err error) {
	wctx := context.WithoutCancel(ctx)
	for tries := 1; ; tries++ {
		n, err := p.store.Write(wctx, rows)
		if err == nil {
			p.setStuck(nil)
			return n, nil, nil
		}
		p.m.errors.WithLabelValues("store").Inc()
		dls, canSplit := p.store.(DeadLetterStore)
		if tries >= p.opts.MaxWriteTries {
			p.setStuck(fmt.Errorf("store write of a batch of %d records failed %d times: %w", len(rows), tries, err))
			if canSplit && !transientStoreError(err) {
				dead = make([]bool, len(rows))
				n, serr := p.split(wctx, dls, rows, raws, dead, err)
				if serr == nil {
					p.setStuck(nil)
					return n, dead, nil
				}
				err = serr
			}
		}
		p.opts.Logger.Error("store write failed; retrying the batch", "records", len(rows), "try", tries, "err", err)
		if !sleep(ctx, p.opts.RetryDelay) {
			return 0, nil, fmt.Errorf("store write failed at shutdown, batch will be replayed on restart: %w", err)
		}
	}
}

// split stores rows in halves, recursively; a single row that still fails
// is dead-lettered with cause. It fails only when a dead letter cannot be
// written (then the store itself is failing and the batch is retried).
func (p *Processor) split(ctx context.Context, dls DeadLetterStore, rows []store.Row, raws [][]byte, dead []bool, cause error) (int, error) {
	if len(rows) == 1 {
		r := &rows[0]
		raw := raws[0]
		if event.IsBinaryRecord(raw) {
			// The table is read by operators: keep the event as its JSON
			// record, which says the same, rather than the binary form.
			raw = event.AppendJSON(nil, &r.Event)
		}
		dl := store.DeadLetter{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Time: r.Event.Time,
			Reason: cause.Error(), Raw: raw}
		if err := dls.WriteDeadLetters(ctx, []store.DeadLetter{dl}); err != nil {
			return 0, fmt.Errorf("dead-letter %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		dead[0] = true
		p.m.poisoned.Inc()
		p.opts.Logger.Error("the store refused one record; it is in the dead_letters table and the batch goes on",
			"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "bytes", len(raws[0]), "err", cause)
		return 0, nil
	}
	mid := len(rows) / 2
	total := 0
	for _, h := range [2][2]int{{0, mid}, {mid, len(rows)}} {
		part := rows[h[0]:h[1]]
		n, err := p.store.Write(ctx, part)
		if err != nil {
			if transientStoreError(err) {
				return total, err
			}
			n, err = p.split(ctx, dls, part, raws[h[0]:h[1]], dead[h[0]:h[1]], err)
			if err != nil {
				return total, err
			}
		}
		total += n
	}
	return total, nil
}

// Stuck returns why the processor cannot store its current batch, or nil;
// /readyz answers 503 with it.
func (p *Processor) Stuck() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stuck
}

func (p *Processor) setStuck(err error) {
	p.mu.Lock()
	p.stuck = err
	p.mu.Unlock()
}
