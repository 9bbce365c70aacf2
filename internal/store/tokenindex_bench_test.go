package store

import (
	"context"
	"testing"
	"time"
)

// BenchmarkTokenBloomAdd is the Go side of the token index per event: the
// words of one message hashed into the block's bloom (the messages of the
// scale benchmark, loadgen's shape).
func BenchmarkTokenBloomAdd(b *testing.B) {
	rows := make([]Row, 4096)
	var buf []byte
	for i := range rows {
		buf = scaleEvent(&rows[i], int64(i), int64(len(rows)), bigT0, buf)
	}
	tb := make([]uint64, tokenBloomChunks*traceChunkWords)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	for i := 0; i < b.N; i++ {
		addText(tb, rows[i%len(rows)].Event.Message)
	}
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/event")
}

// BenchmarkSegmentIndexWrite is BenchmarkTraceIndexWrite for the segment
// path: CPU per stored event of Write, the background encode and the
// registering transaction (the index blocks and rollups in it): "main"
// as main writes (the trace index, per-second rollups), "+tokens" with the
// token index, "+tokens+minutes" with the per-minute rollups as well (this
// store), and "none" without any index. Events of the scale
// benchmark (loadgen's shape), batches of 20,000, four segments.
//
//	go test -run '^$' -bench SegmentIndexWrite -benchtime 1x -count 3 ./internal/store
func BenchmarkSegmentIndexWrite(b *testing.B) {
	const total, batch = 4 * DefaultSegmentRows, 20000
	all := make([]Row, total)
	var buf []byte
	for i := range all {
		buf = scaleEvent(&all[i], int64(i), total, bigT0.Add(scaleSpan), buf)
		// At 100,000 events/s, the rate the store is built for (the scale
		// store's 1,157/s would make nearly every event a rollup row).
		all[i].Event.Time = bigT0.Add(time.Duration(i) * 10 * time.Microsecond)
	}
	defer func() { minuteRollupsOff = false }()
	for _, v := range []string{"none", "main", "+tokens", "+tokens+minutes"} {
		b.Run(v, func(b *testing.B) {
			b.ReportAllocs()
			var cpu time.Duration
			for range b.N {
				st, err := Open(tempDB(b), Options{DisableMaintenance: true, Retention: -1, Format: FormatParquet, SegmentInterval: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				st.traces.mu.Lock()
				st.traces.off = v == "none"
				st.traces.noTokens = v == "main"
				st.traces.mu.Unlock()
				minuteRollupsOff = v != "+tokens+minutes"
				cpu0 := processCPU(b)
				for i := 0; i < total; i += batch {
					if _, err := st.Write(context.Background(), all[i:min(total, i+batch)]); err != nil {
						b.Fatal(err)
					}
				}
				if err := st.FlushSegments(context.Background()); err != nil {
					b.Fatal(err)
				}
				cpu += processCPU(b) - cpu0
				if err := st.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(b.N*total), "cpu-µs/event")
		})
	}
}
