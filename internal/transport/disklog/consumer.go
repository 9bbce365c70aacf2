package disklog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/wirelog/wirelog/internal/transport"
)

// Consumer returns a consumer of the log's topic for group. It reads every
// partition; the embedded log serves one open consumer per group. On its
// first Poll it asks src where to resume each partition; when src is nil or
// does not know, it resumes at the group's offset committed in the log, and
// failing that at the earliest retained offset.
//
// Records returned by Poll alias a buffer the log never reuses, so they stay
// valid after the next Poll.
func (l *Log) Consumer(group string, src transport.OffsetSource) transport.Consumer {
	return &consumer{l: l, group: group, src: src, closeCh: make(chan struct{}), avgRecord: 512, rewindCh: make(chan struct{}, 1)}
}

type consumer struct {
	l       *Log
	group   string
	src     transport.OffsetSource
	closeCh chan struct{}
	closed  atomic.Bool
	once    sync.Once

	mu        sync.Mutex // serialises Poll
	started   bool
	cur       []cursor
	rr        int     // partition to read first on the next Poll
	avgRecord float64 // encoded bytes per record, to size reads

	// rewind holds seeks asked by Rewind, applied by the next Poll (which
	// rewindCh wakes when it is waiting for records).
	rewindMu sync.Mutex
	rewind   map[int32]int64
	rewindCh chan struct{}
}

// Rewind seeks partitions back to the given next offsets, dropping nothing
// already returned: the next Poll reads from there again. A store whose
// writes become durable later (VictoriaLogs) asks for it when rows it had
// sent were lost; the records are still in the log, as the group's
// committed offset, which retention keeps, is never past them.
func (c *consumer) Rewind(next map[transport.TopicPartition]int64) {
	c.rewindMu.Lock()
	for tp, o := range next {
		if tp.Topic != c.l.opts.Topic || tp.Partition < 0 || int(tp.Partition) >= len(c.l.parts) {
			continue
		}
		if c.rewind == nil {
			c.rewind = make(map[int32]int64)
		}
		if cur, ok := c.rewind[tp.Partition]; !ok || o < cur {
			c.rewind[tp.Partition] = o
		}
	}
	c.rewindMu.Unlock()
	select {
	case c.rewindCh <- struct{}{}:
	default:
	}
}

// applyRewind moves the cursors Rewind asked for; called by Poll.
func (c *consumer) applyRewind() {
	c.rewindMu.Lock()
	defer c.rewindMu.Unlock()
	for p, o := range c.rewind {
		if o < c.cur[p].next {
			c.l.log.Warn("consumer rewinds to replay records the store lost", "group", c.group, "partition", p, "from", c.cur[p].next, "to", o)
			c.cur[p] = cursor{next: o}
		}
	}
	clear(c.rewind)
}

// cursor is a consumer's position in one partition.
type cursor struct {
	seg  *segment // nil: find the segment holding next
	pos  int64    // byte position in seg of the batch holding next
	next int64    // next offset to return
}

func (c *consumer) start(ctx context.Context) error {
	l := c.l
	if c.group == "" {
		return errors.New("disklog: consumer group name is empty")
	}
	starts := make([]int64, len(l.parts))
	for i, p := range l.parts {
		tp := transport.TopicPartition{Topic: l.opts.Topic, Partition: int32(i)}
		var next int64
		ok := false
		if c.src != nil {
			var err error
			next, ok, err = c.src(ctx, tp)
			if err != nil {
				return fmt.Errorf("disklog: ask the offset source where group %q resumes %s[%d]: %w", c.group, tp.Topic, i, err)
			}
		}
		if !ok {
			next, ok = l.groupOffset(c.group, i)
		}
		p.mu.RLock()
		earliest, hw := p.hw, p.hw
		if len(p.segs) > 0 {
			earliest = p.segs[0].base
		}
		p.mu.RUnlock()
		if !ok {
			next = earliest
		}
		if next > hw {
			return fmt.Errorf("disklog: group %q resumes %s[%d] at offset %d but the log in %s ends at %d: the log directory was replaced or lost its tail; restore it or reset the group's offsets", c.group, tp.Topic, i, next, l.dir, hw)
		}
		if next < earliest {
			l.log.Warn("consumer resumes below the earliest retained offset; records in between are gone",
				"group", c.group, "partition", i, "wanted", next, "earliest", earliest)
			next = earliest
		}
		starts[i] = next
	}

	l.gmu.Lock()
	g := l.groups[c.group]
	if g == nil {
		g = l.newGroup(c.group)
		l.groups[c.group] = g
	}
	if g.active {
		l.gmu.Unlock()
		return fmt.Errorf("disklog: consumer group %q already has an open consumer; the embedded log serves one consumer per group", c.group)
	}
	g.active = true
	copy(g.floor, starts)
	l.gmu.Unlock()

	c.cur = make([]cursor, len(l.parts))
	for i := range c.cur {
		c.cur[i].next = starts[i]
	}
	c.started = true
	l.updateBacklog()
	return nil
}

// Poll blocks until records are available, ctx is done or the consumer or
// log is closed, and returns at most max records.
func (c *consumer) Poll(ctx context.Context, maxRecs int) ([]transport.Record, error) {
	if maxRecs <= 0 {
		return nil, fmt.Errorf("disklog: Poll max must be positive, got %d", maxRecs)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return nil, transport.ErrClosed
	}
	if !c.started {
		if err := c.start(ctx); err != nil {
			return nil, err
		}
	}
	for {
		select {
		case <-c.l.closing:
			return nil, transport.ErrClosed
		default:
		}
		c.applyRewind()
		c.l.waiters.Add(1)
		wait := c.l.waitCh()
		out, err := c.read(maxRecs)
		if err != nil || len(out) > 0 {
			c.l.waiters.Add(-1)
			return out, err
		}
		select {
		case <-wait:
			c.l.waiters.Add(-1)
		case <-c.rewindCh:
			c.l.waiters.Add(-1)
		case <-ctx.Done():
			c.l.waiters.Add(-1)
			return nil, ctx.Err()
		case <-c.closeCh:
			c.l.waiters.Add(-1)
			return nil, transport.ErrClosed
		case <-c.l.closing:
			c.l.waiters.Add(-1)
			return nil, transport.ErrClosed
		}
	}
}

func (c *consumer) read(maxRecs int) ([]transport.Record, error) {
	var out []transport.Record
	n := len(c.l.parts)
	for k := 0; k < n && len(out) < maxRecs; k++ {
		var err error
		out, err = c.readPartition(c.l.parts[(c.rr+k)%n], maxRecs, out)
		if err != nil {
			if len(out) > 0 {
				break // hand out what was read; the error comes back on the next Poll
			}
			return nil, err
		}
	}
	c.rr++
	return out, nil
}

func (c *consumer) readPartition(p *partition, maxRecs int, out []transport.Record) ([]transport.Record, error) {
	cur := &c.cur[p.id]
	for len(out) < maxRecs {
		p.mu.RLock()
		if cur.next >= p.hw || len(p.segs) == 0 {
			p.mu.RUnlock()
			return out, nil
		}
		if cur.seg == nil || cur.seg.deleted {
			if err := c.locate(p, cur); err != nil { // releases p.mu
				return out, err
			}
			continue
		}
		s := cur.seg
		limit := s.size
		if cur.pos >= limit {
			i := sort.Search(len(p.segs), func(i int) bool { return p.segs[i].base > s.base })
			if i == len(p.segs) {
				p.mu.RUnlock()
				return out, fmt.Errorf("%w: %s ends at byte %d before offset %d", ErrCorrupt, s.path, limit, cur.next)
			}
			cur.seg, cur.pos = p.segs[i], 0
			p.mu.RUnlock()
			continue
		}
		s.acquire()
		p.mu.RUnlock()
		var err error
		out, err = c.readSegment(s, cur, limit, maxRecs, out, p.id)
		s.release()
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// locate points cur at the segment and batch holding cur.next. Called with
// p.mu read-locked; it unlocks before scanning the file.
func (c *consumer) locate(p *partition, cur *cursor) error {
	segs := p.segs
	if cur.next < segs[0].base {
		c.l.log.Warn("consumer fell behind retention; records in between are gone",
			"group", c.group, "partition", p.id, "wanted", cur.next, "earliest", segs[0].base)
		cur.next = segs[0].base
	}
	i := sort.Search(len(segs), func(i int) bool { return segs[i].base > cur.next }) - 1
	s := segs[i]
	if cur.next == s.base {
		cur.seg, cur.pos = s, 0
		p.mu.RUnlock()
		return nil
	}
	size := s.size
	s.acquire()
	p.mu.RUnlock()
	pos, err := findBatch(s.f, size, cur.next)
	s.release()
	if err != nil {
		return fmt.Errorf("disklog: find offset %d in segment %s: %w", cur.next, s.path, err)
	}
	cur.seg, cur.pos = s, pos
	return nil
}

// readSegment decodes records from s starting at cur, up to byte limit.
func (c *consumer) readSegment(s *segment, cur *cursor, limit int64, maxRecs int, out []transport.Record, pid int32) ([]transport.Record, error) {
	want := limit - cur.pos
	est := int64(float64(maxRecs-len(out))*c.avgRecord*1.25) + batchHeaderSize
	est = min(max(est, 64<<10), int64(c.l.opts.ReadBytes))
	buf := make([]byte, min(want, est))
	if err := readFullAt(s, buf, cur.pos); err != nil {
		return out, err
	}
	if out == nil {
		out = make([]transport.Record, 0, min(maxRecs, int(float64(len(buf))/c.avgRecord)+1))
	}
	b := buf
	var used int64
	records := len(out)
	for len(out) < maxRecs {
		if len(b) < batchHeaderSize {
			if len(b) == len(buf) {
				return out, fmt.Errorf("%w: %s: %d bytes at byte %d are less than a batch header", ErrCorrupt, s.path, len(b), cur.pos)
			}
			break
		}
		h, err := parseBatchHeader(b)
		if err != nil {
			return out, fmt.Errorf("disklog: read %s at byte %d: %w", s.path, cur.pos, err)
		}
		if h.size() > int64(len(b)) {
			if len(b) < len(buf) {
				break // the next Poll reads from this batch's start
			}
			if h.size() > want {
				return out, fmt.Errorf("%w: %s: batch at byte %d runs past the durable end", ErrCorrupt, s.path, cur.pos)
			}
			buf = make([]byte, h.size())
			if err := readFullAt(s, buf, cur.pos); err != nil {
				return out, err
			}
			b = buf
			continue
		}
		h, body, err := readBatch(b)
		if err != nil {
			c.l.m.readErrors.Inc()
			return out, fmt.Errorf("disklog: read %s at byte %d: %w", s.path, cur.pos, err)
		}
		if h.nextOffset() > cur.next {
			// A compressed batch decompresses into a buffer of its own:
			// the records alias it, and it is never reused.
			if body, err = batchRecords(h, body, nil); err != nil {
				c.l.m.readErrors.Inc()
				return out, fmt.Errorf("disklog: read %s at byte %d: %w", s.path, cur.pos, err)
			}
			var next int64
			out, next, err = decodeBatch(h, body, cur.next, maxRecs, out, c.l.opts.Topic, pid)
			if err != nil {
				c.l.m.readErrors.Inc()
				return out, fmt.Errorf("disklog: decode %s at byte %d: %w", s.path, cur.pos, err)
			}
			cur.next = next
			if next < h.nextOffset() {
				break // max reached inside this batch; resume here
			}
		}
		cur.pos += h.size()
		used += h.size()
		b = b[h.size():]
	}
	if n := len(out) - records; n > 0 && used > 0 {
		c.avgRecord = 0.8*c.avgRecord + 0.2*float64(used)/float64(n)
	}
	return out, nil
}

func readFullAt(s *segment, buf []byte, pos int64) error {
	n, err := s.f.ReadAt(buf, pos)
	if n == len(buf) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("disklog: read %d bytes of %s at byte %d: %w", len(buf), s.path, pos, err)
}

// Commit stores the group's next offsets durably in the log directory.
func (c *consumer) Commit(ctx context.Context, next map[transport.TopicPartition]int64) error {
	if c.closed.Load() {
		return transport.ErrClosed
	}
	select {
	case <-c.l.closing: // the directory lock is released; another process may own it now
		return transport.ErrClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l := c.l
	if c.group == "" {
		return errors.New("disklog: consumer group name is empty")
	}
	for tp, off := range next {
		if tp.Topic != l.opts.Topic {
			return fmt.Errorf("disklog: commit for topic %q to the log of topic %q", tp.Topic, l.opts.Topic)
		}
		if tp.Partition < 0 || int(tp.Partition) >= len(l.parts) {
			return fmt.Errorf("disklog: commit for partition %d, the log has %d", tp.Partition, len(l.parts))
		}
		p := l.parts[tp.Partition]
		p.mu.RLock()
		hw := p.hw
		p.mu.RUnlock()
		if off < 0 || off > hw {
			return fmt.Errorf("disklog: commit of offset %d for %s[%d] is outside 0..%d (the end of the log)", off, tp.Topic, tp.Partition, hw)
		}
	}

	l.gmu.Lock()
	g := l.groups[c.group]
	if g == nil {
		g = l.newGroup(c.group)
		l.groups[c.group] = g
	}
	l.gmu.Unlock()

	g.wmu.Lock()
	defer g.wmu.Unlock()
	l.gmu.Lock()
	l.groups[c.group] = g // in case DeleteGroup ran in between
	for tp, off := range next {
		g.committed[tp.Partition] = off
		g.floor[tp.Partition] = -1
	}
	gf := groupFile{Version: 1, Group: c.group, Topic: l.opts.Topic, Offsets: map[int32]int64{}}
	for p, off := range g.committed {
		if off >= 0 {
			gf.Offsets[int32(p)] = off
		}
	}
	l.gmu.Unlock()
	if err := l.storeGroup(gf); err != nil {
		return err
	}
	l.gmu.Lock()
	g.stored = true
	l.gmu.Unlock()
	l.m.commits.Inc()
	l.updateBacklog()
	return nil
}

// Close ends the consumer: a blocked Poll returns ErrClosed, and the group
// stops holding back retention unless it has committed offsets.
func (c *consumer) Close() error {
	c.once.Do(func() {
		c.closed.Store(true)
		close(c.closeCh)
		c.mu.Lock() // wait for a Poll in flight, which owns the registration
		started := c.started
		c.mu.Unlock()
		if !started {
			return
		}
		l := c.l
		l.gmu.Lock()
		if g := l.groups[c.group]; g != nil {
			g.active = false
			for i := range g.floor {
				g.floor[i] = -1
			}
			if !g.stored {
				delete(l.groups, c.group)
			}
		}
		l.gmu.Unlock()
		l.updateBacklog()
	})
	return nil
}
