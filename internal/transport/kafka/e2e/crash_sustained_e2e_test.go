package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/testproc"
)

// BenchmarkKafkaCrashSustained is issue 12's exactly-once target on Kafka:
// loadgen sends as fast as it can (8 connections × batches of 500, 120 s)
// to `wirelog ingest`, which keeps acknowledging (acks=all) while the one
// `wirelog process --store-format parquet` of the group is killed with
// SIGKILL four times at moments spread over the run and restarted at once
// on its store with the same --kafka-instance-id (static membership: it
// gets its partitions back without waiting out a session). When the load
// ends and the processor has no lag left, both stop with SIGTERM and every
// acknowledged event must be in the store exactly once. Not a timing; one
// iteration is the run:
//
//	go test -run '^$' -bench KafkaCrashSustained -benchtime 1x ./internal/transport/kafka/e2e/
//	make crash-sustained-kafka
//
// WIRELOG_CRASH_DURATION, _RATE, _CONCURRENCY, _BATCH and _KILLS change
// the load (testproc.CrashLoadFromEnv).
func BenchmarkKafkaCrashSustained(b *testing.B) {
	for b.Loop() {
		kafkaCrashSustained(b)
	}
}

func kafkaCrashSustained(b *testing.B) {
	k := startKafka(b, false)
	common := []string{"--kafka", k.brokers(), "--kafka-lag-interval", "1s", "--kafka-session-timeout", "10s"}
	ing := startProc(b, "ingest", append([]string{"ingest", "--http", "127.0.0.1:0", "--syslog-udp", "", "--syslog-tcp", ""}, common...)...)
	dir := b.TempDir()
	args := append([]string{"process", "--http", "127.0.0.1:0", "--data", dir, "--group", "crash",
		"--kafka-instance-id", "process-1", "--store-format", "parquet"}, common...)
	p := startProc(b, "process", args...)
	load, kills := testproc.CrashLoadFromEnv(b)
	load.Target = ing.URL
	ackPath := filepath.Join(b.TempDir(), "acked.txt")
	start := time.Now()
	rep := testproc.CrashLoad{Load: load, Kills: kills,
		Kill:    func() { p.Kill9() },
		Restart: func() { p = startProc(b, "process", args...) },
	}.Run(b, ackPath)
	loadEnd := time.Now()

	// Drained: no consumer lag (offsets are committed only once the rows
	// are in a registered segment), every acknowledged event counted, and
	// the count still for 3 s. If it never gets there, the check below
	// says which events are missing.
	stored, drained, ok := testproc.WaitStored(rep.Load.EventsAcked, 15*time.Minute, p.stored, func() error {
		if lag := metric(p, "wirelog_kafka_consumer_lag_records"); lag != 0 {
			return fmt.Errorf("consumer lag %v records", lag)
		}
		return nil
	})
	if !ok {
		b.Errorf("the processor did not drain: %d stored, %d acknowledged, consumer lag %v", stored, rep.Load.EventsAcked,
			metric(p, "wirelog_kafka_consumer_lag_records"))
	}
	p.term()
	ing.term()
	rep.Verdict(b, ackPath, kills, stored, start, loadEnd, drained, dir)
}
