package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wirelog/wirelog/internal/transport"
)

// Handing partitions over to another processor (Kafka consumer-group
// rebalances) in FormatParquet.
//
// A segment store accepts events before they are durable, and the group is
// committed only as far as they are. When a partition moves, its new owner
// resumes at the group's committed offset, so the events this store still
// buffered past it would be stored by both processors. The table format has
// no such window: a batch commits with its offsets in Write, and rebalances
// run only between batches (the consumer blocks them while one is in hand).
// ReleasePartitions gives segments the same state at the same point: every
// event Write accepted is in a committed segment when the revoke commits.
//
// Writing rather than dropping the revoked partitions' buffered events: the
// buffer's rollups are summed across partitions, so dropping one
// partition's events means rebuilding the buffer, and the work already done
// (decode, encode) would be redone by the new owner. Dropping is the
// fallback when the write fails or does not finish in time, and then it
// drops everything unwritten, of every partition: what is left must never
// be written later, since the new owner is about to store it.

// errSegmentDiscarded ends the background write of a segment whose events
// were discarded (DiscardUnwritten) while it was being written.
var errSegmentDiscarded = errors.New("segment discarded: its events are replayed from the log")

// releasePoll is how often ReleasePartitions looks whether the segment
// being written in the background failed (it is then retried a second
// later, which the release does not wait for).
const releasePoll = 10 * time.Millisecond

// ReleasePartitions is called when tps are revoked from this processor,
// before their offsets are committed to the consumer group, while no Write
// runs (the Kafka consumer's Config.Release). In FormatParquet it writes
// every buffered event as a segment, after the one being written in the
// background (waited for within ctx). It returns the next offset durable in
// this store of each of tps it ever stored (others are absent), for the
// caller to commit with the revoke.
//
// On error, everything accepted but not durable, of every partition, was
// discarded (DiscardUnwritten): nothing of it is written later. The caller
// commits the returned offsets only and must replay the partitions it keeps
// from their durable offsets (NextOffset): their next records would
// otherwise leave a gap.
func (s *Store) ReleasePartitions(ctx context.Context, tps []transport.TopicPartition) (map[transport.TopicPartition]int64, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.seg != nil && !s.closed {
		if dropped, err := s.flushForRelease(ctx); err != nil {
			n := dropped + s.discardUnwritten()
			s.opts.Logger.Warn("store: could not write the buffered events before partitions moved to another processor; discarded them (they are replayed from the log, by the new owner or by this processor)",
				"events", n, "err", err)
			return s.durableOf(tps), fmt.Errorf("write buffered events before handing partitions over: %w", err)
		}
	}
	return s.durableOf(tps), nil
}

// DiscardUnwritten drops every event Write accepted that is not in a
// committed segment, of every partition, including the segment being
// written in the background, and returns how many (the Kafka consumer's
// Config.Discard, when partitions were lost: their new owner may already be
// replaying them). The caller replays the partitions it keeps from their
// durable offsets. The table format has nothing unwritten.
func (s *Store) DiscardUnwritten() int {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.seg == nil || s.closed {
		return 0
	}
	n := s.discardUnwritten()
	if n > 0 {
		s.opts.Logger.Warn("store: discarded buffered events of partitions lost to another processor; they are replayed from the log", "events", n)
	}
	return n
}

// flushForRelease waits for the segment being written, within ctx, then
// writes the buffer (the caller holds writeMu). A failed try of the
// background segment is not retried here: it fails the release. When the
// buffer's own write fails, its events are dropped and counted in dropped.
func (s *Store) flushForRelease(ctx context.Context) (dropped int, err error) {
	g := s.seg
	for g.inflight != nil {
		f := g.inflight
		if f.err != nil {
			return 0, fmt.Errorf("the segment being written failed: %w", f.err)
		}
		s.writeMu.Unlock()
		t := time.NewTimer(releasePoll)
		select {
		case <-f.done:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		s.writeMu.Lock()
		if s.closed {
			return 0, nil // Close wrote the buffer, or tried
		}
		if g.inflight == f && ctx.Err() != nil {
			return 0, fmt.Errorf("the segment being written did not finish in time: %w", ctx.Err())
		}
	}
	f := s.seal()
	if f == nil {
		return 0, nil
	}
	// Not ctx: an interrupted COMMIT is an uncertain one; the encode, the
	// long part, does not look at ctx anyway.
	if err := s.writeSealed(context.WithoutCancel(ctx), f, true); err != nil {
		f.b.release()
		return f.b.n, err
	}
	return 0, nil
}

// discardUnwritten is DiscardUnwritten with writeMu held. The segment being
// written gives up before its transaction (writeSealed checks discarded
// under writeMu), so none of its events is committed after this returns.
func (s *Store) discardUnwritten() int {
	g := s.seg
	n := 0
	if f := g.inflight; f != nil && !f.discarded {
		f.discarded = true
		n += f.b.n
	}
	if g.buf != nil {
		n += g.buf.n
		g.buf.release()
		g.buf, g.bufRollups = nil, nil
	}
	// Replayed events are taken again from the durable offsets on.
	clear(g.bufNext)
	return n
}

// durableOf returns the committed next offsets of tps (the caller holds
// writeMu).
func (s *Store) durableOf(tps []transport.TopicPartition) map[transport.TopicPartition]int64 {
	out := make(map[transport.TopicPartition]int64, len(tps))
	for _, tp := range tps {
		if n, ok := s.offsets[offsetKey{tp.Topic, tp.Partition}]; ok {
			out[tp] = n
		}
	}
	return out
}
