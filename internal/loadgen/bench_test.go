package loadgen

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func BenchmarkNewCatalogue(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		newCatalogue(1, catalogueSize, DefaultSize, headLen("abcdef", 7))
	}
}

// BenchmarkAppendEvent is the per-event cost of the generator: stamping
// ts, event_id and trace ids onto a pre-rendered variant.
func BenchmarkAppendEvent(b *testing.B) {
	for _, size := range []int{200, 1000} {
		b.Run("size="+strconv.Itoa(size), func(b *testing.B) {
			gen := newGenerator(newCatalogue(1, catalogueSize, size, headLen("abcdef", 7)), "abcdef", 1, 1)
			buf := make([]byte, 0, 4*size)
			now := time.Now().UnixNano()
			var bytes int64
			var seq uint64
			b.ReportAllocs()
			for b.Loop() {
				buf = gen.appendEvent(buf[:0], seq, now+int64(seq))
				bytes += int64(len(buf))
				seq++
			}
			b.SetBytes(bytes / int64(max(seq, 1)))
			b.ReportMetric(float64(seq)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkBuildBody is the cost of one request body of 100 events per
// format and encoding.
func BenchmarkBuildBody(b *testing.B) {
	for _, tc := range []struct {
		name string
		f    Format
		e    Encoding
	}{
		{"ndjson", FormatNDJSON, EncodingIdentity},
		{"json", FormatJSON, EncodingIdentity},
		{"ndjson+gzip", FormatNDJSON, EncodingGzip},
		{"ndjson+zstd", FormatNDJSON, EncodingZstd},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const batch = DefaultBatch
			gen := newGenerator(newCatalogue(1, catalogueSize, DefaultSize, headLen("abcdef", 7)), "abcdef", 1, 1)
			bb, err := newBodyBuilder(gen, tc.f, tc.e)
			if err != nil {
				b.Fatal(err)
			}
			var seq uint64
			var raw, wire int64
			b.ReportAllocs()
			for b.Loop() {
				body, rawLen, err := bb.build(seq, batch, time.Now().UnixNano())
				if err != nil {
					b.Fatal(err)
				}
				raw += int64(rawLen)
				wire += int64(len(body))
				seq += batch
			}
			// SetBytes counts uncompressed event JSON, so MB/s compares
			// across encodings.
			b.SetBytes(raw / int64(max(seq/batch, 1)))
			b.ReportMetric(float64(seq)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(raw)/float64(max(wire, 1)), "ratio")
		})
	}
}

// BenchmarkRunNullServer is the generator's ceiling: a whole Run (pacing,
// HTTP client, accounting) against an in-process server that discards
// bodies, sharing the same cores. On a shared machine events/s depends on
// the neighbours; cpu-ns/event (process CPU time, client and null server
// together, per event) does much less, and 2e9 / cpu-ns/event is the
// ceiling on two idle cores.
func BenchmarkRunNullServer(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	rep, err := Run(b.Context(), Config{Target: srv.URL, Count: int64(b.N) * DefaultBatch, Duration: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(rep.EventsAcked), "cpu-ns/event")
	b.SetBytes(int64(rep.AvgEventBytes * DefaultBatch))
	b.ReportMetric(rep.EventsPerSecond, "events/s")
	b.ReportMetric(rep.Latency.P99, "p99-ms")
}

// processCPU is the user+system CPU time of this process so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
