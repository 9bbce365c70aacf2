package disklog

// Pipelined group commit. The writer goroutine writes a group's batches and
// hands the group to a sync goroutine; it does not wait for the fdatasync
// but takes the next group, writes it and starts its fdatasync too, up to
// MaxSyncsInFlight at once. Closed-loop clients (a shipper with N
// connections, each waiting for its answer) otherwise fall into cohorts
// that take turns: the calls that arrive during a sync wait for it to end
// and then for their own, so each waits about two sync times. With two
// syncs in flight a call waits for its own only; on this virtio disk two
// concurrent fdatasyncs of one file overlap (docs/bench/disklog.md).
//
// Groups complete strictly in write order (pending), so offsets are
// published, and callers acknowledged, only when everything before them is
// durable too. Each sync slot fsyncs through its own open file description
// of the segment (segment.syncf): the kernel reports a writeback error once
// per open file, so two fdatasyncs sharing one descriptor could see one
// report between them, and one of them return success for lost pages.

import (
	"fmt"
	"os"
	"time"

	"github.com/wirelog/wirelog/internal/telemetry"
)

// maxSyncsInFlight bounds Options.MaxSyncsInFlight (and segment.syncf).
const maxSyncsInFlight = 4

// commitGroup is one group commit on its way from the writer to its callers.
type commitGroup struct {
	reqs                     []*request
	ends                     []groupEnd // what becomes durable, per touched partition
	records, bytes, rawBytes int
	err                      error
	done                     bool // synced (or failed); guarded by Log.cmu
	traced                   bool
	ct                       telemetry.CommitTimes
}

// groupEnd is a partition's end after a group's writes.
type groupEnd struct {
	p          *partition
	seg        *segment
	next, size int64
}

// startSync queues g for completion and fsyncs it on a free slot, waiting
// for one while MaxSyncsInFlight groups are being synced. Writer only.
func (l *Log) startSync(g *commitGroup) {
	k := <-l.slots
	l.cmu.Lock()
	l.pending = append(l.pending, g)
	l.cmu.Unlock()
	if g.err != nil || len(g.ends) == 0 || l.opts.NoSync {
		l.completeGroup(g, k)
		return
	}
	go l.syncGroup(g, k)
}

func (l *Log) syncGroup(g *commitGroup, k int) {
	for _, e := range g.ends {
		if err := l.syncSlot(e.seg, k); err != nil {
			g.err = l.fail(err)
			break
		}
	}
	l.completeGroup(g, k)
}

// syncSlot fdatasyncs s through slot k's own descriptor of it.
func (l *Log) syncSlot(s *segment, k int) error {
	f := s.syncf[k]
	if f == nil { // not opened when the segment became active: an error then
		return fmt.Errorf("segment %s has no descriptor for sync slot %d", s.path, k)
	}
	return l.fdatasync(s, int(f.Fd()))
}

// completeGroup marks g synced and completes every group at the head of
// pending that is, in order; then it frees slot k.
func (l *Log) completeGroup(g *commitGroup, k int) {
	l.cmu.Lock()
	g.done = true
	for len(l.pending) > 0 && l.pending[0].done {
		h := l.pending[0]
		l.pending[0] = nil
		l.pending = l.pending[1:]
		l.finish(h)
	}
	l.cmu.Unlock()
	l.slots <- k
}

// finish publishes a synced group and answers its callers. Under cmu, in
// write order.
func (l *Log) finish(g *commitGroup) {
	err := g.err
	if err == nil {
		// A later group's sync may have failed the log meanwhile; this
		// group's own sync succeeded, but the log acknowledges nothing more
		// once it has failed.
		err = l.failure()
	}
	if err == nil {
		now := l.now()
		for _, e := range g.ends {
			e.p.mu.Lock()
			e.seg.size = max(e.seg.size, e.size)
			e.seg.end = max(e.seg.end, e.next)
			e.seg.mtime = now
			e.p.hw = max(e.p.hw, e.next)
			e.p.mu.Unlock()
		}
		l.wakeConsumers()
		l.m.appendedRecords.Add(float64(g.records))
		l.m.appendedBytes.Add(float64(g.bytes))
		l.m.appendedRawBytes.Add(float64(g.rawBytes))
		l.st.bytes.Add(int64(g.bytes))
		l.st.rawBytes.Add(int64(g.rawBytes))
		l.m.appendedBatches.Add(float64(len(g.reqs)))
		l.m.groupCommits.Inc()
		l.m.groupCommitRecords.Observe(float64(g.records))
		l.m.groupCommitCalls.Observe(float64(len(g.reqs)))
		l.st.records.Add(int64(g.records))
		l.st.batches.Add(int64(len(g.reqs)))
		l.st.groupCommits.Add(1)
		if int64(len(g.reqs)) > l.st.maxGroupBatches.Load() {
			l.st.maxGroupBatches.Store(int64(len(g.reqs))) // under cmu
		}
		l.updateBacklog()
	}
	if g.traced && err == nil {
		g.ct.Synced, g.ct.Calls, g.ct.Records = time.Now(), len(g.reqs), g.records
	}
	for _, r := range g.reqs {
		r.err = err
		r.times = g.ct
		r.done <- struct{}{}
	}
}

// drainSyncs waits until no group is being synced or completed. Writer only.
func (l *Log) drainSyncs() {
	n := cap(l.slots)
	taken := make([]int, 0, maxSyncsInFlight)
	for range n {
		taken = append(taken, <-l.slots)
	}
	for _, k := range taken {
		l.slots <- k
	}
}

// openSyncFiles opens the sync slots' descriptors of s, which is becoming
// the active segment, before anything is written to it, so that each sees
// every writeback error of the writes that follow.
func (l *Log) openSyncFiles(s *segment) error {
	if l.opts.NoSync {
		return nil
	}
	for k := 0; k < l.opts.MaxSyncsInFlight; k++ {
		if s.syncf[k] != nil {
			continue
		}
		f, err := os.Open(s.path)
		if err != nil {
			return fmt.Errorf("open segment %s for fdatasync: %w", s.path, err)
		}
		s.syncf[k] = f
	}
	return nil
}

// closeSyncFiles closes them once s is sealed (writer only, no sync in
// flight) or released.
func (s *segment) closeSyncFiles() {
	for k, f := range s.syncf {
		if f != nil {
			f.Close()
			s.syncf[k] = nil
		}
	}
}
