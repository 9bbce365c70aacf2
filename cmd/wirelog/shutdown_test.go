package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/loadgen"
	"github.com/wirelog/wirelog/internal/testproc"
)

// TestShutdownWithBacklogIsBounded: SIGTERM while the processor has a large
// backlog must not store the whole backlog before exiting (issue 21: it took
// minutes). The processor finishes the batch in hand and stops; what it did
// not store stays in the log, and the restart stores it: every acknowledged
// event exactly once.
func TestShutdownWithBacklogIsBounded(t *testing.T) {
	dir := t.TempDir()
	ackPath := filepath.Join(t.TempDir(), "acked.txt")
	ack, err := os.Create(ackPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ack.Close()

	n := startNode(t, dir)
	if resp, err := http.Post(n.URL+"/api/v1/processor/pause", "application/json", nil); err != nil || resp.StatusCode != 204 {
		t.Fatalf("pause: %v %v", resp, err)
	}
	// A backlog of 400,000 acknowledged events: several seconds of storing
	// even on a quiet host.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := loadgen.Run(ctx, loadgen.Config{Target: n.URL, Count: 400_000, Duration: 90 * time.Second,
		Concurrency: 4, Batch: 1000, AckLog: ack, RunID: "shutdown", Seed: 3})
	if err != nil {
		t.Fatalf("loadgen: %v", err)
	}
	ack.Sync()
	acked := testproc.ReadLines(t, ackPath)
	if len(acked) < 100_000 {
		t.Fatalf("only %d events acknowledged (errors %v); the backlog is too small to prove anything", len(acked), rep.Errors)
	}
	if resp, err := http.Post(n.URL+"/api/v1/processor/resume", "application/json", nil); err != nil || resp.StatusCode != 204 {
		t.Fatalf("resume: %v %v", resp, err)
	}
	eventually(t, 60*time.Second, func() error {
		if got := statsEvents(n); got <= 0 {
			return fmt.Errorf("nothing stored yet")
		}
		return nil
	})
	start := time.Now()
	if err := n.Term(2 * time.Minute); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, n.Logs())
	}
	exit := time.Since(start)
	stopped := testproc.ReadStore(t, dir)
	t.Logf("%d events acknowledged; SIGTERM exited in %s with %d stored", len(acked), exit.Round(time.Millisecond), stopped.Rows)
	if stopped.Rows >= int64(len(acked)) {
		t.Fatalf("the processor stored the whole backlog (%d of %d events) before exiting on SIGTERM (took %s); it must stop after the batch in hand",
			stopped.Rows, len(acked), exit.Round(time.Millisecond))
	}

	// The rest is still in the log and stored after the restart.
	n = startNode(t, dir)
	eventually(t, 3*time.Minute, func() error {
		if got := statsEvents(n); got < float64(len(acked)) {
			return fmt.Errorf("stored %v of %d acknowledged events after the restart", got, len(acked))
		}
		return nil
	})
	if err := n.Term(2 * time.Minute); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	st := testproc.ReadStore(t, dir)
	if st.Rows != int64(len(st.IDs)) {
		t.Fatalf("stored %d rows but %d distinct event ids", st.Rows, len(st.IDs))
	}
	for _, id := range acked {
		if st.IDs[id] != 1 {
			t.Fatalf("acknowledged event %s stored %d times after the restart", id, st.IDs[id])
		}
	}
}
