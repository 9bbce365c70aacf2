package victorialogs

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fastjson"

	"github.com/wirelog/wirelog/internal/storage"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/transport"
)

// span is the rows of one partition sent by one Write: offsets lo..hi
// except those in gaps (records the processor did not send: dead letters).
type span struct {
	id         uint64
	lo, hi     int64
	n          int // distinct offsets sent
	gaps       [][2]int64
	minT, maxT time.Time
	sentAt     time.Time
}

// partState is the durability state of one partition.
type partState struct {
	pending  []*span // sent, not yet verified, in offset order
	sentNext int64   // next offset after the last span sent
	known    bool
	// attemptedNext is past every offset this store may have stored for
	// the partition (sent, attempted, or found stored by another processor
	// when it took the partition over); seen says it is known.
	attemptedNext int64
	seen          bool
	// hasHole: rows from hole on were lost and their replay has not been
	// sent yet. Nothing of the partition is verified (so nothing committed)
	// until a span starting at or before hole is sent: rows fetched before
	// the consumer was rewound must not carry the durable offset past it.
	hasHole bool
	hole    int64
}

// tracker implements the commit protocol of docs/ARCHITECTURE.md: what was
// sent, what is verified durable, what was lost.
type tracker struct {
	s *Store

	mu          sync.Mutex
	parts       map[transport.TopicPartition]*partState
	pendingRows int
	nextID      uint64
	durable     map[transport.TopicPartition]int64 // advanced since the last Durable()
}

func newTracker(s *Store) *tracker {
	return &tracker{
		s:       s,
		parts:   make(map[transport.TopicPartition]*partState),
		durable: make(map[transport.TopicPartition]int64),
	}
}

func (t *tracker) part(tp transport.TopicPartition) *partState {
	p := t.parts[tp]
	if p == nil {
		p = &partState{}
		t.parts[tp] = p
	}
	return p
}

// zoneSet says which rows of a batch may already be stored: per partition,
// the rows with offset <= hi, in the replay zone named lo.
type zoneSet map[transport.TopicPartition][2]int64

func (z zoneSet) of(r *store.Row) int64 {
	if zr, ok := z[transport.TopicPartition{Topic: r.Topic, Partition: r.Partition}]; ok && r.Offset <= zr[1] {
		return zr[0]
	}
	return -1
}

// all marks every row (for a retried batch): rows outside a zone get the
// zone named by their partition's first offset in the batch.
func (z zoneSet) all(rows []store.Row) func(*store.Row) int64 {
	first := make(map[transport.TopicPartition]int64)
	for i := range rows {
		tp := transport.TopicPartition{Topic: rows[i].Topic, Partition: rows[i].Partition}
		if _, ok := first[tp]; !ok {
			first[tp] = rows[i].Offset
		}
	}
	return func(r *store.Row) int64 {
		tp := transport.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		if zr, ok := z[tp]; ok {
			return zr[0]
		}
		return first[tp]
	}
}

// zones decides which rows of a batch are possible replays. For a
// partition this store has not written since it started or took it over,
// it asks VictoriaLogs what is stored from the batch's first offset on
// (what the previous owner sent), after making everything sent so far
// searchable.
func (t *tracker) zones(ctx context.Context, s *Store, rows []store.Row) (zoneSet, error) {
	first := make(map[transport.TopicPartition]int64, 4)
	for i := range rows {
		tp := transport.TopicPartition{Topic: rows[i].Topic, Partition: rows[i].Partition}
		if f, ok := first[tp]; !ok || rows[i].Offset < f {
			first[tp] = rows[i].Offset
		}
	}
	z := make(zoneSet)
	var unknown []transport.TopicPartition
	t.mu.Lock()
	for tp, f := range first {
		p := t.parts[tp]
		switch {
		case p == nil || !p.seen:
			unknown = append(unknown, tp)
		case f < p.attemptedNext:
			z[tp] = [2]int64{f, p.attemptedNext - 1}
		}
	}
	t.mu.Unlock()
	if len(unknown) > 0 {
		s.forceFlush(ctx)
	}
	for _, tp := range unknown {
		m, err := s.maxStored(ctx, tp, first[tp])
		if err != nil {
			return nil, fmt.Errorf("find what VictoriaLogs already holds of %s/%d before writing it: %w", tp.Topic, tp.Partition, err)
		}
		t.mu.Lock()
		p := t.part(tp)
		if !p.seen {
			p.seen, p.attemptedNext = true, max(p.attemptedNext, m+1)
		}
		if f := first[tp]; f < p.attemptedNext {
			z[tp] = [2]int64{f, p.attemptedNext - 1}
		}
		t.mu.Unlock()
	}
	return z, nil
}

// attempted records that rows were (maybe) stored.
func (t *tracker) attempted(rows []store.Row) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range rows {
		p := t.part(transport.TopicPartition{Topic: rows[i].Topic, Partition: rows[i].Partition})
		p.seen = true
		p.attemptedNext = max(p.attemptedNext, rows[i].Offset+1)
	}
}

// waitRoom waits while too many rows are unverified.
func (t *tracker) waitRoom(ctx context.Context, n int) error {
	deadline := time.Now().Add(t.s.opts.Timeout)
	for {
		t.mu.Lock()
		room := t.pendingRows == 0 || t.pendingRows+n <= t.s.opts.MaxPendingRows
		pending := t.pendingRows
		t.mu.Unlock()
		if room {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %d rows sent to VictoriaLogs are not verified durable yet (is a storage node down?); not sending more",
				storage.ErrUnavailable, pending)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.s.stop:
			return errClosed
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// sent records rows VictoriaLogs answered 2xx for.
func (t *tracker) sent(rows []store.Row, at time.Time) {
	byTP := make(map[transport.TopicPartition]*span, 4)
	var order []transport.TopicPartition
	for i := range rows {
		r := &rows[i]
		tp := transport.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		sp := byTP[tp]
		if sp == nil {
			sp = &span{lo: r.Offset, hi: r.Offset - 1, minT: r.Event.Time, maxT: r.Event.Time, sentAt: at}
			byTP[tp] = sp
			order = append(order, tp)
		}
		if r.Offset <= sp.hi {
			continue // same offset twice in one batch: counted once
		}
		if r.Offset > sp.hi+1 && sp.n > 0 {
			sp.gaps = append(sp.gaps, [2]int64{sp.hi + 1, r.Offset - 1})
		}
		sp.hi = r.Offset
		sp.n++
		if r.Event.Time.Before(sp.minT) {
			sp.minT = r.Event.Time
		}
		if r.Event.Time.After(sp.maxT) {
			sp.maxT = r.Event.Time
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tp := range order {
		sp := byTP[tp]
		p := t.part(tp)
		if p.hasHole && sp.lo <= p.hole {
			p.hasHole = false // the replay arrived
		}
		if p.known && sp.lo < p.sentNext {
			// A replay (rewind, or the partition came back after a
			// rebalance): what was pending from lo on is sent again now.
			t.truncate(p, sp.lo)
		}
		t.nextID++
		sp.id = t.nextID
		p.pending = append(p.pending, sp)
		p.sentNext, p.known = sp.hi+1, true
		t.pendingRows += sp.n
	}
	t.s.m.rowsPending.Set(float64(t.pendingRows))
}

// truncate forgets every pending offset >= from.
func (t *tracker) truncate(p *partState, from int64) {
	keep := p.pending[:0]
	for _, sp := range p.pending {
		switch {
		case sp.lo >= from:
			t.pendingRows -= sp.n
		case sp.hi >= from:
			before := sp.n
			sp.hi = from - 1
			g := sp.gaps[:0]
			for _, r := range sp.gaps {
				if r[0] <= sp.hi {
					r[1] = min(r[1], sp.hi)
					g = append(g, r)
				}
			}
			sp.gaps = g
			sp.n = int(sp.hi-sp.lo+1) - gapCount(sp.gaps)
			t.pendingRows -= before - sp.n
			keep = append(keep, sp)
		default:
			keep = append(keep, sp)
		}
	}
	clear(p.pending[len(keep):])
	p.pending = keep
	p.sentNext = from
}

func gapCount(gaps [][2]int64) int {
	n := 0
	for _, g := range gaps {
		n += int(g[1] - g[0] + 1)
	}
	return n
}

// check is one verification: the due prefix of a partition's pending spans.
type check struct {
	tp         transport.TopicPartition
	firstID    uint64
	lastID     uint64
	spans      int
	lo, hi     int64
	want       int
	gaps       [][2]int64
	minT, maxT time.Time
}

// due collects the checks whose spans were sent DurableAfter ago.
func (t *tracker) due(now time.Time) []check {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []check
	for tp, p := range t.parts {
		if p.hasHole {
			continue
		}
		var c *check
		for _, sp := range p.pending {
			if now.Sub(sp.sentAt) < t.s.opts.DurableAfter {
				break
			}
			if c == nil {
				c = &check{tp: tp, firstID: sp.id, lo: sp.lo, minT: sp.minT, maxT: sp.maxT}
			} else if sp.lo > c.hi+1 {
				c.gaps = append(c.gaps, [2]int64{c.hi + 1, sp.lo - 1})
			}
			c.lastID, c.hi = sp.id, sp.hi
			c.spans++
			c.want += sp.n
			c.gaps = append(c.gaps, sp.gaps...)
			if sp.minT.Before(c.minT) {
				c.minT = sp.minT
			}
			if sp.maxT.After(c.maxT) {
				c.maxT = sp.maxT
			}
		}
		if c != nil {
			out = append(out, *c)
		}
	}
	return out
}

// settle applies the count a check found.
func (t *tracker) settle(c check, got int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[c.tp]
	if p == nil || len(p.pending) < c.spans || p.pending[0].id != c.firstID || p.pending[c.spans-1].id != c.lastID {
		return // the partition was replayed meanwhile; check again later
	}
	if got >= c.want {
		clear(p.pending[:c.spans])
		p.pending = p.pending[c.spans:]
		t.pendingRows -= c.want
		t.durable[c.tp] = c.hi + 1
		t.s.m.rowsDurable.Add(float64(c.want))
	} else {
		t.s.m.rowsLost.Add(float64(c.want - got))
		t.s.log.Warn("rows sent to VictoriaLogs are missing after the flush window (a node lost unflushed rows); replaying the partition from Kafka",
			"topic", c.tp.Topic, "partition", c.tp.Partition, "from", c.lo, "to", c.hi, "sent", c.want, "found", got)
		t.truncate(p, c.lo)
		p.hasHole, p.hole = true, c.lo
		delete(t.durable, c.tp)
	}
	t.s.m.rowsPending.Set(float64(t.pendingRows))
}

// Durable implements storage.Deferred.
func (s *Store) Durable() map[transport.TopicPartition]int64 {
	t := s.tracker
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.durable) == 0 {
		return nil
	}
	out := t.durable
	t.durable = make(map[transport.TopicPartition]int64)
	return out
}

// Lost implements storage.Deferred: every partition whose lost rows have not
// been sent again yet, each call, so a rewind that did not happen (the
// consumer was busy rebalancing) is asked for again.
func (s *Store) Lost() map[transport.TopicPartition]int64 {
	t := s.tracker
	t.mu.Lock()
	defer t.mu.Unlock()
	var out map[transport.TopicPartition]int64
	for tp, p := range t.parts {
		if p.hasHole {
			if out == nil {
				out = make(map[transport.TopicPartition]int64)
			}
			out[tp] = p.hole
		}
	}
	return out
}

// Forget implements storage.Deferred: the partitions moved to another
// processor, which resumes from the group's committed offset (only ever
// verified rows) and replays the rest; what this store still tracked for
// them (pending rows, a hole) is no longer its business.
func (s *Store) Forget(tps []transport.TopicPartition) {
	t := s.tracker
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tp := range tps {
		if p := t.parts[tp]; p != nil {
			for _, sp := range p.pending {
				t.pendingRows -= sp.n
			}
			delete(t.parts, tp)
		}
		delete(t.durable, tp)
	}
	t.s.m.rowsPending.Set(float64(t.pendingRows))
}

func (s *Store) verifyLoop() {
	defer close(s.done)
	tick := time.NewTicker(s.opts.VerifyInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		s.verifyDue()
	}
}

// verifyDue runs the due checks; a check that fails (a node down) waits
// for the next tick.
func (s *Store) verifyDue() {
	for _, c := range s.tracker.due(time.Now()) {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
		got, doubled, err := s.countSent(ctx, c)
		if err == nil {
			// Before settling: once a row is durable, its duplicates are
			// in a replay zone (dupmark.go), so answers count it once.
			err = s.markDuplicates(ctx, c, doubled)
		}
		cancel()
		if err != nil {
			s.m.verifyErrors.Inc()
			s.log.Warn("cannot verify rows sent to VictoriaLogs yet; their offsets stay uncommitted",
				"topic", c.tp.Topic, "partition", c.tp.Partition, "rows", c.want, "err", err)
			continue
		}
		s.tracker.settle(c, got)
	}
	s.recheckMarks(time.Now())
	s.checkFailed(time.Now())
}

// maxStored is the highest offset of tp stored at or after from, -1 if none
// (a complete answer is required).
func (s *Store) maxStored(ctx context.Context, tp transport.TopicPartition, from int64) (int64, error) {
	q := fmt.Sprintf("%s:=%s %s:=%d %s:>=%d | stats max(%s) as m", fieldTopic, quote(tp.Topic), fieldPartition, tp.Partition, fieldOffset, from, fieldOffset)
	m := int64(-1)
	// A partition's rows are in as many accounts as its tenants map to,
	// and its dead letters in theirs.
	for _, a := range s.writtenAccounts() {
		_, err := s.run(inAccount(ctx, a), "replay_zone", q, false, func(v *fastjson.Value) error {
			if b := v.GetStringBytes("m"); len(b) > 0 {
				n, err := strconv.ParseFloat(string(b), 64)
				if err != nil {
					return fmt.Errorf("max offset %q: %w", b, err)
				}
				m = max(m, int64(n))
			}
			return nil
		})
		if err != nil {
			return m, err
		}
	}
	return m, nil
}

// forceFlush makes rows sent so far searchable (not durable): the front
// node forwards what it buffers and the storage nodes turn pending rows
// into searchable parts. Best effort: a cluster that protects the endpoint
// (-forceFlushAuthKey) only makes the zone lookup see less.
func (s *Store) forceFlush(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base.String()+"/internal/force_flush", nil)
	if err != nil {
		return
	}
	if resp, err := s.opts.Client.Do(req); err == nil {
		resp.Body.Close()
	}
}

// checkFilter selects the rows of c: its partition's offsets lo..hi
// except the gaps, inside the time window of the rows sent.
func checkFilter(c check) string {
	var q strings.Builder
	fmt.Fprintf(&q, "_time:[%s, %s] %s:=%s %s:=%d %s:>=%d %s:<=%d",
		c.minT.Add(-time.Second).UTC().Format(time.RFC3339Nano), c.maxT.Add(time.Second).UTC().Format(time.RFC3339Nano),
		fieldTopic, quote(c.tp.Topic), fieldPartition, c.tp.Partition, fieldOffset, c.lo, fieldOffset, c.hi)
	for _, g := range c.gaps {
		fmt.Fprintf(&q, " -%s:range[%d, %d]", fieldOffset, g[0], g[1])
	}
	return q.String()
}

// countSent counts the distinct sent offsets of c present in the store,
// refusing a partial answer, and names the accounts that hold some of
// them more than once.
func (s *Store) countSent(ctx context.Context, c check) (int, []Account, error) {
	q := checkFilter(c) + " | stats count_uniq(" + fieldOffset + ") as n, count() as c"
	// Each offset is stored in the account of its tenant, so the distinct
	// offsets of the accounts add up (docs/ARCHITECTURE.md: a mapping
	// changed while rows of a partition are unverified is the exception).
	total := 0
	var doubled []Account
	for _, a := range s.writtenAccounts() {
		n, rows := -1, 0
		_, err := s.run(inAccount(ctx, a), "verify", q, false, func(v *fastjson.Value) error {
			var err error
			if n, err = strconv.Atoi(string(v.GetStringBytes("n"))); err != nil {
				return err
			}
			rows, err = strconv.Atoi(string(v.GetStringBytes("c")))
			return err
		})
		if err != nil {
			return 0, nil, err
		}
		if n < 0 {
			return 0, nil, fmt.Errorf("verification query %q answered no row in account %s", q, a)
		}
		total += n
		if rows > n {
			doubled = append(doubled, a)
		}
	}
	return total, doubled, nil
}
