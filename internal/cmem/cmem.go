// Package cmem answers what the C allocators beside the Go heap hold in a
// wirelog process, and sets them up for a long-running server. Two live in
// it: glibc's malloc (C++ `new` inside DuckDB, cgo) and the jemalloc that
// DuckDB's static library carries under the duckdb_je_ prefix (DuckDB's
// Allocator: its buffer pool blocks and most of its query memory). Neither
// is visible to the Go runtime or to duckdb_memory(), which counts what
// DuckDB's buffer manager holds, not what its allocator keeps resident.
package cmem

import (
	"os"
	"time"
)

// Stats is one reading of both allocators, in bytes. Zero where the
// allocator is absent (no jemalloc in this build, not glibc).
type Stats struct {
	// Malloc* are glibc's mallinfo2, all arenas together.
	// MallocArenaBytes is what the arenas took from the kernel (brk and
	// the thread arenas' heaps, not the chunks mapped one by one);
	// MallocInUseBytes is allocated, MallocFreeBytes free inside the arenas
	// (resident until trimmed or reused), MallocMmapBytes the large chunks
	// mapped on their own (unmapped when freed).
	MallocArenaBytes uint64 `json:"malloc_arena_bytes"`
	MallocInUseBytes uint64 `json:"malloc_in_use_bytes"`
	MallocFreeBytes  uint64 `json:"malloc_free_bytes"`
	MallocMmapBytes  uint64 `json:"malloc_mmap_bytes"`
	// MallocArenas is how many arenas glibc made (one per thread that
	// allocated at once, up to 8 per core unless capped).
	MallocArenas int `json:"malloc_arenas"`

	// Jemalloc says whether DuckDB's jemalloc is linked; the Je* fields
	// are its stats.* figures: allocated (in live allocations), active
	// (pages holding them), resident (pages it has touched and not given
	// back: active, metadata and dirty pages waiting for decay), mapped and
	// retained (virtual, returned to the kernel but kept mapped).
	Jemalloc       bool   `json:"jemalloc"`
	JeAllocated    uint64 `json:"je_allocated_bytes"`
	JeActive       uint64 `json:"je_active_bytes"`
	JeResident     uint64 `json:"je_resident_bytes"`
	JeMetadata     uint64 `json:"je_metadata_bytes"`
	JeMapped       uint64 `json:"je_mapped_bytes"`
	JeRetained     uint64 `json:"je_retained_bytes"`
	JeDirtyDecayMs int64  `json:"je_dirty_decay_ms"`
	JeMuzzyDecayMs int64  `json:"je_muzzy_decay_ms"`
}

// Read returns the allocators' figures now. It takes glibc's arena locks
// and refreshes jemalloc's stats epoch: cheap enough for a scrape, not for
// a hot path.
func Read() Stats { return read() }

// Defaults this package applies (Tune, and the cap set at load).
const (
	// DefaultMallocArenas caps glibc's malloc arenas (M_ARENA_MAX). glibc
	// gives every thread that allocates an arena of its own, up to 8 per
	// core, and each keeps the memory freed in it: DuckDB runs on whichever
	// Go thread calls it, so a `wirelog run` under sustained load had 13
	// arenas holding 25 MiB free between them; capped at 2, 8-9 MiB
	// (docs/BENCHMARKS.md, "Issue 12: peak RSS, fifth session"). What
	// DuckDB allocates most goes through its jemalloc, so the few glibc
	// callers left contend little for two arenas (CPU per event did not
	// move).
	DefaultMallocArenas = 2
	// DefaultJemallocDirtyDecay and DefaultJemallocMuzzyDecay are how long
	// DuckDB's jemalloc keeps pages it freed before it returns them to the
	// kernel: 0, at once. DuckDB sets 1 s each, so a page freed lived in
	// RSS 1 s as "dirty" and then up to 1 s more as "muzzy" (MADV_FREE:
	// still counted in RSS until the kernel is short of memory); under
	// sustained load that was a median of 16-17 MiB of jemalloc's resident
	// memory above what DuckDB had allocated, up to 64 MiB for a moment;
	// at 0, 4-6 MiB (its metadata). Returning pages costs an madvise per
	// freed extent: CPU per stored event did not move in the same A/B.
	DefaultJemallocDirtyDecay = 0 * time.Millisecond
	DefaultJemallocMuzzyDecay = 0 * time.Millisecond
)

// Environment variables an operator sets to tune an allocator by hand;
// this package leaves that allocator alone when one is set.
const (
	// EnvMallocArenas is glibc's own M_ARENA_MAX variable.
	EnvMallocArenas = "MALLOC_ARENA_MAX"
	// EnvGlibcTunables is glibc's tunables (glibc.malloc.arena_max=N).
	EnvGlibcTunables = "GLIBC_TUNABLES"
	// EnvJemallocConf is DuckDB's name for jemalloc's MALLOC_CONF.
	EnvJemallocConf = "DUCKDB_JE_MALLOC_CONF"
)

// Tune sets DuckDB's jemalloc up for a long-running server: freed pages
// go back to the kernel at once (DefaultJemallocDirtyDecay), unless
// EnvJemallocConf is set. glibc's arenas need no call: on Linux with cgo
// this package caps them at DefaultMallocArenas when the program loads,
// before any thread could attach to an arena of its own, unless
// EnvMallocArenas or an arena_max in EnvGlibcTunables is set.
func Tune() error {
	if os.Getenv(EnvJemallocConf) != "" {
		return nil
	}
	return setJemallocDecay(DefaultJemallocDirtyDecay, DefaultJemallocMuzzyDecay)
}
