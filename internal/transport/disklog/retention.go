package disklog

import (
	"os"
	"time"
)

func (l *Log) retentionLoop() {
	defer l.bg.Done()
	t := time.NewTicker(l.opts.RetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-l.closing:
			return
		case <-t.C:
		case <-l.retentionKick:
		}
		l.enforceRetention()
	}
}

// enforceRetention deletes whole segments from the front of each partition
// while the partition is over RetentionBytes or the segment is older than
// RetentionAge, but never the active segment and never a segment holding an
// offset some known consumer group has not committed past.
func (l *Log) enforceRetention() {
	protect := l.protectedOffsets(nil)
	now := l.now()
	deleted := false
	for i, p := range l.parts {
		var victims []*segment
		p.mu.Lock()
		var total int64
		for _, s := range p.segs {
			total += s.size
		}
		for len(p.segs) > 1 {
			s := p.segs[0]
			if s.end > protect[i] {
				break
			}
			overSize := l.opts.RetentionBytes > 0 && total > l.opts.RetentionBytes
			tooOld := l.opts.RetentionAge > 0 && now.Sub(s.mtime) > l.opts.RetentionAge
			if !overSize && !tooOld {
				break
			}
			s.deleted = true
			p.segs = p.segs[1:]
			total -= s.size
			victims = append(victims, s)
		}
		p.mu.Unlock()
		for _, s := range victims {
			if err := os.Remove(s.path); err != nil {
				l.log.Warn("retention could not delete segment", "segment", s.path, "err", err)
			} else {
				l.log.Info("retention deleted segment", "segment", s.path, "bytes", s.size, "end_offset", s.end)
			}
			l.m.retentionSegments.Inc()
			l.st.deletedSegments.Add(1)
			l.m.retentionBytes.Add(float64(s.size))
			s.release()
			deleted = true
		}
		if len(victims) > 0 && !l.opts.NoSync {
			if err := syncDir(p.dir); err != nil {
				l.log.Warn("retention: directory fsync failed", "err", err)
			}
		}
	}
	if deleted {
		l.updateBacklog()
	}
}

// updateBacklog recomputes the bytes not yet committed by the slowest known
// group. Within a segment it interpolates by offset, which is exact for
// uniform records and close enough for a bound measured in hundreds of MiB.
func (l *Log) updateBacklog() {
	var buf [16]int64 // no allocation per group commit for up to 16 partitions
	protect := l.protectedOffsets(buf[:])
	var total int64
	for i, p := range l.parts {
		p.mu.RLock()
		for _, s := range p.segs {
			switch {
			case s.end <= protect[i] || s.size == 0:
			case s.base >= protect[i]:
				total += s.size
			default:
				total += int64(float64(s.size) * float64(s.end-protect[i]) / float64(s.end-s.base))
			}
		}
		p.mu.RUnlock()
	}
	l.backlog.Store(total)
}
