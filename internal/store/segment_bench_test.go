package store

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

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
