//go:build duckdb_arrow

package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	duckdb "github.com/duckdb/duckdb-go/v2"
)

// BenchmarkSegmentEncodeDuckDB is BenchmarkSegmentEncode's alternative:
// DuckDB's own Parquet writer, fed the batch as a registered Arrow view
// (every column read: duckdb/duckdb-go#28), on one DuckDB thread.
func BenchmarkSegmentEncodeDuckDB(b *testing.B) {
	for _, batch := range []int{20000, 100000, 300000} {
		rows := genRows(batch, "logs", 0, 0, time.Now(), 10*time.Microsecond)
		var raw int64
		for _, r := range rows {
			raw += int64(r.Bytes)
		}
		for _, codec := range []string{"snappy", "zstd", "lz4_raw", "uncompressed"} {
			b.Run(fmt.Sprintf("duckdb-copy/%s/batch=%d", codec, batch), func(b *testing.B) {
				connector, err := duckdb.NewConnector("", nil)
				if err != nil {
					b.Fatal(err)
				}
				defer connector.Close()
				conn, err := connector.Connect(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close()
				ex := conn.(driver.ExecerContext)
				if _, err := ex.ExecContext(context.Background(), "SET threads = 1", nil); err != nil {
					b.Fatal(err)
				}
				ar, err := duckdb.NewArrowFromConn(conn)
				if err != nil {
					b.Fatal(err)
				}
				path := filepath.Join(b.TempDir(), "seg.parquet")
				q := fmt.Sprintf(`COPY (SELECT topic, "partition", "offset", ts, service, level, message, host, trace_id, span_id, tenant, attrs, bytes
					FROM wirelog_batch) TO '%s' (FORMAT parquet, COMPRESSION %s)`, path, codec)
				b.ReportAllocs()
				b.SetBytes(raw)
				cpu0 := processCPU(b)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					rec := buildArrowRecord(rows, allKept(len(rows)))
					rr, err := array.NewRecordReader(arrowSchema, []arrow.RecordBatch{rec})
					if err != nil {
						b.Fatal(err)
					}
					release, err := ar.RegisterView(rr, "wirelog_batch")
					if err != nil {
						b.Fatal(err)
					}
					if _, err := ex.ExecContext(context.Background(), q, nil); err != nil {
						b.Fatal(err)
					}
					release()
					rr.Release()
					rec.Release()
				}
				b.StopTimer()
				b.ReportMetric(float64(processCPU(b)-cpu0)/float64(time.Microsecond)/float64(b.N*batch), "cpu-µs/event")
			})
		}
	}
}

func allKept(n int) []bool {
	k := make([]bool, n)
	for i := range k {
		k[i] = true
	}
	return k
}
