package store

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"
)

// exploreBenchRows is the size of the Explore benchmark's store; set
// WIRELOG_EXPLORE_BENCH_ROWS=10000000 for the figure in docs/BENCHMARKS.md
// (building it takes minutes).
func exploreBenchRows(b *testing.B) int {
	if v := os.Getenv("WIRELOG_EXPLORE_BENCH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10000 {
			b.Fatalf("WIRELOG_EXPLORE_BENCH_ROWS=%q: want a number >= 10000", v)
		}
		return n
	}
	return 1_000_000
}

// BenchmarkExplore times the queries the Explore page sends on load over a
// store of N events spread over one hour (the page's default window holds
// all of them): the histogram (rollups, and events when a host filter
// forces a scan), the first page of results, and the field sidebar. It
// reports the median and p90 of each as metrics.
func BenchmarkExplore(b *testing.B) {
	n := exploreBenchRows(b)
	// WIRELOG_EXPLORE_BENCH_DIR keeps the built store between runs (10M
	// events take many minutes to write on a loaded machine); it is reused
	// when it holds exactly n events.
	dir := os.Getenv("WIRELOG_EXPLORE_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	// WIRELOG_EXPLORE_BENCH_FORMAT=parquet runs the same queries over
	// segment files (the table format otherwise), each in its own file.
	format := os.Getenv("WIRELOG_EXPLORE_BENCH_FORMAT")
	if format == "" {
		format = FormatTable
	}
	// WIRELOG_EXPLORE_BENCH_MEMORY is DuckDB's memory limit (--store-memory;
	// the store's default otherwise): `run` gives segment stores 128MB.
	st, err := Open(filepath.Join(dir, "explore-"+format+"-"+strconv.Itoa(n)+".duckdb"),
		Options{DisableMaintenance: true, Retention: -1, Format: format, MemoryLimit: os.Getenv("WIRELOG_EXPLORE_BENCH_MEMORY")})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	win := Filter{From: bigT0, To: bigT0.Add(time.Hour)}
	if have, err := st.Search(ctx, SearchRequest{From: win.From, To: win.To, Limit: 1}); err != nil || len(have.Events) == 0 {
		start := time.Now()
		const batch = 10000
		step := time.Hour / time.Duration(n)
		for i := 0; i < n; i += batch {
			rows := genRows(min(batch, n-i), "logs", 0, int64(i), bigT0.Add(time.Duration(i)*step), step)
			if _, err := st.Write(ctx, rows); err != nil {
				b.Fatal(err)
			}
		}
		if err := st.FlushSegments(ctx); err != nil {
			b.Fatal(err)
		}
		if err := st.Compact(ctx); err != nil {
			b.Fatal(err)
		}
		b.Logf("built %d events in %s", n, time.Since(start).Round(time.Second))
	}
	host := win
	host.Host = "node-3.cluster.local"
	text := win
	text.Query = "in 42ms"
	attr := win
	attr.Attrs = []FieldMatch{{Field: "latency_ms", Value: "42"}}
	svc := win
	svc.Service = "checkout"
	for _, c := range []struct {
		name string
		run  func() error
	}{
		{"histogram-rollups", func() error {
			_, err := st.Histogram(ctx, HistogramRequest{Filter: win, Step: 30 * time.Second})
			return err
		}},
		{"histogram-events-host", func() error {
			_, err := st.Histogram(ctx, HistogramRequest{Filter: host, Step: 30 * time.Second})
			return err
		}},
		{"search-first-page", func() error { // what the API runs (SearchNewest)
			_, err := st.SearchNewest(ctx, SearchRequest{From: win.From, To: win.To, Limit: 500})
			return err
		}},
		{"search-first-page-text", func() error {
			_, err := st.SearchNewest(ctx, SearchRequest{From: win.From, To: win.To, Limit: 500, Query: text.Query})
			return err
		}},
		{"search-first-page-plain-Search", func() error { // the baseline: a sort of the window
			_, err := st.Search(ctx, SearchRequest{From: win.From, To: win.To, Limit: 500})
			return err
		}},
		{"search-first-page-last-10s", func() error {
			_, err := st.Search(ctx, SearchRequest{From: win.To.Add(-10 * time.Second), To: win.To, Limit: 500})
			return err
		}},
		{"search-text-last-10s", func() error {
			_, err := st.Search(ctx, SearchRequest{From: win.To.Add(-10 * time.Second), To: win.To, Limit: 500, Query: "in 42ms"})
			return err
		}},
		{"histogram+search", func() error {
			if _, err := st.Histogram(ctx, HistogramRequest{Filter: win, Step: 30 * time.Second}); err != nil {
				return err
			}
			_, err := st.SearchNewest(ctx, SearchRequest{From: win.From, To: win.To, Limit: 500})
			return err
		}},
		{"histogram-events-text", func() error {
			_, err := st.Histogram(ctx, HistogramRequest{Filter: text, Step: 30 * time.Second})
			return err
		}},
		{"histogram-events-attr", func() error {
			_, err := st.Histogram(ctx, HistogramRequest{Filter: attr, Step: 30 * time.Second})
			return err
		}},
		{"fields", func() error {
			_, err := st.Fields(ctx, FieldsRequest{Filter: win, Limit: 5})
			return err
		}},
		{"fields-service", func() error {
			_, err := st.Fields(ctx, FieldsRequest{Filter: svc, Limit: 5})
			return err
		}},
		{"fields-host", func() error {
			_, err := st.Fields(ctx, FieldsRequest{Filter: host, Limit: 5})
			return err
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var lat []time.Duration
			for i := 0; i < b.N; i++ {
				t := time.Now()
				if err := c.run(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
		})
	}
}
