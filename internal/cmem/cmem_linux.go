//go:build linux && cgo

package cmem

/*
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/types.h>

// DuckDB's static library for linux/amd64 links jemalloc with the
// duckdb_je_ prefix. Weak, so a build without it (another platform, a
// test binary without DuckDB) still links and reports no jemalloc.
extern int duckdb_je_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen) __attribute__((weak));

static int cmem_have_je(void) { return duckdb_je_mallctl != NULL; }

static int cmem_je_epoch(void) {
	uint64_t e = 1;
	size_t l = sizeof(e);
	return duckdb_je_mallctl("epoch", &e, &l, &e, l);
}

static size_t cmem_je_size(const char *name) {
	size_t v = 0, l = sizeof(v);
	if (duckdb_je_mallctl(name, &v, &l, NULL, 0) != 0) return 0;
	return v;
}

static ssize_t cmem_je_ssize(const char *name) {
	ssize_t v = -2;
	size_t l = sizeof(v);
	if (duckdb_je_mallctl(name, &v, &l, NULL, 0) != 0) return -2;
	return v;
}

static int cmem_je_set_ssize(const char *name, ssize_t v) {
	return duckdb_je_mallctl(name, NULL, NULL, &v, sizeof(v));
}

static unsigned cmem_je_unsigned(const char *name) {
	unsigned v = 0;
	size_t l = sizeof(v);
	if (duckdb_je_mallctl(name, &v, &l, NULL, 0) != 0) return 0;
	return v;
}

#ifdef __GLIBC__
typedef struct {
	size_t arena, hblkhd, uordblks, fordblks;
} cmem_mi;

static cmem_mi cmem_mallinfo(void) {
	struct mallinfo2 m = mallinfo2();
	cmem_mi r = {m.arena, m.hblkhd, m.uordblks, m.fordblks};
	return r;
}

// cmem_arenas counts the <heap nr=...> elements of malloc_info: one per
// arena.
static int cmem_arenas(void) {
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL) return -1;
	if (malloc_info(0, f) != 0) { fclose(f); free(buf); return -1; }
	fclose(f);
	int n = 0;
	for (char *p = buf; (p = strstr(p, "<heap nr=")) != NULL; p++) n++;
	free(buf);
	return n;
}

// CMEM_ARENA_MAX mirrors DefaultMallocArenas (a compile-time check below
// keeps them equal).
#define CMEM_ARENA_MAX 2

// cmem_cap_arenas caps glibc's arenas when the program is loaded, before
// the Go runtime starts its threads: each thread attaches to an arena on
// its first malloc or free (glibc's per-thread cache), so a cap set later
// leaves the arenas of the threads already running. glibc's own variables
// win when set.
__attribute__((constructor)) static void cmem_cap_arenas(void) {
	const char *t = getenv("GLIBC_TUNABLES");
	if (getenv("MALLOC_ARENA_MAX") != NULL || (t != NULL && strstr(t, "arena_max") != NULL)) return;
	mallopt(M_ARENA_MAX, CMEM_ARENA_MAX);
}

// cmem_touch allocates and frees once, as any C caller does: glibc
// attaches the calling thread to an arena on its first allocation.
static void cmem_touch(size_t n) {
	char *p = malloc(n);
	if (p != NULL) {
		memset(p, 1, n);
		free(p);
	}
}
#else
typedef struct { size_t arena, hblkhd, uordblks, fordblks; } cmem_mi;
static cmem_mi cmem_mallinfo(void) { cmem_mi r = {0, 0, 0, 0}; return r; }
static int cmem_arenas(void) { return 0; }
#define CMEM_ARENA_MAX 2
static void cmem_touch(size_t n) {}
#endif
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// DefaultMallocArenas and the constructor's CMEM_ARENA_MAX must agree:
// either difference is a negative constant, which does not compile as uint.
const _ = uint(DefaultMallocArenas-C.CMEM_ARENA_MAX) + uint(C.CMEM_ARENA_MAX-DefaultMallocArenas)

// mallocOnThreads makes n OS threads allocate from C at the same time, as
// DuckDB does when n goroutines call into it: each thread is attached to an
// arena of its own while glibc may make more. For tests.
func mallocOnThreads(n int) {
	var ready, done sync.WaitGroup
	ready.Add(n)
	done.Add(n)
	start := make(chan struct{})
	for range n {
		go func() {
			defer done.Done()
			// Locked and never unlocked: the thread exits with the
			// goroutine, so no later test reuses it.
			runtime.LockOSThread()
			ready.Done()
			<-start
			C.cmem_touch(64 << 10)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

func setJemallocDecay(dirty, muzzy time.Duration) error {
	if C.cmem_have_je() == 0 {
		return nil
	}
	set := func(name string, d time.Duration) error {
		cs := C.CString(name)
		defer C.free(unsafe.Pointer(cs))
		if rc := C.cmem_je_set_ssize(cs, C.ssize_t(d.Milliseconds())); rc != 0 {
			return fmt.Errorf("jemalloc %s = %d ms: error %d", name, d.Milliseconds(), int(rc))
		}
		return nil
	}
	// The default of arenas made from now on, then every existing one.
	if err := set("arenas.dirty_decay_ms", dirty); err != nil {
		return err
	}
	if err := set("arenas.muzzy_decay_ms", muzzy); err != nil {
		return err
	}
	n := jeUnsigned("arenas.narenas")
	for i := uint(0); i < n; i++ {
		// An arena index that was never initialized answers EFAULT: skip it.
		_ = set(fmt.Sprintf("arena.%d.dirty_decay_ms", i), dirty)
		_ = set(fmt.Sprintf("arena.%d.muzzy_decay_ms", i), muzzy)
	}
	return nil
}

func jeUnsigned(name string) uint {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	return uint(C.cmem_je_unsigned(cs))
}

func read() Stats {
	mi := C.cmem_mallinfo()
	s := Stats{
		MallocArenaBytes: uint64(mi.arena),
		MallocInUseBytes: uint64(mi.uordblks),
		MallocFreeBytes:  uint64(mi.fordblks),
		MallocMmapBytes:  uint64(mi.hblkhd),
		MallocArenas:     int(C.cmem_arenas()),
	}
	if C.cmem_have_je() == 0 {
		return s
	}
	s.Jemalloc = true
	C.cmem_je_epoch()
	s.JeAllocated = jeSize("stats.allocated")
	s.JeActive = jeSize("stats.active")
	s.JeResident = jeSize("stats.resident")
	s.JeMetadata = jeSize("stats.metadata")
	s.JeMapped = jeSize("stats.mapped")
	s.JeRetained = jeSize("stats.retained")
	s.JeDirtyDecayMs = jeSsize("arenas.dirty_decay_ms")
	s.JeMuzzyDecayMs = jeSsize("arenas.muzzy_decay_ms")
	return s
}

func jeSize(name string) uint64 {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	return uint64(C.cmem_je_size(cs))
}

func jeSsize(name string) int64 {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	return int64(C.cmem_je_ssize(cs))
}
