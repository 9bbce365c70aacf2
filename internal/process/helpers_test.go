package process

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/transport"
	"github.com/wirelog/wirelog/internal/transport/disklog"
)

// openRealLog opens a real embedded log and a real DuckDB store (opts;
// maintenance off unless the test turns it on) in a temp dir, both closed
// when the test ends.
func openRealLog(t *testing.T, opts store.Options) (*disklog.Log, *store.Store) {
	t.Helper()
	dir := t.TempDir()
	lg, err := disklog.Open(filepath.Join(dir, "log"), disklog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	opts.DisableMaintenance = true
	st, err := store.Open(filepath.Join(dir, "wirelog.duckdb"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return lg, st
}

// waitStored waits up to 30 s until the store resumes partition 0 of the
// embedded log's topic at offset want, i.e. it stored everything below.
func waitStored(t *testing.T, st *store.Store, want int64) {
	t.Helper()
	tp := transport.TopicPartition{Topic: disklog.DefaultTopic, Partition: 0}
	deadline := time.Now().Add(30 * time.Second)
	for {
		next, ok, err := st.NextOffset(context.Background(), tp)
		if err != nil {
			t.Fatal(err)
		}
		if ok && next == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the processor did not reach offset %d in 30 s (at %d, known %v)", want, next, ok)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processUntil runs a processor on the log's "test" group until the store
// holds everything below offset want, then stops it, checks Run ended
// cleanly, and returns it (for its metrics).
func processUntil(t *testing.T, lg *disklog.Log, st *store.Store, want int64) *Processor {
	t.Helper()
	cons := lg.Consumer("test", st.NextOffset)
	defer cons.Close()
	p := New(cons, st, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitStored(t, st, want)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	return p
}
