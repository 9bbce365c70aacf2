//go:build !linux || !cgo

package cmem

import "time"

// Without cgo on Linux there is no glibc or DuckDB jemalloc to read.
func read() Stats { return Stats{} }

func mallocOnThreads(int)                               {}
func setJemallocDecay(dirty, muzzy time.Duration) error { return nil }
