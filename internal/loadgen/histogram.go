package loadgen

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// A log-linear latency histogram in the HDR style: each power-of-two range
// of nanoseconds is split into 2^subBits linear sub-buckets, so any
// recorded value is off by less than 1/2^subBits (0.8 %) and a quantile
// costs one walk over a few thousand counters. Buckets are atomic so
// workers record without a lock while the progress line reads.
//
// No well-kept HDR library is among the Go modules served here, hence
// this one (about 100 lines, tested against an exact sort).
const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	// histMaxValue is the largest value kept exactly; longer latencies
	// (over 4.8 hours) are clamped to it.
	histMaxValue = 1<<44 - 1
)

var histBuckets = histIndex(histMaxValue) + 1

// histIndex maps a value to its bucket: values below histSub have their own
// bucket; above, the top histSubBits+1 bits select it.
func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1
	return (shift+1)<<histSubBits + int(v>>shift) - histSub
}

// histUpper is the highest value that falls into bucket i.
func histUpper(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	shift := i>>histSubBits - 1
	top := uint64(i&(histSub-1) + histSub)
	return (top+1)<<shift - 1
}

type histogram struct {
	counts []atomic.Uint64
	max    atomic.Uint64
	sum    atomic.Uint64
}

func newHistogram() *histogram {
	return &histogram{counts: make([]atomic.Uint64, histBuckets)}
}

func (h *histogram) record(d time.Duration) {
	v := uint64(max(d, 0))
	v = min(v, histMaxValue)
	h.counts[histIndex(v)].Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// histSnapshot is a consistent, non-atomic copy for computing quantiles.
type histSnapshot struct {
	counts []uint64
	total  uint64
	max    uint64
	sum    uint64
}

// snapshot copies the counts; with reset it also zeroes them (every
// concurrent record lands in exactly one of the snapshots).
func (h *histogram) snapshot(reset bool) histSnapshot {
	s := histSnapshot{counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		if reset {
			s.counts[i] = h.counts[i].Swap(0)
		} else {
			s.counts[i] = h.counts[i].Load()
		}
		s.total += s.counts[i]
	}
	if reset {
		s.max, s.sum = h.max.Swap(0), h.sum.Swap(0)
	} else {
		s.max, s.sum = h.max.Load(), h.sum.Load()
	}
	return s
}

// quantile returns the value at q (0..1): the upper bound of the bucket
// holding the ceil(q·total)-th value, capped at the largest value seen.
// It returns 0 for an empty histogram.
func (s histSnapshot) quantile(q float64) time.Duration {
	if s.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(s.total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range s.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(histUpper(i), s.max))
		}
	}
	return time.Duration(s.max)
}

func (s histSnapshot) mean() time.Duration {
	if s.total == 0 {
		return 0
	}
	return time.Duration(s.sum / s.total)
}
