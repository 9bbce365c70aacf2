package process

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/transport"
)

// TestProcessorCheckpointsBetweenBatches runs the processor on a real log
// and store whose checkpoint is due every 1000 rows: the processor must start
// it between batches (the store's checkpointed-rows counter grows while the
// 5000 rows are stored), not leave it to DuckDB's WAL threshold inside a
// COMMIT. The last due checkpoint may wait for a running one to end, so at
// least 3 of the 5 are required.
func TestProcessorCheckpointsBetweenBatches(t *testing.T) {
	lg, st := openRealLog(t, store.Options{CheckpointRows: 1000, CheckpointInterval: time.Hour})
	const n = 5000
	recs := make([]transport.Record, n)
	for i := range recs {
		recs[i].Value = event.AppendJSON(nil, &event.Event{Time: time.Now(), Service: "svc", Level: event.LevelInfo, Message: "m"})
	}
	if err := lg.Producer().Produce(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	cons := lg.Consumer("test", st.NextOffset)
	defer cons.Close()
	p := New(cons, st, Options{MaxBatch: 500})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(st.Collector())
	checkpointed := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "wirelog_store_checkpointed_rows_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		t.Fatal("no wirelog_store_checkpointed_rows_total")
		return 0
	}
	deadline := time.Now().Add(60 * time.Second)
	for checkpointed() < 3000 || testutil.ToFloat64(p.m.stored) < n {
		if time.Now().After(deadline) {
			t.Fatalf("checkpointed %v of %v stored rows", checkpointed(), testutil.ToFloat64(p.m.stored))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := testutil.ToFloat64(p.m.errors.WithLabelValues("checkpoint")); got != 0 {
		t.Fatalf("%v checkpoint errors", got)
	}
	if got := testutil.ToFloat64(p.m.stored); got != n {
		t.Fatalf("stored %v, want %d", got, n)
	}
}
