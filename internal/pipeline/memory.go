package pipeline

import (
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/wirelog/wirelog/internal/ingest"
)

// goHeapHeadroom is what the Go heap may hold beyond the ingest memory
// budget: the processor's batch, the tail, the query API's answers.
const goHeapHeadroom = 128 << 20

// setGoMemoryLimit gives the Go runtime a soft heap limit of the ingest
// memory budget plus headroom, unless GOMEMLIMIT is set. Without it the
// heap may grow to twice its live size before a collection (GOGC), so the
// garbage of requests just answered would double peak RSS; with it the
// collector runs earlier when it matters (measured: 456 → 340 MB peak RSS
// with four 15 MiB bodies at once, docs/BENCHMARKS.md). Under steady load
// the live heap is ~30 MB, far below it. It is a soft limit: a larger live
// heap costs GC time, never a crash. DuckDB's memory is outside the Go heap
// (--store-memory bounds it).
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
