package disklog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wirelog/wirelog/internal/telemetry"
	"github.com/wirelog/wirelog/internal/transport"
)

// Log is an embedded, partitioned, durable log. Open one per directory.
type Log struct {
	opts  Options
	dir   string
	lock  *os.File
	parts []*partition
	log   *slog.Logger
	m     *metrics
	st    counters
	codec codec            // nil: batches are stored uncompressed
	now   func() time.Time // replaced in tests that age segments

	// Producer side: callers queue requests, the writer goroutine takes them all.
	qmu          sync.Mutex
	queue        []*request
	spare        []*request
	pendingBytes int64 // queued or being written
	qclosed      bool
	kick         chan struct{} // cap 1: "the queue is not empty"
	stopWriter   chan struct{}
	writerDone   chan struct{}
	reqPool      sync.Pool
	sticky       atomic.Uint32 // partition for keyless records, rotated per call

	failed  atomic.Pointer[error] // sticky write failure: the log is unavailable until reopened
	backlog atomic.Int64          // bytes not committed by the slowest known group
	notify  atomic.Pointer[chan struct{}]
	waiters atomic.Int32 // Polls blocked on notify; publish skips the wake-up when 0

	closing       chan struct{} // closed by Close: wakes Polls, stops retention
	closeOnce     sync.Once
	closeErr      error
	retentionKick chan struct{}
	bg            sync.WaitGroup
	prep          chan *partition // partitions that need a preallocated next segment

	// Group commits being fsynced (syncs.go).
	slots   chan int // free sync slots; MaxSyncsInFlight of them
	cmu     sync.Mutex
	pending []*commitGroup // written, in write order, not yet completed

	gmu       sync.Mutex
	groups    map[string]*group
	groupsDir string
}

// partition is one directory of segments.
type partition struct {
	id  int32
	dir string

	mu   sync.RWMutex
	segs []*segment // ascending base offset; the last one is active
	hw   int64      // offsets below hw are durable and visible to consumers

	// writer goroutine only
	active *segment
	next   int64    // offset the next batch gets
	iov    [][]byte // batches written in this round, not yet on disk
	dirty  bool     // active segment has writes not yet fsynced
	// prepRequested: a preallocated next segment was asked of the preparer
	// (or found at Open) and not yet taken by a roll.
	prepRequested bool

	prepared atomic.Bool // the preparer finished the next segment file (prealloc.go)
}

// request is one batch of one Produce call on its way through the writer.
type request struct {
	part    int
	buf     []byte
	raw     []byte // scratch for the uncompressed records when compressing
	bodyCRC uint32
	count   int
	rawLen  int     // bytes of the batch before compression
	idx     []int32 // positions in the caller's slice when Partitions > 1
	base    int64   // assigned by the writer
	err     error
	done    chan struct{}         // cap 1, signalled once per use
	times   telemetry.CommitTimes // of the group commit that covered it, while tracing
}

// Open opens (creating if needed) the log in dir, recovering the tail of
// every partition. Only one process may have a directory open at a time.
func Open(dir string, opts Options) (*Log, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c, err := newCodec(opts.Compression, opts.CompressionLevel)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("disklog: create log directory %s: %w", dir, err)
	}
	l := &Log{
		codec:         c,
		opts:          opts,
		dir:           dir,
		log:           opts.Logger.With("component", "disklog", "dir", dir, "topic", opts.Topic),
		now:           time.Now,
		kick:          make(chan struct{}, 1),
		stopWriter:    make(chan struct{}),
		writerDone:    make(chan struct{}),
		closing:       make(chan struct{}),
		retentionKick: make(chan struct{}, 1),
		prep:          make(chan *partition, opts.Partitions),
		slots:         make(chan int, opts.MaxSyncsInFlight),
		groups:        map[string]*group{},
		groupsDir:     filepath.Join(dir, "groups"),
	}
	l.m = newMetrics(l)
	for k := 0; k < opts.MaxSyncsInFlight; k++ {
		l.slots <- k
	}
	ch := make(chan struct{})
	l.notify.Store(&ch)
	l.reqPool.New = func() any { return &request{done: make(chan struct{}, 1)} }

	if err := l.lockDir(); err != nil {
		return nil, err
	}
	if err := l.openPartitions(); err != nil {
		l.closeFiles()
		return nil, err
	}
	if err := l.loadGroups(); err != nil {
		l.closeFiles()
		return nil, err
	}
	l.updateBacklog()
	l.bg.Add(2)
	go l.retentionLoop()
	go l.preparer()
	go l.writer()
	return l, nil
}

func (l *Log) lockDir() error {
	path := filepath.Join(l.dir, ".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("disklog: open lock file %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("disklog: log directory %s is in use by another process (%s is locked); stop it or pick another --data directory", l.dir, path)
		}
		return fmt.Errorf("disklog: lock %s: %w", path, err)
	}
	l.lock = f
	return nil
}

func (l *Log) partitionDir(i int) string {
	return filepath.Join(l.dir, fmt.Sprintf("%s-%d", l.opts.Topic, i))
}

func (l *Log) openPartitions() error {
	if _, err := os.Stat(l.partitionDir(l.opts.Partitions)); err == nil {
		return fmt.Errorf("disklog: %s exists but Partitions is %d: partitions cannot be removed; set Partitions back to at least %d", l.partitionDir(l.opts.Partitions), l.opts.Partitions, l.opts.Partitions+1)
	}
	for i := 0; i < l.opts.Partitions; i++ {
		p, err := l.openPartition(i)
		if err != nil {
			return err
		}
		l.parts = append(l.parts, p)
	}
	return nil
}

func (l *Log) openPartition(i int) (*partition, error) {
	p := &partition{id: int32(i), dir: l.partitionDir(i)}
	if _, err := os.Stat(p.dir); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(p.dir, 0o755); err != nil {
			return nil, fmt.Errorf("disklog: create partition directory %s: %w", p.dir, err)
		}
		if !l.opts.NoSync {
			if err := syncDir(l.dir); err != nil {
				return nil, fmt.Errorf("disklog: %w", err)
			}
		}
	}
	if err := l.findPrepared(p); err != nil {
		return nil, err
	}
	bases, err := listSegments(p.dir)
	if err != nil {
		return nil, fmt.Errorf("disklog: %w", err)
	}
	if len(bases) == 0 {
		s, err := createSegment(p.dir, 0, l.opts.NoSync)
		if err != nil {
			return nil, fmt.Errorf("disklog: %w", err)
		}
		if err := l.openSyncFiles(s); err != nil {
			s.release()
			return nil, fmt.Errorf("disklog: %w", err)
		}
		p.segs = []*segment{s}
		p.active = s
		return p, nil
	}
	for j, base := range bases {
		last := j == len(bases)-1
		s, err := openSegment(p.dir, base, last)
		if err != nil {
			p.closeSegments()
			return nil, fmt.Errorf("disklog: %w", err)
		}
		p.segs = append(p.segs, s)
		if !last {
			s.end = bases[j+1]
			continue
		}
		if err := l.recoverSegment(s); err != nil {
			p.closeSegments()
			return nil, err
		}
	}
	p.active = p.segs[len(p.segs)-1]
	p.next = p.active.end
	p.hw = p.next
	if err := l.openSyncFiles(p.active); err != nil {
		p.closeSegments()
		return nil, fmt.Errorf("disklog: %w", err)
	}
	return p, nil
}

// recoverSegment validates the active segment and truncates a torn or
// corrupt tail. Everything before the first bad batch was written whole, so
// every batch that was fsynced before a crash survives.
func (l *Log) recoverSegment(s *segment) error {
	res, err := scanSegment(s.f, s.size, s.base)
	if err != nil {
		return fmt.Errorf("disklog: recover segment %s: %w", s.path, err)
	}
	l.m.recoveredBytes.Add(float64(res.validEnd))
	l.st.recovered.Add(res.validEnd)
	if res.zeroTail {
		// The unused, preallocated part of the segment: the writer carries
		// on at validEnd, over the zeros.
		l.log.Debug("segment ends in preallocated space", "segment", s.path, "bytes", res.validEnd, "preallocated_bytes", s.size-res.validEnd)
		s.size, s.wsize = res.validEnd, res.validEnd
	} else if res.validEnd < s.size {
		cut := s.size - res.validEnd
		l.log.Warn("truncating torn or corrupt tail of segment",
			"segment", s.path, "kept_bytes", res.validEnd, "truncated_bytes", cut,
			"kept_batches", res.batches, "next_offset", res.end, "reason", res.reason)
		if err := s.f.Truncate(res.validEnd); err != nil {
			return fmt.Errorf("disklog: truncate corrupt tail of segment %s to %d bytes: %w", s.path, res.validEnd, err)
		}
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("disklog: fsync segment %s after truncation: %w", s.path, err)
		}
		l.m.truncatedBytes.Add(float64(cut))
		l.st.truncated.Add(cut)
		s.size, s.wsize, s.alloc = res.validEnd, res.validEnd, res.validEnd
	}
	s.end = res.end
	return nil
}

func (p *partition) closeSegments() {
	for _, s := range p.segs {
		s.release()
	}
	p.segs = nil
}

func (l *Log) closeFiles() {
	for _, p := range l.parts {
		p.mu.Lock()
		p.closeSegments()
		p.mu.Unlock()
	}
	if l.lock != nil {
		l.lock.Close() // releases the flock
	}
}

// Close stops accepting records, lets the writer finish and fsync what is
// queued (those Produce calls succeed), wakes blocked Polls with ErrClosed
// and closes every file. It is safe to call more than once.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.qmu.Lock()
		l.qclosed = true
		l.qmu.Unlock()
		close(l.stopWriter)
		<-l.writerDone
		close(l.closing)
		l.bg.Wait()
		if err := l.failure(); err != nil {
			l.closeErr = err
		}
		l.closeFiles()
	})
	return l.closeErr
}

func (l *Log) failure() error {
	if p := l.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// fail makes the log refuse writes until it is reopened. After a failed write
// or fsync the kernel may have dropped dirty pages and reported the error
// only once, so retrying could acknowledge data that is not on disk; the only
// trustworthy state is what recovery finds on the next Open.
func (l *Log) fail(err error) error {
	err = fmt.Errorf("%w: %w; restart wirelog after fixing the disk (the log re-reads its files on open)", transport.ErrUnavailable, err)
	if l.failed.CompareAndSwap(nil, &err) {
		l.log.Error("log stopped accepting writes", "err", err)
	}
	return *l.failed.Load()
}

// admit decides whether a Produce call may queue records at all.
func (l *Log) admit() error {
	err := l.admission()
	if errors.Is(err, transport.ErrBackpressure) {
		l.m.backpressure.Inc()
		l.st.backpressure.Add(1)
	}
	return err
}

func (l *Log) admission() error {
	if err := l.failure(); err != nil {
		return err
	}
	if max := l.opts.MaxLagBytes; max > 0 {
		if b := l.backlog.Load(); b > max {
			return fmt.Errorf("%w: %d bytes not yet consumed by every consumer group, over MaxLagBytes %d", transport.ErrBackpressure, b, max)
		}
	}
	return nil
}

func (l *Log) getRequest() *request {
	r := l.reqPool.Get().(*request)
	r.err = nil
	r.idx = r.idx[:0]
	return r
}

func (l *Log) putRequest(r *request) {
	if cap(r.buf) > 4<<20 { // don't pin a rare huge batch in the pool
		r.buf = nil
	}
	if cap(r.raw) > 4<<20 {
		r.raw = nil
	}
	l.reqPool.Put(r)
}

// produce is Producer.Produce: encode in the caller's goroutine, queue, wait.
func (l *Log) produce(ctx context.Context, recs []transport.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := l.admit(); err != nil {
		return err
	}
	now := l.now().UnixNano()
	if len(l.parts) == 1 {
		r := l.getRequest()
		var err error
		r.part = 0
		r.buf, r.bodyCRC, r.count, r.rawLen, err = encodeBatch(r.buf[:0], &r.raw, recs, nil, now, l.opts.Topic, l.codec)
		if err != nil {
			l.putRequest(r)
			return err
		}
		reqs := [1]*request{r}
		if done, err := l.submit(ctx, reqs[:]); err != nil {
			if done {
				l.putRequest(r)
			}
			return err
		}
		for i := range recs {
			recs[i].Topic = l.opts.Topic
			recs[i].Partition = 0
			recs[i].Offset = r.base + int64(i)
		}
		l.putRequest(r)
		return nil
	}

	// Several partitions: group positions by partition, one batch each.
	byPart := make([]*request, len(l.parts))
	sticky := int(l.sticky.Add(1) % uint32(len(l.parts)))
	var reqs []*request
	for i := range recs {
		pi := sticky
		if recs[i].Key != nil {
			pi = partitionForKey(recs[i].Key, len(l.parts))
		}
		r := byPart[pi]
		if r == nil {
			r = l.getRequest()
			r.part = pi
			byPart[pi] = r
			reqs = append(reqs, r)
		}
		r.idx = append(r.idx, int32(i))
	}
	for _, r := range reqs {
		var err error
		r.buf, r.bodyCRC, r.count, r.rawLen, err = encodeBatch(r.buf[:0], &r.raw, recs, r.idx, now, l.opts.Topic, l.codec)
		if err != nil {
			for _, r := range reqs {
				l.putRequest(r)
			}
			return err
		}
	}
	done, err := l.submit(ctx, reqs)
	if err != nil {
		if done {
			for _, r := range reqs {
				l.putRequest(r)
			}
		}
		return err
	}
	for _, r := range reqs {
		for j, i := range r.idx {
			recs[i].Topic = l.opts.Topic
			recs[i].Partition = int32(r.part)
			recs[i].Offset = r.base + int64(j)
		}
		l.putRequest(r)
	}
	return nil
}

// partitionForKey is FNV-1a, stable across restarts and versions.
func partitionForKey(key []byte, n int) int {
	h := uint32(2166136261)
	for _, c := range key {
		h ^= uint32(c)
		h *= 16777619
	}
	return int(h % uint32(n))
}

// submit queues reqs for the writer and waits for all of them. done reports
// whether the writer is finished with reqs (false only when ctx ended first,
// in which case reqs must not be reused).
func (l *Log) submit(ctx context.Context, reqs []*request) (done bool, err error) {
	var n int64
	for _, r := range reqs {
		n += int64(len(r.buf))
	}
	l.qmu.Lock()
	if l.qclosed {
		l.qmu.Unlock()
		return true, transport.ErrClosed
	}
	if l.pendingBytes > 0 && l.pendingBytes+n > l.opts.MaxPendingBytes {
		pending := l.pendingBytes
		l.qmu.Unlock()
		l.m.backpressure.Inc()
		l.st.backpressure.Add(1)
		return true, fmt.Errorf("%w: %d bytes already queued for the disk (MaxPendingBytes %d)", transport.ErrBackpressure, pending, l.opts.MaxPendingBytes)
	}
	l.queue = append(l.queue, reqs...)
	l.pendingBytes += n
	l.qmu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	for _, r := range reqs {
		select {
		case <-r.done:
		case <-ctx.Done():
			return false, fmt.Errorf("disklog: stopped waiting for fsync, records may or may not be stored: %w", ctx.Err())
		}
	}
	for _, r := range reqs {
		if r.err != nil {
			return true, r.err
		}
	}
	telemetry.DiskCommit(ctx, &reqs[0].times)
	return true, nil
}

// writer is the single goroutine that appends and fsyncs.
func (l *Log) writer() {
	defer close(l.writerDone)
	for {
		select {
		case <-l.kick:
		case <-l.stopWriter:
			for l.commitQueued() {
			}
			l.drainSyncs()
			l.syncAll()
			l.trimAll()
			return
		}
		if w := l.opts.GroupCommitWait; w > 0 {
			time.Sleep(w)
		}
		l.commitQueued()
	}
}

// commitQueued takes everything queued and group-commits it. It reports
// whether there was anything to do.
func (l *Log) commitQueued() bool {
	l.qmu.Lock()
	batch := l.queue
	if len(batch) == 0 {
		l.qmu.Unlock()
		return false
	}
	l.queue = l.spare[:0]
	l.qmu.Unlock()

	var n int64
	for _, r := range batch {
		n += int64(len(r.buf))
	}
	l.commit(batch)

	l.qmu.Lock()
	l.pendingBytes -= n
	l.qmu.Unlock()
	clear(batch)
	l.spare = batch[:0]
	return true
}

// commit writes the batches of one group commit and hands the group to a
// sync goroutine (syncs.go), which fsyncs every touched segment, publishes
// the new end offsets and completes the callers, in order. The writer goes
// on with the next group while that fdatasync runs.
func (l *Log) commit(batch []*request) {
	err := l.failure()
	rolled := false
	g := &commitGroup{reqs: append([]*request(nil), batch...)}
	if telemetry.Enabled() {
		g.traced = true
		g.ct.Write = time.Now()
	}
	if err == nil {
		for _, r := range batch {
			p := l.parts[r.part]
			// Roll past SegmentBytes; and roll a plain (appended) segment
			// early once a preallocated one is ready (prealloc.go).
			if a := p.active; a.wsize > 0 && (a.wsize+int64(len(r.buf)) > l.opts.SegmentBytes ||
				a.alloc < l.opts.SegmentBytes && a.wsize >= l.prepareAt() && p.prepared.Load()) {
				// Groups in flight complete first: a roll publishes and
				// seals the old segment itself.
				l.drainSyncs()
				if err = l.roll(p); err != nil {
					break
				}
				rolled = true
			}
			r.base = p.next
			sealBatch(r.buf, r.base, r.bodyCRC)
			p.next += int64(r.count)
			p.iov = append(p.iov, r.buf)
			p.active.wsize += int64(len(r.buf))
			p.dirty = true
			if !p.prepRequested && p.active.wsize >= l.prepareAt() {
				l.requestPrepared(p)
			}
			g.records += r.count
			g.bytes += len(r.buf)
			g.rawBytes += r.rawLen
		}
	}
	if err == nil {
		for _, p := range l.parts {
			if p.dirty {
				if err = l.flush(p); err != nil {
					break
				}
			}
		}
	}
	for _, p := range l.parts {
		if p.dirty && err == nil {
			g.ends = append(g.ends, groupEnd{p: p, seg: p.active, next: p.next, size: p.active.wsize})
		}
		p.dirty = false
		p.iov = p.iov[:0]
	}
	if err != nil {
		g.err = l.fail(err)
	}
	if g.traced {
		g.ct.Sync = time.Now()
	}
	l.startSync(g)
	if rolled {
		select {
		case l.retentionKick <- struct{}{}:
		default:
		}
	}
}

// flush writes the batches gathered for p to its active segment.
func (l *Log) flush(p *partition) error {
	if len(p.iov) == 0 {
		return nil
	}
	a := p.active
	off := a.wsize // commit advanced wsize past the batches in p.iov
	for _, b := range p.iov {
		off -= int64(len(b))
	}
	if pad := pageTail(a.wsize, a.alloc); pad > 0 {
		p.iov = append(p.iov, zeroPage[:pad])
	}
	err := writeFullAt(a.fd, p.iov, off)
	if a.wsize > a.alloc {
		a.alloc = a.wsize
	}
	clear(p.iov)
	p.iov = p.iov[:0]
	if err != nil {
		l.m.writeErrors.Inc()
		return fmt.Errorf("write segment %s: %w", p.active.path, err)
	}
	return nil
}

func (l *Log) sync(s *segment) error {
	if l.opts.NoSync {
		return nil
	}
	return l.fdatasync(s, s.fd)
}

// fdatasync syncs s through fd (its own, or a sync slot's), counted and
// timed in the log's metrics.
func (l *Log) fdatasync(s *segment, fd int) error {
	start := time.Now()
	err := unix.Fdatasync(fd)
	l.m.fsyncs.Inc()
	l.st.fsyncs.Add(1)
	l.m.fsyncSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		l.m.writeErrors.Inc()
		return fmt.Errorf("fdatasync segment %s: %w", s.path, err)
	}
	return nil
}

// publish makes everything written to p's active segment visible to consumers.
func (l *Log) publish(p *partition, now time.Time) {
	p.mu.Lock()
	a := p.active
	a.size = a.wsize
	a.end = p.next
	a.mtime = now
	p.hw = p.next
	p.mu.Unlock()
}

// roll closes p's active segment for writing (after making it durable) and
// starts a new one at the next offset.
func (l *Log) roll(p *partition) error {
	if err := l.flush(p); err != nil {
		return err
	}
	if err := l.sync(p.active); err != nil {
		return err
	}
	l.publish(p, l.now())
	p.dirty = false
	// A sealed segment must end with its last batch: only the active one
	// is scanned for its end at Open. So cut the preallocated rest before
	// the next segment exists.
	if err := l.trim(p.active); err != nil {
		return err
	}
	s, err := l.nextSegment(p)
	if err != nil {
		return err
	}
	if err := l.openSyncFiles(s); err != nil {
		s.release()
		return err
	}
	p.mu.Lock()
	p.segs = append(p.segs, s)
	p.mu.Unlock()
	p.active.closeSyncFiles() // sealed; no sync in flight (drainSyncs)
	p.active = s
	l.m.rolls.Inc()
	return nil
}

// syncAll runs at Close, after the last group commit. Every acknowledged
// batch is already fsynced; this covers NoSync logs being closed cleanly.
func (l *Log) syncAll() {
	if !l.opts.NoSync || l.failure() != nil {
		return
	}
	for _, p := range l.parts {
		if err := p.active.f.Sync(); err != nil {
			l.log.Warn("fsync at close failed", "segment", p.active.path, "err", err)
		}
	}
}

func (l *Log) wakeConsumers() {
	// A Poll counts itself in waiters before it takes the channel and looks
	// for records, so either it sees what was just published or we see it.
	if l.waiters.Load() == 0 {
		return
	}
	ch := make(chan struct{})
	old := l.notify.Swap(&ch)
	close(*old)
}

// waitCh returns a channel closed at the next publish. Count the caller in
// waiters and take the channel before checking for records, so that a
// publish in between is not missed.
func (l *Log) waitCh() <-chan struct{} { return *l.notify.Load() }

// Producer returns a handle for appending records. Closing it does not close the log.
func (l *Log) Producer() transport.Producer { return &producer{l: l} }

type producer struct {
	l      *Log
	closed atomic.Bool
}

func (p *producer) Produce(ctx context.Context, recs []transport.Record) error {
	if p.closed.Load() {
		return transport.ErrClosed
	}
	return p.l.produce(ctx, recs)
}

// Ready reports whether a Produce call would be admitted now: nil, or an
// error wrapping ErrClosed, ErrUnavailable or ErrBackpressure.
func (p *producer) Ready(ctx context.Context) error {
	if p.closed.Load() {
		return transport.ErrClosed
	}
	return p.l.Ready(ctx)
}

func (p *producer) Close() error {
	p.closed.Store(true)
	return nil
}

// Ready reports nil when the log takes writes: it is open, its disk has not
// failed and the unconsumed backlog is within MaxLagBytes.
func (l *Log) Ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.qmu.Lock()
	closed := l.qclosed
	l.qmu.Unlock()
	if closed {
		return transport.ErrClosed
	}
	return l.admission()
}
