package disklog

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wirelog/wirelog/internal/transport"
)

const benchRecordBytes = 250

func benchRecords(n int) []transport.Record {
	recs := make([]transport.Record, n)
	v := bytes.Repeat([]byte("x"), benchRecordBytes)
	ts := time.Now()
	for i := range recs {
		recs[i] = transport.Record{Value: v, Timestamp: ts}
	}
	return recs
}

// BenchmarkProduce measures one Produce call of batch records of 250 bytes,
// from one goroutine (serial: every call waits for its own fsync) and from
// 8 goroutines (group commit shares each fsync among the calls queued).
func BenchmarkProduce(b *testing.B) {
	for _, sync := range []bool{true, false} {
		for _, batch := range []int{1, 100, 1000} {
			for _, producers := range []int{1, 8} {
				mode := "fsync"
				if !sync {
					mode = "nosync"
				}
				b.Run(fmt.Sprintf("%s/batch=%d/producers=%d", mode, batch, producers), func(b *testing.B) {
					l := openT(b, b.TempDir(), Options{NoSync: !sync, MaxLagBytes: -1})
					b.SetBytes(int64(batch * benchRecordBytes))
					b.ReportAllocs()
					if producers == 1 {
						recs := benchRecords(batch)
						p := l.Producer()
						b.ResetTimer()
						for i := 0; i < b.N; i++ {
							if err := p.Produce(context.Background(), recs); err != nil {
								b.Fatal(err)
							}
						}
					} else {
						b.SetParallelism((producers + 1) / 2) // GOMAXPROCS=2 here → 8 goroutines
						b.ResetTimer()
						b.RunParallel(func(pb *testing.PB) {
							recs := benchRecords(batch)
							p := l.Producer()
							for pb.Next() {
								if err := p.Produce(context.Background(), recs); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					b.StopTimer()
					b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
					if st := l.Stats(); st.GroupCommits > 0 {
						b.ReportMetric(float64(st.AppendedRecords)/float64(st.GroupCommits), "records/commit")
					}
				})
			}
		}
	}
}

// BenchmarkConsume measures Poll(max=1000) over 250-byte records already in
// the page cache, as the processor reads them.
func BenchmarkConsume(b *testing.B) {
	const total, max = 100_000, 1000
	l := openT(b, b.TempDir(), Options{NoSync: true, MaxLagBytes: -1, SegmentBytes: 16 << 20})
	recs := benchRecords(max)
	for i := 0; i < total/max; i++ {
		if err := l.Producer().Produce(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(max * benchRecordBytes)
	b.ReportAllocs()
	b.ResetTimer()
	var c transport.Consumer
	read, group := total, 0
	for i := 0; i < b.N; i++ {
		if read == total { // rewind with a fresh group
			if c != nil {
				c.Close()
			}
			group++
			c = l.Consumer(fmt.Sprintf("bench-%d", group), nil)
			read = 0
		}
		got, err := c.Poll(context.Background(), max)
		if err != nil || len(got) != max {
			b.Fatalf("Poll = %d records, %v", len(got), err)
		}
		read += len(got)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*max)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkBaselineWriteFdatasync is the floor BenchmarkProduce/fsync/…/
// producers=1 is measured against: the same bytes written to a plain file
// with write(2) + fdatasync(2), no framing, checksums or offsets.
func BenchmarkBaselineWriteFdatasync(b *testing.B) {
	for _, batch := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "baseline"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := bytes.Repeat([]byte("x"), batch*benchRecordBytes)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := f.Write(buf); err != nil {
					b.Fatal(err)
				}
				if err := unix.Fdatasync(int(f.Fd())); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
