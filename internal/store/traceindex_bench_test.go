package store

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
)

// bulkRows fills rows with events first.. of one partition at 60,000 events/s
// of event time from start: four consecutive events per trace, random trace
// ids, a message of ~70 bytes and two attributes. It is the bulk generator
// of the trace benchmarks: cheaper than genRows (no fmt), same shape.
func bulkRows(rows []Row, first int64, start time.Time) {
	const perSec = 60000
	var idBuf [16]byte
	for i := range rows {
		off := first + int64(i)
		trace := uint64(off / 4)
		x, y := mix64(trace+1), mix64(trace+0x51ed27)
		for j := 0; j < 8; j++ {
			idBuf[j], idBuf[8+j] = byte(x>>(8*j)), byte(y>>(8*j))
		}
		span := mix64(uint64(off) ^ 0xabcdef)
		var sb [8]byte
		for j := range sb {
			sb[j] = byte(span >> (8 * j))
		}
		msg := make([]byte, 0, 80)
		msg = append(msg, "GET /api/v1/orders/"...)
		msg = strconv.AppendInt(msg, off%100000, 10)
		msg = append(msg, " completed status=200 in "...)
		msg = strconv.AppendInt(msg, off%97, 10)
		msg = append(msg, "ms"...)
		attrs := make([]byte, 0, 48)
		attrs = append(attrs, `{"latency_ms":`...)
		attrs = strconv.AppendInt(attrs, off%97, 10)
		attrs = append(attrs, `,"status":200}`...)
		rows[i] = Row{Topic: "logs", Partition: 0, Offset: off, Bytes: 250, Event: event.Event{
			Time:    start.Add(time.Duration(off) * time.Second / perSec),
			Service: testServices[off%int64(len(testServices))],
			Level:   testLevels[off%int64(len(testLevels))],
			Message: string(msg),
			Host:    "node-" + strconv.Itoa(int(off%7)) + ".cluster.local",
			TraceID: hex.EncodeToString(idBuf[:]),
			SpanID:  hex.EncodeToString(sb[:]),
			Attrs:   attrs,
		}}
	}
}

// bulkTraceID is the trace id bulkRows gives the events of trace tr.
func bulkTraceID(tr int64) string {
	var idBuf [16]byte
	x, y := mix64(uint64(tr)+1), mix64(uint64(tr)+0x51ed27)
	for j := 0; j < 8; j++ {
		idBuf[j], idBuf[8+j] = byte(x>>(8*j)), byte(y>>(8*j))
	}
	return hex.EncodeToString(idBuf[:])
}

// buildBulkStore writes n bulk rows through Store.Write in batches of
// 20,000 (the processor's batch), checkpointing as the processor does, so
// the trace index is built by the write path itself.
func buildBulkStore(b *testing.B, st *Store, n int) {
	ctx := context.Background()
	const batch = 20000
	rows := make([]Row, batch)
	start := time.Now()
	cpu0 := processCPU(b)
	for off := 0; off < n; off += batch {
		r := rows[:min(batch, n-off)]
		bulkRows(r, int64(off), bigT0)
		if _, err := st.Write(ctx, r); err != nil {
			b.Fatal(err)
		}
		if st.CheckpointDue() {
			if err := st.Checkpoint(ctx); err != nil {
				b.Fatal(err)
			}
		}
		if (off/batch)%250 == 0 {
			fmt.Fprintf(os.Stderr, "trace bench: %d of %d events stored in %s\n", off+len(r), n, time.Since(start).Round(time.Second))
		}
	}
	if err := st.Compact(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %d events in %s, %.2f CPU-µs/event", n, time.Since(start).Round(time.Second),
		float64(processCPU(b)-cpu0)/float64(time.Microsecond)/float64(n))
}

// BenchmarkTraceLookup times Search by trace id over a store of
// WIRELOG_TRACE_BENCH_ROWS events (default 1,000,000; the figure
// is 54,000,000), with the trace index ("index") and with a full scan of
// the same store ("scan", the code path a store without the index takes),
// alternating, and reports p50/p99 of each. WIRELOG_TRACE_BENCH_DIR keeps
// the built store for the next run (building 54M events takes minutes);
// WIRELOG_TRACE_BENCH_UHUGEINT=1 adds "uhugeint": a scan of the same ids
// stored as UHUGEINT, the other candidate. WIRELOG_TRACE_BENCH_MODES=index
// runs only the given modes (comma-separated): lookups through the index
// without full scans between them evicting its pages from DuckDB's buffer
// pool.
//
//	WIRELOG_TRACE_BENCH_ROWS=54000000 WIRELOG_TRACE_BENCH_DIR=/var/tmp/wl-trace \
//	  go test -run '^$' -bench TraceLookup -benchtime 200x -timeout 3h ./internal/store
func BenchmarkTraceLookup(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("WIRELOG_TRACE_BENCH_ROWS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100000 {
			b.Fatalf("WIRELOG_TRACE_BENCH_ROWS=%q: want a number >= 100000", v)
		}
	}
	dir := os.Getenv("WIRELOG_TRACE_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("trace-%d.duckdb", n))
	done := path + ".built"
	_, statErr := os.Stat(done)
	built := statErr == nil
	if !built {
		for _, f := range Files(path) {
			os.Remove(f)
			os.Remove(f + ".wal")
		}
	}
	t := time.Now()
	st, err := Open(path, Options{DisableMaintenance: true, Retention: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.Logf("opened in %s", time.Since(t).Round(time.Millisecond))
	if !built {
		buildBulkStore(b, st, n)
		if err := os.WriteFile(done, nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	var size, bloom int64
	for _, f := range Files(path) {
		for _, g := range []string{f, f + ".wal"} {
			if fi, err := os.Stat(g); err == nil {
				size += fi.Size()
			}
		}
	}
	if err := st.db.QueryRow(`SELECT count(*) * 64 FROM trace_bloom`).Scan(&bloom); err != nil {
		b.Fatal(err)
	}
	b.Logf("store on disk: %.1f MB for %d events (bloom chunks %.1f MB)", float64(size)/1e6, n, float64(bloom)/1e6)
	if os.Getenv("WIRELOG_TRACE_BENCH_UHUGEINT") != "" {
		t := time.Now()
		_, err := st.db.Exec(`CREATE TABLE IF NOT EXISTS wl_a.main.trace_u AS SELECT ts, ` + uhugeintOf("trace_id") + ` AS t FROM events`)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("UHUGEINT copy of the trace ids in %s", time.Since(t).Round(time.Second))
	}
	modes := []string{"index", "scan"}
	if os.Getenv("WIRELOG_TRACE_BENCH_UHUGEINT") != "" {
		modes = append(modes, "uhugeint")
	}
	if v := os.Getenv("WIRELOG_TRACE_BENCH_MODES"); v != "" {
		modes = strings.Split(v, ",")
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	lat := map[string][]time.Duration{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := bulkTraceID(rng.Int64N(int64(n / 4)))
		for _, mode := range modes {
			t, cpu0 := time.Now(), processCPU(b)
			var got int
			switch mode {
			case "uhugeint":
				rows, err := st.db.QueryContext(ctx, `SELECT ts FROM wl_a.main.trace_u WHERE t = `+uhugeintOf("$1")+` ORDER BY ts DESC LIMIT 101`, id)
				if err != nil {
					b.Fatal(err)
				}
				for rows.Next() {
					got++
				}
				rows.Close()
			default:
				st.traces.mu.Lock()
				st.traces.unindexed[0] = mode == "scan"
				st.traces.mu.Unlock()
				res, err := st.Search(ctx, SearchRequest{TraceID: id})
				if err != nil {
					b.Fatal(err)
				}
				got = len(res.Events)
			}
			lat[mode] = append(lat[mode], time.Since(t))
			// CPU time too: on a loaded machine the wall clock includes
			// the time the lookup waited for a core.
			lat[mode+"-cpu"] = append(lat[mode+"-cpu"], processCPU(b)-cpu0)
			if got != 4 {
				b.Fatalf("%s: trace %s has %d events, want 4", mode, id, got)
			}
		}
	}
	b.StopTimer()
	for mode, l := range lat {
		slices.Sort(l)
		b.ReportMetric(float64(l[len(l)/2].Microseconds())/1000, mode+"-p50-ms")
		b.ReportMetric(float64(l[(len(l)*99)/100].Microseconds())/1000, mode+"-p99-ms")
	}
	st.traces.unindexed[0] = false
}

// BenchmarkTraceIndexWrite measures what each trace-id structure costs the
// write path, in CPU per stored event (checkpoints and Close included):
// none (the index hook off), bloom (the store's trace index), art (hook
// off, DuckDB's ART index on trace_id in both twins). Batches of 2,048,
// checkpointed as the processor does; -count alternates the variants.
//
//	go test -run '^$' -bench TraceIndexWrite -benchtime 1x -count 3 ./internal/store
func BenchmarkTraceIndexWrite(b *testing.B) {
	const total, batch = 491520, 2048 // four row groups
	all := make([]Row, total)
	bulkRows(all, 0, bigT0)
	for _, v := range []string{"none", "bloom-trace-only", "bloom", "art"} {
		b.Run(v, func(b *testing.B) {
			b.ReportAllocs()
			var cpu, longest time.Duration
			var mem int64
			for range b.N {
				st, err := Open(tempDB(b), Options{DisableMaintenance: true, Retention: -1})
				if err != nil {
					b.Fatal(err)
				}
				// bloom: trace ids and message words (tokenindex.go).
				st.traces.off = v != "bloom" && v != "bloom-trace-only"
				st.traces.noTokens = v == "bloom-trace-only"
				for i := range twins {
					st.traces.open[i] = st.traces.newBlock()
				}
				if v == "art" {
					for _, tw := range twins {
						if _, err := st.db.Exec(fmt.Sprintf(`CREATE INDEX events_trace_id ON %s.main.events (trace_id)`, tw)); err != nil {
							b.Fatal(err)
						}
					}
				}
				cpu0 := processCPU(b)
				for i := 0; i < total; i += batch {
					s := time.Now()
					if _, err := st.Write(context.Background(), all[i:i+batch]); err != nil {
						b.Fatal(err)
					}
					longest = max(longest, time.Since(s))
					if st.CheckpointDue() {
						if err := st.Checkpoint(context.Background()); err != nil {
							b.Fatal(err)
						}
					}
				}
				var m int64
				if err := st.db.QueryRow(`SELECT sum(memory_usage_bytes)::BIGINT FROM duckdb_memory()`).Scan(&m); err != nil {
					b.Fatal(err)
				}
				mem = max(mem, m)
				if err := st.Close(); err != nil {
					b.Fatal(err)
				}
				cpu += processCPU(b) - cpu0
			}
			b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(b.N*total), "cpu-µs/event")
			b.ReportMetric(float64(longest)/float64(time.Millisecond), "max-write-ms")
			b.ReportMetric(float64(mem)/1e6, "duckdb-MB")
		})
	}
}

// BenchmarkTraceBlockAdd is the Go side of the index per event: hash the
// id, set its bits, widen the block's time range.
func BenchmarkTraceBlockAdd(b *testing.B) {
	rows := make([]Row, 4096)
	bulkRows(rows, 0, bigT0)
	blk := newTraceBlock()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	for i := 0; i < b.N; i++ {
		r := &rows[i%len(rows)]
		blk.add(r.Event.Time, r.Event.TraceID, r.Event.Message)
	}
	// CPU time, not wall: on a loaded machine the wall clock counts the
	// time this benchmark waited for a core.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/event")
}

// uhugeintOf is the SQL that turns a 32-hex-digit id into a UHUGEINT (DuckDB
// casts '0x…' strings to 64-bit integers, not to 128-bit ones).
func uhugeintOf(expr string) string {
	return fmt.Sprintf(`((('0x' || substr(%[1]s, 1, 16))::UBIGINT::UHUGEINT << 64) | ('0x' || substr(%[1]s, 17, 16))::UBIGINT::UHUGEINT)`, expr)
}
