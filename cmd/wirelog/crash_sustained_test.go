package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/freeport"
	"github.com/wirelog/wirelog/internal/testproc"
)

// BenchmarkCrashSustained is TestCrashSafety at issue 12's sustained rate:
// loadgen sends as fast as it can (8 connections × batches of 500, ~210 B
// events, 120 s) to a `wirelog run` on the embedded log while wirelog is
// killed with SIGKILL four times at moments spread over the run and
// started again at once on the same port and store (on the embedded log
// the processor and ingest are one process: a kill stops both, and
// loadgen's requests fail until the restart serves). When the load ends
// and the processor has drained the log, wirelog stops with SIGTERM and
// every acknowledged event must be in the store exactly once, and the
// rollups must count exactly the stored events. One sub-benchmark per
// store format. Not a timing; one iteration is the run:
//
//	go test -run '^$' -bench 'CrashSustained/parquet' -benchtime 1x ./cmd/wirelog
//	make crash-sustained STORE_FORMAT=parquet
//
// WIRELOG_CRASH_DURATION, _RATE, _CONCURRENCY, _BATCH and _KILLS change
// the load (testproc.CrashLoadFromEnv). The modest-rate version runs in
// `make test` as TestCrashSafety / TestCrashSafetySegments.
func BenchmarkCrashSustained(b *testing.B) {
	for _, format := range []string{"parquet", "table"} {
		b.Run(format, func(b *testing.B) {
			for b.Loop() {
				crashSustained(b, "--store-format", format)
			}
		})
	}
}

func crashSustained(b *testing.B, extra ...string) {
	dir := b.TempDir()
	addr := freeport.Addr(b)
	args := append([]string{"run", "--http", addr, "--data", dir, "--syslog-udp", "", "--syslog-tcp", ""}, extra...)
	n := testproc.Start(b, wirelogBin, "wirelog run", args...)
	load, kills := testproc.CrashLoadFromEnv(b)
	load.Target = n.URL
	ackPath := filepath.Join(b.TempDir(), "acked.txt")
	start := time.Now()
	rep := testproc.CrashLoad{Load: load, Kills: kills,
		Kill:    func() { n.Kill9() },
		Restart: func() { n = testproc.Start(b, wirelogBin, "wirelog run", args...) },
	}.Run(b, ackPath)
	loadEnd := time.Now()

	// Drained: the stored total has not moved for 3 s and covers every
	// acknowledged event (more may be stored: events durable in the log
	// whose answer the kill cut off). If it never gets there, the check
	// below says which events are missing.
	stored, drained, ok := testproc.WaitStored(rep.Load.EventsAcked, 10*time.Minute, func() int64 { return int64(statsOf(n.URL)) }, nil)
	if !ok {
		b.Errorf("the processor did not drain: %d stored, %d acknowledged", stored, rep.Load.EventsAcked)
	}
	if err := n.Term(2 * time.Minute); err != nil {
		b.Fatalf("SIGTERM after the run: %v\n%s", err, n.Logs())
	}
	rep.Verdict(b, ackPath, kills, stored, start, loadEnd, drained, dir)
}

// statsOf is GET /api/v1/stats's event total, -1 when unanswered.
func statsOf(url string) float64 {
	resp, err := http.Get(url + "/api/v1/stats")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var s struct{ Events float64 }
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&s) != nil {
		return -1
	}
	return s.Events
}
