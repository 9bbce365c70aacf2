package store

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// tableAppendEvents is the plain table Appender that BenchmarkWrite
// compares with the query Appender of appendEvents: the driver marshals the
// JSON column with encoding/json, so attrs are validated in Go.
func tableAppendEvents(conn driver.Conn, rows []Row, keep []bool) (err error) {
	app, err := duckdb.NewAppender(conn, "", "", "events")
	if err != nil {
		return err
	}
	defer func() {
		if cerr := app.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	for i := range rows {
		if !keep[i] {
			continue
		}
		r := &rows[i]
		e := &r.Event
		var attrs driver.Value
		if len(e.Attrs) > 0 {
			if json.Valid(e.Attrs) {
				attrs = json.RawMessage(e.Attrs)
			} else {
				attrs = string(e.Attrs)
			}
		}
		if err := app.AppendRow(r.Topic, r.Partition, r.Offset, e.Time, e.Service, e.Level.String(),
			e.Message, e.Host, e.TraceID, e.SpanID, e.Tenant, attrs, int32(r.Bytes)); err != nil {
			return err
		}
	}
	return nil
}

// insertEvents is the alternative to the Appender that BenchmarkWrite
// measures: multi-row INSERT ... VALUES statements of insertChunk rows.
func insertEvents(conn driver.Conn, rows []Row, keep []bool) error {
	const insertChunk = 500
	const cols = 13
	ex := conn.(driver.ExecerContext)
	var sb strings.Builder
	args := make([]driver.NamedValue, 0, insertChunk*cols)
	flush := func(n int) error {
		if n == 0 {
			return nil
		}
		sb.Reset()
		sb.WriteString(`INSERT INTO events VALUES `)
		for i := range n {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteByte('(')
			for c := range cols {
				if c > 0 {
					sb.WriteByte(',')
				}
				fmt.Fprintf(&sb, "$%d", i*cols+c+1)
			}
			sb.WriteByte(')')
		}
		_, err := ex.ExecContext(context.Background(), sb.String(), args)
		args = args[:0]
		return err
	}
	n := 0
	for i := range rows {
		if !keep[i] {
			continue
		}
		r := &rows[i]
		e := &r.Event
		var attrs driver.Value
		if len(e.Attrs) > 0 {
			attrs = string(e.Attrs)
		}
		for _, v := range []driver.Value{r.Topic, int64(r.Partition), r.Offset, e.Time, e.Service, e.Level.String(),
			e.Message, e.Host, e.TraceID, e.SpanID, e.Tenant, attrs, int64(r.Bytes)} {
			args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: v})
		}
		n++
		if n == insertChunk {
			if err := flush(n); err != nil {
				return err
			}
			n = 0
		}
	}
	return flush(n)
}

func BenchmarkWrite(b *testing.B) {
	for _, v := range []struct {
		name       string
		fn         func(driver.Conn, []Row, []bool) error
		checkpoint string
		threads    int // Options.Threads
	}{
		// threads -1: every core, DuckDB's own default and the store's before DefaultThreads.
		{"default", defaultAppendEvents, "", 0}, // Arrow with -tags duckdb_arrow, else the query Appender
		{"default-allcores", defaultAppendEvents, "", -1},
		{"query-appender", appendEvents, "", 0},
		{"query-appender-allcores", appendEvents, "", -1},
		{"query-appender-ckpt16MB", appendEvents, "16MB", -1}, // DuckDB's default checkpoint_threshold
		{"table-appender", tableAppendEvents, "", -1},
		{"insert", insertEvents, "", -1},
	} {
		for _, batch := range []int{1000, 4096, 10000} {
			b.Run(fmt.Sprintf("%s/batch=%d", v.name, batch), func(b *testing.B) {
				st, err := Open(tempDB(b), Options{DisableMaintenance: true, Retention: -1, CheckpointThreshold: v.checkpoint, Threads: v.threads})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				st.appendEvents = v.fn
				rows := genRows(batch, "logs", 0, 0, time.Now(), 100*time.Microsecond)
				var size int64
				for _, r := range rows {
					size += int64(r.Bytes)
				}
				b.SetBytes(size)
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := processCPU(b)
				off := int64(0)
				for i := 0; i < b.N; i++ {
					// New offsets each time, so every batch is new to the store.
					for j := range rows {
						rows[j].Offset = off + int64(j)
					}
					off += int64(batch)
					if _, err := st.Write(context.Background(), rows); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
				// CPU of the whole process (DuckDB's threads included) per
				// event: on a shared machine it is steadier than wall time.
				b.ReportMetric(float64(processCPU(b)-cpu0)/float64(time.Microsecond)/float64(b.N*batch), "cpu-µs/event")
			})
		}
	}
}

// processCPU is the user+system CPU time the process has used.
func processCPU(b testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bigStore is one store with benchRows events over one hour, shared by the
// query benchmarks (built once per test binary, removed by TestMain).
const benchRows = 1_000_000

var (
	bigOnce sync.Once
	bigSt   *Store
	bigErr  error
	bigDir  string
	bigT0   = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func bigStore(b *testing.B) *Store {
	bigOnce.Do(func() {
		bigDir, bigErr = os.MkdirTemp("", "wirelog-store-bench-")
		if bigErr != nil {
			return
		}
		bigSt, bigErr = Open(filepath.Join(bigDir, "bench.duckdb"), Options{DisableMaintenance: true, Retention: -1})
		if bigErr != nil {
			return
		}
		const batch = 10000
		step := time.Hour / benchRows
		for i := 0; i < benchRows; i += batch {
			rows := genRows(batch, "logs", 0, int64(i), bigT0.Add(time.Duration(i)*step), step)
			if _, bigErr = bigSt.Write(context.Background(), rows); bigErr != nil {
				return
			}
		}
		bigErr = bigSt.Compact(context.Background())
	})
	if bigErr != nil {
		b.Fatalf("build the %d-row store: %v", benchRows, bigErr)
	}
	return bigSt
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bigSt != nil {
		bigSt.Close()
	}
	if bigDir != "" {
		os.RemoveAll(bigDir)
	}
	os.Exit(code)
}

func BenchmarkSearch(b *testing.B) {
	st := bigStore(b)
	probe := genRows(1, "logs", 0, 777_777, bigT0, 0)[0].Event
	for _, c := range []struct {
		name string
		req  SearchRequest
	}{
		{"newest100", SearchRequest{}},
		{"service+level", SearchRequest{Service: "payments", Level: "error"}},
		{"query", SearchRequest{Query: "orders/77777"}},
		{"trace_id", SearchRequest{TraceID: probe.TraceID}},
		{"window5m+query", SearchRequest{From: bigT0.Add(20 * time.Minute), To: bigT0.Add(25 * time.Minute), Query: "status=200 in 42ms"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for i := 0; i < b.N; i++ {
				res, err := st.Search(context.Background(), c.req)
				if err != nil {
					b.Fatal(err)
				}
				n = len(res.Events)
			}
			if n == 0 {
				b.Fatalf("%s found nothing; the benchmark must measure a real answer", c.name)
			}
		})
	}
}

func BenchmarkStats(b *testing.B) {
	st := bigStore(b)
	for _, c := range []struct {
		name string
		req  StatsRequest
	}{
		{"all", StatsRequest{}},
		{"window10m", StatsRequest{From: bigT0.Add(10 * time.Minute), To: bigT0.Add(20 * time.Minute)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				s, err := st.Stats(context.Background(), c.req)
				if err != nil {
					b.Fatal(err)
				}
				if s.Events == 0 {
					b.Fatal("no events")
				}
			}
		})
	}
}

func BenchmarkRollups(b *testing.B) {
	st := bigStore(b)
	req := RollupsRequest{From: bigT0, To: bigT0.Add(time.Hour), Step: 10 * time.Second, By: []string{ByService, ByLevel}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := st.Rollups(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}
