package store

import (
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// BenchmarkSegmentBuffer is what buffering an event costs Write (the copy
// into a full segment's columns, sealing it as a record, releasing it),
// with the columns mapped outside the heap (segmentAllocator, what the
// store uses) and on the Go heap: mapped pages are fresh, so each 4 KB is
// a page fault the first time it is written.
func BenchmarkSegmentBuffer(b *testing.B) {
	rows := genRows(DefaultSegmentRows, "logs", 0, 0, t0, time.Millisecond)
	var raw int64
	for _, r := range rows {
		raw += int64(r.Bytes)
	}
	for _, m := range []struct {
		name string
		mem  memory.Allocator
	}{{"mapped", segmentAllocator{}}, {"goheap", memory.NewGoAllocator()}} {
		b.Run(m.name, func(b *testing.B) {
			saved := segmentMem
			segmentMem = m.mem
			defer func() { segmentMem = saved }()
			b.ReportAllocs()
			b.SetBytes(raw)
			cpu0 := processCPU(b)
			for range b.N {
				sb := newSegmentBuilderSized(segmentReserveRows(len(rows)), typicalTextSizes)
				for i := range rows {
					sb.add(&rows[i])
				}
				sb.freeze()
				sb.release()
			}
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(time.Microsecond)/float64(b.N*len(rows)), "cpu-µs/event")
		})
	}
}
