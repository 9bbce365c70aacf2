package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/loadgen"
	"github.com/wirelog/wirelog/internal/storage/victorialogs/vltest"
)

// BenchmarkScaleOutDrain is the sustained store rate through Kafka with two
// processors: N loadgen events (~200 B) are first produced to a 4-partition
// topic through `wirelog ingest`, then two `wirelog process` start and drain
// them, into their own DuckDB each or into one VictoriaLogs cluster (two
// storage nodes + front node). stored/s is N over the time until every event
// is queryable (DuckDB: the processors' totals; VictoriaLogs: serve's total,
// each id once); committed/s, for VictoriaLogs, until every row is verified
// durable and its offset committed.
//
//	go test -run '^$' -bench ScaleOutDrain -benchtime 1x ./internal/transport/kafka/e2e/
//
// WIRELOG_BENCH_EVENTS sets N (default 500000).
func BenchmarkScaleOutDrain(b *testing.B) {
	n := int64(500_000)
	if v := os.Getenv("WIRELOG_BENCH_EVENTS"); v != "" {
		n, _ = strconv.ParseInt(v, 10, 64)
	}
	for _, kind := range []string{"duckdb", "victorialogs"} {
		b.Run(kind, func(b *testing.B) {
			for b.Loop() {
				drain(b, kind, n)
			}
		})
	}
}

func drain(b *testing.B, kind string, n int64) {
	k := startKafka(b, false)
	common := []string{"--kafka", k.brokers(), "--kafka-partitions", "4", "--kafka-produce-timeout", "10s"}
	ing := startProc(b, "ingest", append([]string{"ingest", "--http", "127.0.0.1:0", "--syslog-udp", "", "--syslog-tcp", ""}, common...)...)
	ack, err := os.Create(filepath.Join(b.TempDir(), "acked.txt"))
	if err != nil {
		b.Fatal(err)
	}
	defer ack.Close()
	t0 := time.Now()
	rep, err := loadgen.Run(context.Background(), loadgen.Config{Target: ing.URL, Count: n, Duration: 20 * time.Minute,
		Concurrency: 8, Batch: 1000, RunID: "drain", Seed: 1})
	if err != nil || rep.EventsAcked != n {
		b.Fatalf("preload: %d of %d acked, %v", rep.EventsAcked, n, err)
	}
	b.Logf("%s: preloaded %d events into Kafka in %s", kind, n, time.Since(t0).Round(time.Millisecond))
	ing.term()

	args := func() []string {
		a := append([]string{"process", "--http", "127.0.0.1:0", "--data", b.TempDir(), "--group", "drain"}, common...)
		if kind == "victorialogs" {
			vl := vlCluster(b)
			a = append(a, "--store", "victorialogs", "--store-url", vl.URL)
		}
		return a
	}
	var total func() int64
	var committed func() bool
	if kind == "victorialogs" {
		vl := vlCluster(b)
		srv := startProc(b, "serve", "serve", "--http", "127.0.0.1:0", "--store", "victorialogs", "--store-url", vl.URL)
		total = func() int64 {
			vl.Flush()
			var s struct{ Events int64 }
			if srv.get("/api/v1/stats?partial=false", &s) != 200 {
				return -1
			}
			return s.Events
		}
	}
	a1, a2 := args(), args()
	start := time.Now()
	p1 := startProc(b, "process-1", a1...)
	p2 := startProc(b, "process-2", a2...)
	if total == nil {
		total = func() int64 { return p1.stored() + p2.stored() }
	} else {
		committed = func() bool {
			return metric(p1, "wirelog_vl_rows_durable_total")+metric(p2, "wirelog_vl_rows_durable_total") >= float64(n)
		}
	}
	eventually(b, 20*time.Minute, func() error {
		if got := total(); got < n {
			return fmt.Errorf("%d of %d stored", got, n)
		}
		return nil
	})
	stored := time.Since(start)
	b.ReportMetric(float64(n)/stored.Seconds(), "stored/s")
	if committed != nil {
		eventually(b, 10*time.Minute, func() error {
			if !committed() {
				return fmt.Errorf("not all rows verified durable yet")
			}
			return nil
		})
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "committed/s")
	}
	b.Logf("%s: %d events stored by 2 processors in %s", kind, n, stored.Round(time.Millisecond))
	p1.term()
	p2.term()
}

// vlCluster starts one VictoriaLogs cluster per benchmark run and returns it
// on every later call.
var vlClusters = map[testing.TB]*vltest.VL{}

func vlCluster(b testing.TB) *vltest.VL {
	if vl, ok := vlClusters[b]; ok {
		return vl
	}
	vl := vltest.Start(b, true, "")
	vlClusters[b] = vl
	b.Cleanup(func() { delete(vlClusters, b) })
	return vl
}
