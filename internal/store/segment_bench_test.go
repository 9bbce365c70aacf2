package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
)

var segmentCodecs = []struct {
	name  string
	codec compress.Compression
}{
	{"snappy", compress.Codecs.Snappy},
	{"zstd", compress.Codecs.Zstd},
	{"lz4raw", compress.Codecs.Lz4Raw},
	{"none", compress.Codecs.Uncompressed},
}

// BenchmarkSegmentEncode measures what a segment costs the processor: the
// events of one batch into Arrow columns, Parquet-encoded and compressed by
// arrow-go, written to a file (no fsync: that is I/O wait, not CPU).
// cpu-µs/event is the whole process's user+system CPU per event.
func BenchmarkSegmentEncode(b *testing.B) {
	for _, batch := range []int{20000, 100000, 300000} {
		rows := genRows(batch, "logs", 0, 0, time.Now(), 10*time.Microsecond)
		var raw int64
		for _, r := range rows {
			raw += int64(r.Bytes)
		}
		for _, c := range segmentCodecs {
			for _, bloom := range []bool{false, true} {
				name := fmt.Sprintf("pqarrow/%s/batch=%d", c.name, batch)
				if bloom {
					if c.name != "zstd" && c.name != "snappy" {
						continue
					}
					name = fmt.Sprintf("pqarrow-bloom/%s/batch=%d", c.name, batch)
				}
				b.Run(name, func(b *testing.B) {
					path := filepath.Join(b.TempDir(), "seg.parquet")
					b.ReportAllocs()
					b.SetBytes(raw)
					var size int64
					cpu0 := processCPU(b)
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						f, err := os.Create(path)
						if err != nil {
							b.Fatal(err)
						}
						bw := bufio.NewWriterSize(f, 1<<20)
						if err := encodeSegment(bw, rows, nil, c.codec, bloom); err != nil {
							b.Fatal(err)
						}
						if err := bw.Flush(); err != nil {
							b.Fatal(err)
						}
						fi, _ := f.Stat()
						size = fi.Size()
						f.Close()
					}
					b.StopTimer()
					b.ReportMetric(float64(processCPU(b)-cpu0)/float64(time.Microsecond)/float64(b.N*batch), "cpu-µs/event")
					b.ReportMetric(float64(size)/float64(batch), "file-B/event")
				})
			}
		}
	}
}

// BenchmarkSegmentQueries times issue 12's query mix over a store of N
// events (WIRELOG_SEGMENT_BENCH_ROWS, default 1,000,000) spread over 24
// hours, for each format: stats, a 1 h rollup by service and level, the
// first page of a service + 1 h search, and a free-text search over the 24
// hours. It reports p50 and p90 of each (ms), the build's CPU µs per event
// and the bytes on disk per event.
func BenchmarkSegmentQueries(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("WIRELOG_SEGMENT_BENCH_ROWS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 10000 {
			b.Fatalf("WIRELOG_SEGMENT_BENCH_ROWS=%q: want a number >= 10000", v)
		}
	}
	formats := []string{FormatParquet, FormatTable}
	if v := os.Getenv("WIRELOG_SEGMENT_BENCH_FORMATS"); v != "" {
		formats = strings.Split(v, ",")
	}
	ctx := context.Background()
	for _, format := range formats {
		b.Run(fmt.Sprintf("%s/rows=%d", format, n), func(b *testing.B) {
			dir := b.TempDir()
			path := filepath.Join(dir, "q.duckdb")
			st, err := Open(path, Options{DisableMaintenance: true, Retention: -1, Format: format})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			start := time.Now()
			step := 24 * time.Hour / time.Duration(n)
			const batch = 20000
			var cpu time.Duration
			for i := 0; i < n; i += batch {
				rows := genRows(min(batch, n-i), "logs", 0, int64(i), bigT0.Add(time.Duration(i)*step), step)
				c0 := processCPU(b)
				if _, err := st.Write(ctx, rows); err != nil {
					b.Fatal(err)
				}
				cpu += processCPU(b) - c0
			}
			c0 := processCPU(b)
			if err := st.FlushSegments(ctx); err != nil {
				b.Fatal(err)
			}
			if err := st.Compact(ctx); err != nil {
				b.Fatal(err)
			}
			// Fold both WALs into the files (rollups and, for the table, the
			// events), so the bytes on disk are what stays.
			for _, tw := range twins {
				if _, err := st.db.ExecContext(ctx, "CHECKPOINT "+tw); err != nil {
					b.Fatal(err)
				}
			}
			cpu += processCPU(b) - c0
			var disk int64
			filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if fi, err := d.Info(); err == nil {
						disk += fi.Size()
					}
				}
				return nil
			})
			b.Logf("%s: built %d events in %s, %.2f CPU µs/event, %.1f bytes/event on disk", format, n,
				time.Since(start).Round(time.Second), float64(cpu)/float64(time.Microsecond)/float64(n), float64(disk)/float64(n))
			hour := bigT0.Add(12 * time.Hour)
			for _, c := range []struct {
				name string
				run  func() error
			}{
				{"stats", func() error { _, err := st.Stats(ctx, StatsRequest{}); return err }},
				{"rollups-1h-service-level", func() error {
					_, err := st.Rollups(ctx, RollupsRequest{From: hour, To: hour.Add(time.Hour), Step: 10 * time.Second, By: []string{ByService, ByLevel}})
					return err
				}},
				{"search-service-1h", func() error {
					r, err := st.Search(ctx, SearchRequest{Service: "payments", From: hour, To: hour.Add(time.Hour)})
					if err == nil && len(r.Events) == 0 {
						err = fmt.Errorf("no events")
					}
					return err
				}},
				{"search-text-24h", func() error {
					_, err := st.Search(ctx, SearchRequest{Query: "orders/77777 ", From: bigT0, To: bigT0.Add(24 * time.Hour)})
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
		})
	}
}

// BenchmarkSegmentEncodeProps measures the Parquet writer settings of a
// segment against the store's (segmentWriterProps): the CPU per event of
// encoding one full segment of loadgen-shaped events (the record as the
// store freezes it, into a writer that only counts) and the bytes per
// event of the file. "main" is the settings and Snappy encoder before
// issue 12's fifth session; the variants below it undo one change each,
// or try one the store does not use.
//
//	go test -run '^$' -bench SegmentEncodeProps -count 5 ./internal/store
func BenchmarkSegmentEncodeProps(b *testing.B) {
	const n = DefaultSegmentRows
	rows := make([]Row, n)
	var buf []byte
	for i := range rows {
		buf = scaleEvent(&rows[i], int64(i), n, bigT0.Add(scaleSpan), buf)
		rows[i].Event.Time = bigT0.Add(time.Duration(i) * 10 * time.Microsecond)
	}
	rec := buildSegmentRecord(rows, nil)
	defer rec.Release()
	with := func(extra ...parquet.WriterProperty) func() *parquet.WriterProperties {
		return func() *parquet.WriterProperties { return segmentWriterProps(segmentCompression, false, extra...) }
	}
	variants := []struct {
		name   string
		props  func() *parquet.WriterProperties
		golang bool // github.com/golang/snappy's encoder instead of s2's
	}{
		{"store", defaultSegmentProps, false},
		{"main", mainSegmentProps, true},
		{"golang-snappy", defaultSegmentProps, true},
		{"1mb-pages", with(parquet.WithDataPageSize(1 << 20)), false},
		{"partition-dict", with(parquet.WithDictionaryFor("partition", true)), false},
		{"dict-stats", with(parquet.WithStatsFor("service", true), parquet.WithStatsFor("level", true), parquet.WithStatsFor("host", true)), false},
		{"ids-uncompressed", with(parquet.WithCompressionFor("trace_id", compress.Codecs.Uncompressed),
			parquet.WithCompressionFor("span_id", compress.Codecs.Uncompressed)), false},
		{"ids-nostats", with(parquet.WithStatsFor("trace_id", false)), false},
		{"pagev2", with(parquet.WithDataPageVersion(parquet.DataPageV2)), false},
		{"text-delta-length", with(parquet.WithEncodingFor("message", parquet.Encodings.DeltaLengthByteArray),
			parquet.WithEncodingFor("attrs", parquet.Encodings.DeltaLengthByteArray)), false},
		{"lz4raw", func() *parquet.WriterProperties { return segmentWriterProps(compress.Codecs.Lz4Raw, false) }, false},
		{"uncompressed", func() *parquet.WriterProperties { return segmentWriterProps(compress.Codecs.Uncompressed, false) }, false},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			if v.golang {
				defer useGolangSnappy()()
			}
			props := v.props()
			var out countingWriter
			b.ReportAllocs()
			cpu0 := processCPU(b)
			for i := 0; i < b.N; i++ {
				out = 0
				if err := encodeRecordWith(&out, rec, props); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(time.Microsecond)/float64(b.N*n), "cpu-µs/event")
			b.ReportMetric(float64(out)/float64(n), "file-B/event")
		})
	}
}

// countingWriter counts what is written to it: the encoder's own cost,
// without a file's.
type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}
