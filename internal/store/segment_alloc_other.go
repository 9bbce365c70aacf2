//go:build !linux

package store

import (
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// segmentMem is the Go heap where there is no segmentAllocator
// (segment_alloc.go is Linux's).
var segmentMem memory.Allocator = memory.NewGoAllocator()

// segmentMapped stays 0: nothing is mapped outside the heap.
var segmentMapped atomic.Int64
