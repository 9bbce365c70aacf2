package disklog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

const segmentSuffix = ".log"

// segment is one file of a partition. The fields under "guarded by
// partition.mu" describe the durable part that consumers may read; wsize is
// the writer's own view, which runs ahead of size until the fsync completes.
type segment struct {
	base int64
	path string
	f    *os.File
	fd   int
	refs atomic.Int32 // 1 for the partition's list + 1 per reader in flight

	// guarded by partition.mu
	size    int64     // durable bytes
	end     int64     // offset after the last durable batch
	mtime   time.Time // time of the last durable append
	deleted bool      // removed from the list by retention

	wsize int64 // writer goroutine only
	// alloc is the file's size as the writer knows it (writer goroutine
	// only): above wsize when the file was preallocated (prealloc.go) and
	// the rest of it holds zeros, which recovery reads as the end of the log.
	alloc int64
	// syncf are the sync slots' own descriptors of the active segment
	// (syncs.go); slot k's goroutine alone uses syncf[k].
	syncf [maxSyncsInFlight]*os.File
}

func segmentName(base int64) string { return fmt.Sprintf("%020d%s", base, segmentSuffix) }

// parseSegmentName returns the base offset of a segment file name.
func parseSegmentName(name string) (int64, bool) {
	if !strings.HasSuffix(name, segmentSuffix) || len(name) != 20+len(segmentSuffix) {
		return 0, false
	}
	base, err := strconv.ParseInt(strings.TrimSuffix(name, segmentSuffix), 10, 64)
	return base, err == nil && base >= 0
}

// acquire pins the file open for a read outside partition.mu. It must be
// called with partition.mu held (read or write) and the segment in the list.
func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference; the last one closes the file. Retention unlinks
// the file before dropping the list's reference, and Linux keeps an unlinked
// file readable through open descriptors, so an in-flight read never fails.
func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.closeSyncFiles()
		s.f.Close()
	}
}

// listSegments returns the base offsets of the segment files in dir, ascending.
func listSegments(dir string) ([]int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list segments in %s: %w", dir, err)
	}
	var bases []int64
	for _, e := range ents {
		if base, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			bases = append(bases, base)
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases, nil
}

func openSegment(dir string, base int64, writable bool) (*segment, error) {
	path := filepath.Join(dir, segmentName(base))
	flag := os.O_RDONLY
	if writable {
		// No O_APPEND: the writer writes at wsize (pwritev), which is below
		// the end of the file when the segment was preallocated.
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat segment %s: %w", path, err)
	}
	s := &segment{base: base, path: path, f: f, fd: int(f.Fd()), size: st.Size(), wsize: st.Size(), alloc: st.Size(), mtime: st.ModTime()}
	s.refs.Store(1)
	return s, nil
}

// createSegment makes a new empty segment file and fsyncs the directory so
// that the file survives a crash together with what the writer puts in it.
func createSegment(dir string, base int64, nosync bool) (*segment, error) {
	path := filepath.Join(dir, segmentName(base))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create segment %s: %w", path, err)
	}
	if !nosync {
		if err := syncDir(dir); err != nil {
			f.Close()
			return nil, err
		}
	}
	s := &segment{base: base, path: path, f: f, fd: int(f.Fd()), end: base, mtime: time.Now()}
	s.refs.Store(1)
	return s, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s for fsync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// scanResult is what recovery learns from reading a segment front to back.
type scanResult struct {
	validEnd int64 // bytes of whole, valid batches
	end      int64 // offset after the last valid batch
	batches  int
	reason   error // why scanning stopped before EOF; nil at a clean end
	// zeroTail: scanning stopped at a header of zeros and every byte after
	// validEnd is zero: the unused, preallocated part of the segment, which
	// is the clean end of the log, not a torn write.
	zeroTail bool
}

// scanSegment reads every batch of a segment whose first offset must be base,
// verifying headers, CRCs, offset continuity and record structure (of
// compressed batches, once decompressed: a batch that does not decompress
// ends the valid part like a torn one). It stops
// at the first bad batch and reports where; err is only for I/O failures.
func scanSegment(r io.ReaderAt, size, base int64) (scanResult, error) {
	res := scanResult{end: base}
	br := bufio.NewReaderSize(io.NewSectionReader(r, 0, size), int(min(max(size, 16), 1<<20)))
	var hdr [batchHeaderSize]byte
	var body, scratch []byte
	for res.validEnd < size {
		if size-res.validEnd < batchHeaderSize {
			res.reason = fmt.Errorf("%w: %d trailing bytes, less than a header", ErrCorrupt, size-res.validEnd)
			return res, zeroTail(&res, br, nil)
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return res, fmt.Errorf("read batch header at byte %d: %w", res.validEnd, err)
		}
		h, err := parseBatchHeader(hdr[:])
		if err != nil {
			res.reason = err
			return res, zeroTail(&res, br, hdr[:])
		}
		if h.size() > size-res.validEnd {
			res.reason = fmt.Errorf("%w: batch of %d bytes at byte %d runs past the end of the file", ErrCorrupt, h.size(), res.validEnd)
			return res, nil
		}
		if h.baseOffset != res.end {
			res.reason = fmt.Errorf("%w: batch at byte %d has base offset %d, want %d", ErrCorrupt, res.validEnd, h.baseOffset, res.end)
			return res, nil
		}
		if cap(body) < int(h.length) {
			body = make([]byte, h.length)
		}
		body = body[:h.length]
		if _, err := io.ReadFull(br, body); err != nil {
			return res, fmt.Errorf("read batch body at byte %d: %w", res.validEnd, err)
		}
		if got := batchCRC(hdr[:], body); got != h.crc {
			res.reason = fmt.Errorf("%w: batch at byte %d has checksum %#08x, header says %#08x", ErrCorrupt, res.validEnd, got, h.crc)
			return res, nil
		}
		records, err := batchRecords(h, body, scratch)
		if err != nil {
			res.reason = fmt.Errorf("batch at byte %d: %w", res.validEnd, err)
			return res, nil
		}
		if h.attrs != codecNone {
			scratch = records
		}
		if err := validateBatch(h, records); err != nil {
			res.reason = fmt.Errorf("batch at byte %d: %w", res.validEnd, err)
			return res, nil
		}
		res.validEnd += h.size()
		res.end = h.nextOffset()
		res.batches++
	}
	return res, nil
}

// zeroTail is called where scanning stopped at a bad header (hdr, already
// read; nil when fewer bytes than a header remained, still unread in br). When
// the header and everything after it are zeros, the stop is the end of the
// preallocated segment's data: it clears res.reason and sets res.zeroTail. A
// torn write inside preallocated space leaves bytes that are not all zero,
// and that tail is still reported (and truncated by recovery), so no stale
// bytes of an unacknowledged write can later line up behind new batches.
func zeroTail(res *scanResult, br *bufio.Reader, hdr []byte) error {
	if !allZero(hdr) {
		return nil
	}
	var buf [64 << 10]byte
	for {
		n, err := br.Read(buf[:])
		if !allZero(buf[:n]) {
			return nil
		}
		if err == io.EOF {
			res.reason, res.zeroTail = nil, true
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the tail after byte %d: %w", res.validEnd, err)
		}
	}
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// findBatch returns the byte position of the batch holding offset off in a
// segment of size bytes, reading headers front to back. Consumers call it
// once when they start; afterwards they follow batches sequentially.
func findBatch(r io.ReaderAt, size, off int64) (int64, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(r, 0, size), int(min(max(size, 16), 256<<10)))
	var hdr [batchHeaderSize]byte
	var pos int64
	for pos < size {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return 0, fmt.Errorf("read batch header at byte %d: %w", pos, err)
		}
		h, err := parseBatchHeader(hdr[:])
		if err != nil {
			return 0, fmt.Errorf("batch header at byte %d: %w", pos, err)
		}
		if off < h.nextOffset() {
			return pos, nil
		}
		if _, err := br.Discard(int(h.length)); err != nil {
			return 0, fmt.Errorf("skip batch at byte %d: %w", pos, err)
		}
		pos += h.size()
	}
	return pos, nil
}

// writeFullAt writes iovs at byte off with as few pwritev(2) calls as the
// kernel allows.
func writeFullAt(fd int, iovs [][]byte, off int64) error {
	for len(iovs) > 0 {
		chunk := iovs
		if len(chunk) > 1024 { // IOV_MAX
			chunk = chunk[:1024]
		}
		n, err := unix.Pwritev(fd, chunk, off)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		off += int64(n)
		// Drop what was written; a partial write leaves a tail of one buffer.
		for n > 0 && len(iovs) > 0 {
			if n >= len(iovs[0]) {
				n -= len(iovs[0])
				iovs = iovs[1:]
			} else {
				iovs[0] = iovs[0][n:]
				n = 0
			}
		}
	}
	return nil
}
