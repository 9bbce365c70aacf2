//go:build !agent

package main

import (
	"net/http"
	"testing"

	"github.com/wirelog/wirelog/internal/cmem"
	"github.com/wirelog/wirelog/internal/pipeline"
)

// storeMemory is what GET /debug/store/memory answers (--pprof).
type storeMemory struct {
	DuckDB struct {
		Limit string `json:"memory_limit"`
	} `json:"duckdb"`
	C cmem.Stats `json:"c"`
}

// TestRunMemoryDefaults: a `wirelog run` with default flags gives DuckDB
// the segment format's memory limit, has its jemalloc return freed pages at
// once and glibc's arenas capped (issue 12's peak RSS); with the table
// format DuckDB keeps the larger limit the table needs (an explicit
// --store-memory: TestStoreMemoryEndpoint). Each check fails if its default
// is undone.
func TestRunMemoryDefaults(t *testing.T) {
	for _, c := range []struct {
		name, limit string
		flags       []string
	}{
		{"segments (default)", pipeline.DefaultRunSegmentStoreMemory, nil},
		{"table", pipeline.DefaultRunStoreMemory, []string{"--store-format", "table"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := startNode(t, t.TempDir(), append([]string{"--pprof"}, c.flags...)...)
			// Events through the processor, so DuckDB and the C
			// allocators have run on the node's threads.
			if code, out, _ := n.post("application/x-ndjson", "", []byte(`{"message":"one","service":"mem"}`+"\n"+`{"message":"two","service":"mem"}`+"\n")); code != http.StatusAccepted {
				t.Fatalf("ingest: %d %v", code, out)
			}
			var m storeMemory
			if code := n.getJSON("/debug/store/memory", &m); code != 200 {
				t.Fatalf("GET /debug/store/memory: %d", code)
			}
			if m.DuckDB.Limit != c.limit {
				t.Errorf("DuckDB memory_limit %q; want %q", m.DuckDB.Limit, c.limit)
			}
			if !m.C.Jemalloc {
				t.Fatal("the binary reports no DuckDB jemalloc: the allocator settings have nothing to act on")
			}
			if m.C.JeDirtyDecayMs != cmem.DefaultJemallocDirtyDecay.Milliseconds() || m.C.JeMuzzyDecayMs != cmem.DefaultJemallocMuzzyDecay.Milliseconds() {
				t.Errorf("jemalloc keeps freed pages %d ms dirty, %d ms muzzy; want %v, %v", m.C.JeDirtyDecayMs, m.C.JeMuzzyDecayMs,
					cmem.DefaultJemallocDirtyDecay, cmem.DefaultJemallocMuzzyDecay)
			}
			if m.C.MallocArenas < 1 || m.C.MallocArenas > cmem.DefaultMallocArenas {
				t.Errorf("glibc has %d malloc arenas; want 1-%d", m.C.MallocArenas, cmem.DefaultMallocArenas)
			}
			// The same parts in /metrics, for an operator without --pprof.
			if v := metricValue(t, n, `wirelog_c_allocator_arenas{allocator="glibc"}`); v < 1 || v > cmem.DefaultMallocArenas {
				t.Errorf("/metrics wirelog_c_allocator_arenas{glibc} = %v; want 1-%d", v, cmem.DefaultMallocArenas)
			}
			if v := metricValue(t, n, `wirelog_c_allocator_resident_bytes{allocator="jemalloc"}`); v <= 0 {
				t.Errorf("/metrics wirelog_c_allocator_resident_bytes{jemalloc} = %v; want DuckDB's jemalloc's resident bytes", v)
			}
		})
	}
}
