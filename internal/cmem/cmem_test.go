//go:build linux && cgo

package cmem

import (
	"testing"
	"time"

	// DuckDB's static library brings its jemalloc, as in the wirelog binary.
	_ "github.com/duckdb/duckdb-go/v2"
)

// TestArenasCappedAtLoad: threads that allocate from C at once share at
// most DefaultMallocArenas glibc arenas. Without the cap set at load glibc
// gives each of them an arena of its own (up to 8 per core), and the free
// memory each keeps is what issue 12 found in RSS.
func TestArenasCappedAtLoad(t *testing.T) {
	if v := Read().MallocArenas; v < 1 {
		t.Fatalf("malloc_info listed %d arenas; want at least glibc's main arena", v)
	}
	mallocOnThreads(8)
	if got := Read().MallocArenas; got > DefaultMallocArenas {
		t.Fatalf("8 threads allocating at once made %d arenas; the cap at load is %d", got, DefaultMallocArenas)
	}
}

// TestTuneReturnsFreedPagesAtOnce: after Tune, DuckDB's jemalloc keeps no
// freed pages (dirty or muzzy) in RSS; DuckDB's own setting is 1 s each.
func TestTuneReturnsFreedPagesAtOnce(t *testing.T) {
	before := Read()
	if !before.Jemalloc {
		t.Fatal("DuckDB's jemalloc (duckdb_je_mallctl) is not linked: the Je* stats and the decay setting have nothing to act on")
	}
	if err := Tune(); err != nil {
		t.Fatal(err)
	}
	s := Read()
	if s.JeDirtyDecayMs != DefaultJemallocDirtyDecay.Milliseconds() || s.JeMuzzyDecayMs != DefaultJemallocMuzzyDecay.Milliseconds() {
		t.Fatalf("jemalloc decay after Tune: dirty %d ms, muzzy %d ms; want %v, %v (before: %d, %d)",
			s.JeDirtyDecayMs, s.JeMuzzyDecayMs, DefaultJemallocDirtyDecay, DefaultJemallocMuzzyDecay, before.JeDirtyDecayMs, before.JeMuzzyDecayMs)
	}
	if s.JeResident == 0 || s.JeResident < s.JeActive || s.JeMapped < s.JeResident {
		t.Fatalf("jemalloc stats do not add up: resident %d, active %d, mapped %d", s.JeResident, s.JeActive, s.JeMapped)
	}
}

// TestTuneLeavesAnOperatorsJemallocConf: with DUCKDB_JE_MALLOC_CONF set,
// the operator's decay stands.
func TestTuneLeavesAnOperatorsJemallocConf(t *testing.T) {
	if err := setJemallocDecay(3*time.Second, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { setJemallocDecay(DefaultJemallocDirtyDecay, DefaultJemallocMuzzyDecay) })
	t.Setenv(EnvJemallocConf, "dirty_decay_ms:3000,muzzy_decay_ms:2000")
	if err := Tune(); err != nil {
		t.Fatal(err)
	}
	if s := Read(); s.JeDirtyDecayMs != 3000 || s.JeMuzzyDecayMs != 2000 {
		t.Fatalf("Tune with %s set changed the decay to dirty %d ms, muzzy %d ms", EnvJemallocConf, s.JeDirtyDecayMs, s.JeMuzzyDecayMs)
	}
}
