//go:build linux

package store

import (
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sys/unix"
)

// segmentMem allocates the segment buffers' columns (segmentAllocator).
var segmentMem memory.Allocator = segmentAllocator{}

// segmentMapped is the bytes segmentAllocator holds mapped, all stores of
// the process together (wirelog_store_segment_buffer_bytes).
var segmentMapped atomic.Int64

// segmentMmapMin is the smallest buffer the segment buffers take from the
// kernel directly instead of the Go heap: the column buffers of a full
// segment (122,880 events: 0.5-10 MB each), not those of the few events a
// quiet interval seals.
const segmentMmapMin = 256 << 10

// segmentAllocator holds the column buffers of the segments being filled
// and encoded outside the Go heap (issue 12, "memory"). On the heap, the
// two buffers of full segments (~30 MB each at 122,880 events) were most of
// the live heap, and the collector lets the heap grow to twice its live
// size before it runs (GOGC=100): each MB of segment buffer held two MB of
// RSS. Mapped here, a buffer's pages count in RSS once written to (the
// reservation for a full segment costs nothing until it fills), and none
// once its segment is written: munmap returns them at once.
// Every buffer must be released (segmentBuilder.release, the record's
// Release), or it stays mapped: TestSegmentBuffersAreReleased checks it.
type segmentAllocator struct{}

func (segmentAllocator) Allocate(size int) []byte {
	if size < segmentMmapMin {
		return make([]byte, size)
	}
	n := (size + unix.Getpagesize() - 1) &^ (unix.Getpagesize() - 1)
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		// Out of address space or map count: the heap still works
		// (Free's munmap of it fails harmlessly).
		return make([]byte, size)
	}
	// No MADV_HUGEPAGE: a buffer fills gradually, and its last 2 MB page
	// would count whole in RSS for each column.
	segmentMapped.Add(int64(n))
	return b[:size]
}

func (a segmentAllocator) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) {
		return b[:size]
	}
	nb := a.Allocate(size)
	copy(nb, b)
	a.Free(b)
	return nb
}

func (segmentAllocator) Free(b []byte) {
	if cap(b) >= segmentMmapMin {
		if unix.Munmap(b[:cap(b)]) == nil { // EINVAL for a heap fallback: nothing to do
			segmentMapped.Add(-int64(cap(b)))
		}
	}
}
