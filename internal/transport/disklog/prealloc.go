package disklog

// Preallocated segments. Appending to a file changes its size and, on ext4,
// its extent map, so every fdatasync of an appending log also commits the
// filesystem journal: two flushes of the disk's cache per group commit
// instead of one. Writing over blocks that already hold zeros changes no
// metadata fdatasync has to persist, so each group commit costs one data
// write and one cache flush (docs/bench/disklog.md, "Preallocated
// segments", measures both on this disk). fallocate(2) alone does not give
// this: it reserves unwritten extents, and the first write of each block
// converts its extent, which is again a journalled metadata change. So,
// like etcd's WAL file pipeline and PostgreSQL's zero-filled WAL segments,
// a background goroutine (the preparer) writes the next segment file full
// of zeros and fsyncs it before the writer needs it; at a roll the writer
// renames it into place. It is asked for once prepareAt bytes are in the
// active segment, so a log holds at most one segment of zeros ahead per
// partition being written, and a log that never writes that much (tests, a
// quiet host) writes no zeros at all. A plain (appended) segment — the
// first of a new log, or one written while no prepared file was ready — is
// rolled as soon as a prepared file is, rather than filled to
// SegmentBytes; otherwise a roll that finds no prepared file creates a
// plain segment as before.
//
// The end of the log is then inside the file. Recovery (scanSegment)
// treats a header of zeros followed only by zeros as the clean end, and any
// other bytes after the last valid batch as a torn tail it cuts off, as
// before. A segment is cut to its data when it is sealed (roll) and when the
// log is closed, so only the active segment of a log that crashed ever ends
// in zeros.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// preparedName is the zero-filled file waiting to become a partition's
	// next segment; preparedTemp is it while being written. Neither matches
	// segmentName, so listSegments ignores them.
	preparedName = "next.prealloc"
	preparedTemp = "next.prealloc.tmp"
	// zeroChunk is the size of one write(2) of zeros while preparing.
	zeroChunk = 256 << 10
	// prepareIdle paces the preparer: after each chunk it waits this many
	// times as long as the chunk took, so the zeros take at most a quarter
	// of the disk's time and the writer's fdatasyncs do not queue behind
	// a burst of them (measured: a preparer writing without pause made the
	// writer's fdatasyncs 3-5x slower, docs/bench/disklog.md).
	prepareIdle = 3
)

func (l *Log) preallocating() bool { return !l.opts.NoPreallocate && !l.opts.NoSync }

// findPrepared looks for a file prepared before the last Close or crash: a
// complete one (renamed into place only after its fsync) of the current
// SegmentBytes is used, anything else removed.
func (l *Log) findPrepared(p *partition) error {
	tmp := filepath.Join(p.dir, preparedTemp)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("disklog: remove unfinished preallocated segment %s: %w", tmp, err)
	}
	path := filepath.Join(p.dir, preparedName)
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil && st.Size() == l.preparedSize() && l.preallocating() {
		p.prepared.Store(true)
		p.prepRequested = true
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("disklog: remove preallocated segment %s: %w", path, err)
	}
	return nil
}

// prepareAt is how much of the active segment is written before the next
// one is prepared, and the least a plain segment holds before it is rolled
// early onto a prepared one: 4 MiB, or half a smaller segment.
func (l *Log) prepareAt() int64 { return min(l.opts.SegmentBytes/2, 4<<20) }

// preparedSize is SegmentBytes rounded up to whole 4 KiB blocks, as
// O_DIRECT writes them; the writer rolls at SegmentBytes all the same.
func (l *Log) preparedSize() int64 { return (l.opts.SegmentBytes + 4095) &^ 4095 }

// alignedZeros returns n zero bytes starting on a 4 KiB boundary, as
// O_DIRECT needs of its buffers.
func alignedZeros(n int) []byte {
	b := make([]byte, n+4096)
	off := int(-uintptr(unsafe.Pointer(&b[0])) & 4095)
	return b[off : off+n : off+n]
}

// zeroPage pads a write in preallocated space to the end of its page.
var zeroPage [4096]byte

// pageTail is how many bytes of zeros complete the page in which a write
// ending at wsize ends, when the file holds preallocated zeros there
// (alloc > wsize). Writing them (they are zeros already) makes every page
// a group commit touches a whole-page overwrite: otherwise the kernel must
// first read the page's old contents from the disk — the zeros were
// written with O_DIRECT, so they are not in the page cache — and the
// writer paid that read on every group commit (pwritev went from 0.14 to
// 0.4 µs per event in the CPU profile).
func pageTail(wsize, alloc int64) int64 {
	if alloc <= wsize {
		return 0
	}
	end := min((wsize+4095)&^4095, alloc)
	return end - wsize
}

// requestPrepared asks the preparer for p's next segment. Writer only; at
// most one request per partition is outstanding, so the send never blocks.
func (l *Log) requestPrepared(p *partition) {
	p.prepRequested = true
	if !l.preallocating() {
		return
	}
	select {
	case l.prep <- p:
	default:
	}
}

// preparer writes requested segment files until the log closes.
func (l *Log) preparer() {
	defer l.bg.Done()
	zeros := alignedZeros(zeroChunk)
	for {
		select {
		case <-l.closing:
			return
		case p := <-l.prep:
			if err := l.prepare(p, zeros); err != nil {
				if !errors.Is(err, errClosing) {
					// Not fatal: the writer appends to plain segments, which
					// is slower per fdatasync but as durable.
					l.log.Warn("could not preallocate the next segment; appending instead", "dir", p.dir, "err", err)
					l.m.preallocErrors.Inc()
				}
				os.Remove(filepath.Join(p.dir, preparedTemp))
			}
		}
	}
}

var errClosing = errors.New("log closing")

// prepare writes preparedSize of zeros to p's temporary file, fsyncs it
// and renames it into place. The zeros are written, not fallocated, so that
// the blocks are allocated and initialised before the writer overwrites
// them. They are written with O_DIRECT where the filesystem takes it: no
// copy into the page cache (which cost ~2.5 ms of CPU per MiB on this
// host, ~0.3 µs per logged event), no cache of zeros pushed out of memory.
func (l *Log) prepare(p *partition, zeros []byte) error {
	tmp := filepath.Join(p.dir, preparedTemp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_DIRECT, 0o644)
	if errors.Is(err, unix.EINVAL) { // tmpfs and others: buffered writes
		f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	defer f.Close()
	size := l.preparedSize()
	pause := time.NewTimer(0)
	defer pause.Stop()
	for off := int64(0); off < size; off += int64(len(zeros)) {
		select {
		case <-l.closing:
			return errClosing
		case <-pause.C:
		}
		b := zeros[:min(int64(len(zeros)), size-off)]
		start := time.Now()
		if _, err := f.WriteAt(b, off); err != nil {
			return fmt.Errorf("write zeros to %s: %w", tmp, err)
		}
		pause.Reset(prepareIdle * time.Since(start))
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("fdatasync %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(p.dir, preparedName)); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	l.m.preallocated.Inc()
	p.prepared.Store(true)
	return nil
}

// nextSegment starts p's next segment at p.next: the prepared file when one
// is ready, else a new empty file. Writer only.
func (l *Log) nextSegment(p *partition) (*segment, error) {
	if !p.prepared.Load() {
		return createSegment(p.dir, p.next, l.opts.NoSync)
	}
	p.prepared.Store(false)
	p.prepRequested = false
	path := filepath.Join(p.dir, segmentName(p.next))
	if err := os.Rename(filepath.Join(p.dir, preparedName), path); err != nil {
		l.log.Warn("could not use the preallocated segment; appending instead", "dir", p.dir, "err", err)
		l.m.preallocErrors.Inc()
		return createSegment(p.dir, p.next, l.opts.NoSync)
	}
	// The rename must be durable before batches in the file are acknowledged.
	if err := syncDir(p.dir); err != nil {
		return nil, err
	}
	s, err := openSegment(p.dir, p.next, true)
	if err != nil {
		return nil, err
	}
	s.size, s.wsize, s.end, s.mtime = 0, 0, p.next, l.now()
	return s, nil
}

// trim cuts the preallocated rest of s (writer only), making the cut
// durable: at a roll and at Close.
func (l *Log) trim(s *segment) error {
	if s.alloc <= s.wsize {
		return nil
	}
	if err := s.f.Truncate(s.wsize); err != nil {
		return fmt.Errorf("truncate segment %s to its %d bytes of data: %w", s.path, s.wsize, err)
	}
	if !l.opts.NoSync {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("fsync segment %s after truncation: %w", s.path, err)
		}
	}
	s.alloc = s.wsize
	return nil
}

// trimAll runs at Close: a stopped log's files hold only batches (a crash
// leaves zeros, which recovery recognises).
func (l *Log) trimAll() {
	if l.failure() != nil {
		return
	}
	for _, p := range l.parts {
		if err := l.trim(p.active); err != nil {
			l.log.Warn("could not cut the preallocated end of the segment at close; the next start reads past it", "err", err)
		}
	}
}
