package pipeline

import (
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/wirelog/wirelog/internal/cmem"
	"github.com/wirelog/wirelog/internal/ingest"
	"github.com/wirelog/wirelog/internal/store"
)

// goHeapHeadroom is what the Go heap may hold beyond the ingest memory
// budget: the processor's batch, the tail, the query API's answers.
const goHeapHeadroom = 128 << 20

// setGoMemoryLimit gives the Go runtime a soft heap limit of the ingest
// memory budget plus headroom, unless GOMEMLIMIT is set. Without it the
// heap may grow to twice its live size before a collection (GOGC), so the
// garbage of requests just answered would double peak RSS; with it the
// collector runs earlier when it matters (measured: 456 → 340 MB peak RSS
// with four 15 MiB bodies at once, docs/BENCHMARKS.md). Under sustained
// load the live heap is 32-50 MB after a GC with Parquet segments (their
// buffers are mapped outside the heap, internal/store/segment_alloc.go;
// on the heap they made it 78-126 MB, and the heap goal then reached this
// limit): GOGC's goal of twice that stays below the limit, which binds only
// while ingest bodies fill the budget (docs/BENCHMARKS.md, "Issue 12:
// memory and store CPU, fourth session"). It is a soft limit: a larger live
// heap costs GC time, never a crash. DuckDB's memory and the segment
// buffers are outside the Go heap (--store-memory bounds DuckDB's).
func setGoMemoryLimit(cfg *Config) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	budget := cfg.Ingest.MemoryBudget
	if budget <= 0 {
		budget = ingest.DefaultMemoryBudget
	}
	limit := budget + goHeapHeadroom
	debug.SetMemoryLimit(limit)
	slog.Debug("Go heap soft limit set", "bytes", limit)
}

// tuneCAllocators sets up the C allocators beside the Go heap (DuckDB's
// jemalloc and glibc's malloc) for a long-running server, before DuckDB
// opens: issue 12's peak RSS counted 25 MiB of glibc arenas' free memory
// and 11-17 MiB of pages jemalloc had freed but not yet returned
// (internal/cmem). A failure costs memory, not correctness: logged.
func tuneCAllocators(log *slog.Logger) {
	if err := cmem.Tune(); err != nil {
		log.Warn("could not tune the C allocators; RSS may be higher than documented", "err", err)
	}
}

// runStoreMemory is DuckDB's memory limit when --store-memory is not
// given: a node that also ingests (`run`) shares its machine, and with
// segment files DuckDB holds only the token and trace indexes and the
// rollups, so it gets DefaultRunSegmentStoreMemory; with the table,
// DefaultRunStoreMemory. A processor alone keeps the store's default.
func runStoreMemory(cfg *Config) string {
	if cfg.Store.MemoryLimit != "" || cfg.Roles&RoleIngest == 0 {
		return cfg.Store.MemoryLimit
	}
	if cfg.Store.Format == "" || cfg.Store.Format == store.FormatTable {
		return DefaultRunStoreMemory
	}
	return DefaultRunSegmentStoreMemory
}
