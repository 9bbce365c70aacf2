package storagetest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/storage"
	"github.com/wirelog/wirelog/internal/storage/victorialogs"
	"github.com/wirelog/wirelog/internal/storage/victorialogs/vltest"
	"github.com/wirelog/wirelog/internal/store"
)

// The store benchmarks compare DuckDB and a VictoriaLogs cluster (two
// storage nodes behind a front node, started here) on the same rows:
// loadgen-shaped events, ~190 B of JSON each, spread over the last hour.
//
//	go test -run '^$' -bench . -benchtime 5x ./internal/storage/storagetest/
//
// WIRELOG_BENCH_EVENTS sets how many rows BenchmarkQueries loads first
// (default 1,000,000).

var (
	services = []string{"checkout", "payments", "search", "auth", "inventory", "shipping", "email", "gateway"}
	levels   = []event.Level{event.LevelInfo, event.LevelInfo, event.LevelInfo, event.LevelDebug, event.LevelWarn, event.LevelError}
)

// benchRows makes n rows of partition p from offset first, over [start, start+span).
func benchRows(n int, p int32, first int64, start time.Time, span time.Duration) []store.Row {
	rows := make([]store.Row, n)
	for i := range rows {
		o := first + int64(i)
		// Sizes vary as real ones do, so summing them costs what it does.
		rows[i] = store.Row{Topic: "events", Partition: p, Offset: o, Bytes: 150 + int(o%97), Event: event.Event{
			Time:    start.Add(time.Duration(int64(span) / int64(n) * int64(i))),
			Service: services[o%int64(len(services))],
			Level:   levels[o%int64(len(levels))],
			Message: fmt.Sprintf("GET /api/v1/orders/%d completed status=200 in %dms", o, o%97),
			Host:    fmt.Sprintf("node-%d", o%16),
			TraceID: fmt.Sprintf("%032x", o*7919),
			Tenant:  []string{"", "acme"}[o%2],
			Attrs:   []byte(fmt.Sprintf(`{"latency_ms":%d,"status":200}`, o%97)),
		}}
	}
	return rows
}

// checkpointer is the DuckDB store's checkpoint schedule (process.Checkpointer).
type checkpointer interface {
	CheckpointDue() bool
	Checkpoint(ctx context.Context) error
}

type opener struct {
	name string
	open func(b *testing.B) (storage.Store, func())
}

func openers(streamFields ...[]string) []opener {
	out := []opener{{"duckdb", func(b *testing.B) (storage.Store, func()) {
		st, err := store.Open(b.TempDir()+"/bench.duckdb", store.Options{DisableMaintenance: true})
		if err != nil {
			b.Fatal(err)
		}
		return st, func() {}
	}}}
	if len(streamFields) == 0 {
		streamFields = [][]string{victorialogs.StreamFields}
	}
	for _, sf := range streamFields {
		name := "victorialogs"
		if len(streamFields) > 1 {
			name += "/streams=" + strings.Join(sf, "+")
		}
		out = append(out, opener{name, func(b *testing.B) (storage.Store, func()) {
			vl := vltest.Start(b, true, "")
			st, err := victorialogs.Open(victorialogs.Options{URL: vl.URL, StreamFields: sf})
			if err != nil {
				b.Fatal(err)
			}
			return st, vl.Flush
		}})
	}
	return out
}

// BenchmarkWrite is a store's sink path alone (no Kafka): batches of 20000
// rows, as a processor writes them; for VictoriaLogs, until answered 200,
// with three choices of stream fields (the default, which has level, the
// default before level, and service alone).
func BenchmarkWrite(b *testing.B) {
	const batch = 20000
	for _, o := range openers(victorialogs.StreamFields, []string{"service", "host", "tenant"}, []string{"service"}) {
		b.Run(o.name, func(b *testing.B) {
			st, _ := o.open(b)
			defer st.Close()
			start := time.Now().Add(-time.Hour)
			var off int64
			b.SetBytes(batch * 190)
			b.ReportAllocs()
			t0 := time.Now()
			for b.Loop() {
				rows := benchRows(batch, 0, off, start.Add(time.Duration(off)*time.Millisecond), batch*time.Millisecond)
				off += batch
				if _, err := st.Write(context.Background(), rows); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(off)/time.Since(t0).Seconds(), "rows/s")
		})
	}
}

// BenchmarkQueries times the dashboard's queries on the same rows in both
// stores: totals of the last hour, a 15-minute window, the rollups chart
// (1 h by service at 10 s), the newest page, a message search and a
// service+level filter.
func BenchmarkQueries(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("WIRELOG_BENCH_EVENTS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	now := time.Now().Truncate(time.Second)
	start := now.Add(-time.Hour)
	ctx := context.Background()
	// WIRELOG_BENCH_STREAMS compares stream-field choices on the query
	// side: ";"-separated lists, e.g. "service,host,tenant;service".
	var streams [][]string
	for _, l := range strings.Split(os.Getenv("WIRELOG_BENCH_STREAMS"), ";") {
		if l != "" {
			streams = append(streams, strings.Split(l, ","))
		}
	}
	for _, o := range openers(streams...) {
		b.Run(o.name, func(b *testing.B) {
			st, flush := o.open(b)
			defer st.Close()
			const batch = 50000
			t0 := time.Now()
			for off := 0; off < n; off += batch {
				p := int32(off / batch % 4)
				rows := benchRows(min(batch, n-off), p, int64(off), start.Add(time.Duration(int64(time.Hour)/int64(n)*int64(off))), time.Duration(int64(time.Hour)/int64(n)*int64(batch)))
				if _, err := st.Write(ctx, rows); err != nil {
					b.Fatal(err)
				}
				// As the processor does between batches (DuckDB: fold the
				// WAL into the file in the background, on its schedule).
				if c, ok := st.(checkpointer); ok && c.CheckpointDue() {
					if err := c.Checkpoint(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			if c, ok := st.(checkpointer); ok {
				// The last checkpoint, once the one running has finished.
				for deadline := time.Now().Add(5 * time.Minute); c.CheckpointDue() && time.Now().Before(deadline); time.Sleep(time.Second) {
					if err := c.Checkpoint(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			for deadline := time.Now().Add(5 * time.Minute); ; {
				flush()
				s, err := st.Stats(ctx, store.StatsRequest{NoPartial: true})
				if err == nil && s.Events == int64(n) {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("loaded %d rows, %v visible (%v)", n, s, err)
				}
				time.Sleep(time.Second)
			}
			b.Logf("%s: loaded %d rows in %s", o.name, n, time.Since(t0).Round(time.Second))
			// Search as the API asks it: the DuckDB store's SearchNewest
			// when it has one.
			search := st.Search
			if sn, ok := st.(interface {
				SearchNewest(context.Context, store.SearchRequest) (*store.SearchResult, error)
			}); ok {
				search = sn.SearchNewest
			}
			queries := []struct {
				name string
				run  func() error
			}{
				{"stats_all", func() error { _, err := st.Stats(ctx, store.StatsRequest{}); return err }},
				{"stats_15m", func() error {
					_, err := st.Stats(ctx, store.StatsRequest{From: now.Add(-15 * time.Minute), To: now})
					return err
				}},
				{"rollups_1h_by_service_10s", func() error {
					_, err := st.Rollups(ctx, store.RollupsRequest{From: start, To: now, Step: 10 * time.Second, By: []string{store.ByService}})
					return err
				}},
				{"search_newest_100", func() error { _, err := search(ctx, store.SearchRequest{Limit: 100}); return err }},
				{"search_q_substring", func() error {
					_, err := search(ctx, store.SearchRequest{Query: "orders/4242", Limit: 100})
					return err
				}},
				{"search_service_level", func() error {
					_, err := search(ctx, store.SearchRequest{Service: "payments", Level: "error", Limit: 100})
					return err
				}},
			}
			if ex, ok := st.(Explorer); ok {
				queries = append(queries, []struct {
					name string
					run  func() error
				}{
					{"histogram_1h_10s", func() error {
						_, err := ex.Histogram(ctx, store.HistogramRequest{Filter: store.Filter{From: start, To: now}, Step: 10 * time.Second})
						return err
					}},
					{"histogram_1h_q", func() error {
						_, err := ex.Histogram(ctx, store.HistogramRequest{Filter: store.Filter{From: start, To: now, Query: "orders/4242"}, Step: 10 * time.Second})
						return err
					}},
					{"fields_1h", func() error {
						_, err := ex.Fields(ctx, store.FieldsRequest{Filter: store.Filter{From: start, To: now}})
						return err
					}},
				}...)
			}
			for _, q := range queries {
				b.Run(q.name, func(b *testing.B) {
					for b.Loop() {
						if err := q.run(); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
