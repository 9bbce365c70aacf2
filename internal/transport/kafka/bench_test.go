package kafka

import (
	"context"
	"sync"
	"testing"
	"time"
)

// BenchmarkProduceCompression measures produce throughput to ack (acks=all,
// idempotent) against the real local broker, per compression codec: one op is
// one 250-byte event, produced in calls of 500 events by 4 concurrent
// callers, as the ingest gateway does with concurrent requests. The broker
// shares the machine's cores with the benchmark.
//
//	go test -run '^$' -bench ProduceCompression -benchtime 200000x -count 5 ./internal/transport/kafka/
func BenchmarkProduceCompression(b *testing.B) {
	const (
		eventSize = 250
		callSize  = 500
		callers   = 4
	)
	// A pool of distinct events, so compression sees realistic variety.
	pool := records(20_000, eventSize, 99)
	var bytes int64
	for i := range pool {
		bytes += int64(len(pool[i].Value))
	}
	for _, codecName := range []string{"none", "lz4", "zstd"} {
		b.Run("codec="+codecName, func(b *testing.B) {
			cfg := testConfig(b, DefaultPartitions)
			cfg.Compression = codecName
			cfg.Linger = DefaultLinger
			p := newProducer(b, cfg)
			ctx := context.Background()
			// Warm up: metadata, producer id, connections.
			if err := p.Produce(ctx, pool[:callSize]); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(bytes / int64(len(pool)))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			var mu sync.Mutex
			calls := 0 // calls handed out; the pool holds a whole number of calls
			for w := 0; w < callers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						mu.Lock()
						k := calls
						calls++
						mu.Unlock()
						n := min(callSize, b.N-k*callSize)
						if n <= 0 {
							return
						}
						off := (k * callSize) % len(pool)
						if err := p.Produce(ctx, pool[off:off+n:off+n]); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
		})
	}
}
