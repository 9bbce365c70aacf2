package victorialogs

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fastjson"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/transport"
)

// Why duplicates are looked for at verification, not only marked at write.
//
// Answers collapse repeated ids only inside replay zones (query.go,
// countDistinct), and Write marks every row that may already be stored.
// Some copies cannot be known at write time: a partition taken over while
// the previous owner's insert was still on its way (an attempt that timed
// out on the client and reached VictoriaLogs later, or a block the front
// node was still forwarding when the new owner looked), and blocks the
// front node itself re-sends to another storage node after a failure that
// came after the first one stored it. Both copies of such an id are
// unmarked, and stats, rollups, histogram and fields counted it twice.
//
// Every row is verified by the processor that sent it, DurableAfter after
// it was sent; by then any copy sent before it is searchable too. So the
// verification also counts rows (count() beside count_uniq), and when some
// offsets of the range are stored more than once outside every zone, it
// re-inserts a copy of the first and the last of them marked with a new
// zone: the zone's offset range then holds every unmarked duplicate of the
// range, and the two marked copies are duplicates collapsed like the rest.
// The check is settled only after that, so a durable row's duplicates are
// always in a zone, and answers count every durable id once.

// markDuplicates marks, in each of the accounts, the ids of c's range that
// are stored more than once with no copy in a replay zone.
func (s *Store) markDuplicates(ctx context.Context, c check, accts []Account) error {
	for _, a := range accts {
		marked, err := s.markDuplicatesIn(inAccount(ctx, a), c)
		if err != nil {
			return fmt.Errorf("mark the duplicates of %s/%d offsets %d..%d in account %s: %w", c.tp.Topic, c.tp.Partition, c.lo, c.hi, a, err)
		}
		if marked {
			s.marks = append(s.marks, markCheck{acct: a, c: c, at: time.Now()})
		}
	}
	return nil
}

// markCheck is a range whose duplicates were marked: a mark is a row, and
// a storage node killed inside its flush window loses it like any other,
// so the range is looked at again DurableAfter later.
type markCheck struct {
	acct Account
	c    check
	at   time.Time
}

// recheckMarks marks again the ranges whose marks are due and were lost;
// a range that needed marking again is looked at once more later. Only
// the verification goroutine touches s.marks.
func (s *Store) recheckMarks(now time.Time) {
	keep := s.marks[:0]
	for _, m := range s.marks {
		if now.Sub(m.at) < s.opts.DurableAfter {
			keep = append(keep, m)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
		marked, err := s.markDuplicatesIn(inAccount(ctx, m.acct), m.c)
		cancel()
		switch {
		case err != nil:
			s.m.verifyErrors.Inc()
			s.log.Warn("cannot check that the duplicates marked in VictoriaLogs are still marked; trying again",
				"topic", m.c.tp.Topic, "partition", m.c.tp.Partition, "err", err)
			keep = append(keep, m)
		case marked:
			m.at = now
			keep = append(keep, m)
		}
	}
	clear(s.marks[len(keep):])
	s.marks = keep
}

// failedWrites are the ranges of Writes that failed after an attempt:
// VictoriaLogs may store such an attempt later (the client gave up on a
// front node that had the body), after the partition moved and its new
// owner verified the same offsets. Nobody verifies these rows, so they
// are looked at for duplicates DurableAfter after the failure, whoever
// owns the partition then.
type failedWrites struct {
	mu     sync.Mutex
	checks []markCheck // acct unused: every written account is looked at
}

// watchFailed registers the rows of a failed Write.
func (s *Store) watchFailed(rows []store.Row) {
	now := time.Now()
	s.failed.mu.Lock()
	defer s.failed.mu.Unlock()
	for i := range rows {
		r := &rows[i]
		tp := transport.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		// One range per partition: a batch retried for minutes while
		// VictoriaLogs is down stays one entry, widened.
		var c *markCheck
		for k := range s.failed.checks {
			if s.failed.checks[k].c.tp == tp {
				c = &s.failed.checks[k]
				break
			}
		}
		if c == nil {
			s.failed.checks = append(s.failed.checks, markCheck{c: check{tp: tp, lo: r.Offset, hi: r.Offset, minT: r.Event.Time, maxT: r.Event.Time}})
			c = &s.failed.checks[len(s.failed.checks)-1]
		}
		c.at = now
		c.c.lo, c.c.hi = min(c.c.lo, r.Offset), max(c.c.hi, r.Offset)
		if r.Event.Time.Before(c.c.minT) {
			c.c.minT = r.Event.Time
		}
		if r.Event.Time.After(c.c.maxT) {
			c.c.maxT = r.Event.Time
		}
	}
}

// checkFailed looks for duplicates in the ranges of failed Writes that
// are due, and marks them; a range that cannot be looked at waits.
func (s *Store) checkFailed(now time.Time) {
	s.failed.mu.Lock()
	var due []markCheck
	keep := s.failed.checks[:0]
	for _, c := range s.failed.checks {
		if now.Sub(c.at) < s.opts.DurableAfter {
			keep = append(keep, c)
		} else {
			due = append(due, c)
		}
	}
	clear(s.failed.checks[len(keep):])
	s.failed.checks = keep
	s.failed.mu.Unlock()
	for _, m := range due {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
		_, doubled, err := s.countSent(ctx, m.c)
		if err == nil {
			err = s.markDuplicates(ctx, m.c, doubled)
		}
		cancel()
		if err != nil {
			s.m.verifyErrors.Inc()
			s.log.Warn("cannot look for duplicates of a failed insert in VictoriaLogs yet; trying again",
				"topic", m.c.tp.Topic, "partition", m.c.tp.Partition, "from", m.c.lo, "to", m.c.hi, "err", err)
			s.failed.mu.Lock()
			s.failed.checks = append(s.failed.checks, m)
			s.failed.mu.Unlock()
		}
	}
}

func (s *Store) markDuplicatesIn(ctx context.Context, c check) (bool, error) {
	f := checkFilter(c)
	// The offsets stored more than once outside every zone of the
	// partition (as answers see zones: replayZones): their bounds and how
	// many. Zones of a retry or a replay hold a marked copy of each of
	// their rows; the zones made here only of their bounds.
	zones, err := s.partitionZones(ctx, c.tp)
	if err != nil {
		return false, err
	}
	q := f
	for _, z := range zones {
		if z[1] >= c.lo && z[0] <= c.hi {
			q += fmt.Sprintf(" -%s:range[%d, %d]", fieldOffset, z[0], z[1])
		}
	}
	q += " | stats by (" + fieldOffset + ") count() as k | filter k:>1" +
		" | stats min(" + fieldOffset + ") as a, max(" + fieldOffset + ") as b, count() as d"
	var lo, hi int64
	d := 0
	_, err = s.run(ctx, "duplicates", q, false, func(v *fastjson.Value) error {
		var err error
		if d, err = strconv.Atoi(string(v.GetStringBytes("d"))); err != nil || d == 0 {
			return err
		}
		a, err1 := strconv.ParseFloat(string(v.GetStringBytes("a")), 64)
		b, err2 := strconv.ParseFloat(string(v.GetStringBytes("b")), 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("duplicate offsets %q..%q are not numbers", v.GetStringBytes("a"), v.GetStringBytes("b"))
		}
		lo, hi = int64(a), int64(b)
		return nil
	})
	if err != nil || d == 0 {
		return false, err
	}
	// One stored copy of each bound, read whole, written again with the
	// zone: everything VictoriaLogs answers but its stream ids, which it
	// derives again from the stream fields.
	var body []byte
	seen := map[string]bool{}
	q = fmt.Sprintf("%s (%s:=%d or %s:=%d)", f, fieldOffset, lo, fieldOffset, hi)
	_, err = s.run(ctx, "duplicates", q, false, func(v *fastjson.Value) error {
		o := string(v.GetStringBytes(fieldOffset))
		if seen[o] {
			return nil
		}
		seen[o] = true
		obj, err := v.Object()
		if err != nil {
			return err
		}
		body = append(body, '{')
		obj.Visit(func(k []byte, fv *fastjson.Value) {
			switch string(k) {
			case "_stream", "_stream_id", fieldReplay:
				return
			}
			body = event.AppendString(body, string(k))
			body = append(body, ':')
			body = event.AppendString(body, string(fv.GetStringBytes()))
			body = append(body, ',')
		})
		body = append(body, `"`+fieldReplay+`":"`...)
		body = strconv.AppendInt(body, lo, 10)
		body = append(body, "\"}\n"...)
		return nil
	})
	if err != nil {
		return false, err
	}
	if len(seen) == 0 {
		return false, fmt.Errorf("the duplicated offsets %d and %d were counted but not found", lo, hi)
	}
	enc := encoders.Get().(*encoder)
	defer encoders.Put(enc)
	enc.wire = enc.zw.EncodeAll(body, enc.wire[:0])
	if err := s.insert(ctx, enc.wire, nil, nil); err != nil {
		return false, err
	}
	s.m.dupsMarked.Add(float64(d))
	s.log.Warn("ids stored twice without a replay mark (an insert that reached VictoriaLogs after a takeover, or a front node's re-send) are now in a replay zone; answers count them once",
		"topic", c.tp.Topic, "partition", c.tp.Partition, "account", s.accountIn(ctx), "offsets", d, "from", lo, "to", hi)
	return true, nil
}

// partitionZones is the offset range of each replay zone of tp in the
// account of ctx (a complete answer is required).
func (s *Store) partitionZones(ctx context.Context, tp transport.TopicPartition) ([][2]int64, error) {
	q := fmt.Sprintf("%s:* %s:=%s %s:=%d | stats by (%s) min(%s) as a, max(%s) as b",
		fieldReplay, fieldTopic, quote(tp.Topic), fieldPartition, tp.Partition, fieldReplay, fieldOffset, fieldOffset)
	var zones [][2]int64
	_, err := s.run(ctx, "duplicates", q, false, func(v *fastjson.Value) error {
		a, err1 := strconv.ParseFloat(string(v.GetStringBytes("a")), 64)
		b, err2 := strconv.ParseFloat(string(v.GetStringBytes("b")), 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("replay zone bounds %q..%q are not numbers", v.GetStringBytes("a"), v.GetStringBytes("b"))
		}
		zones = append(zones, [2]int64{int64(a), int64(b)})
		return nil
	})
	return zones, err
}
