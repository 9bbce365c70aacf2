package store

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CheckpointDue reports whether the caller should call Checkpoint now:
// Options.CheckpointRows rows were stored since the last checkpoint, or some
// rows were and the last one is older than Options.CheckpointInterval.
//
// The processor asks after each stored batch, so checkpoints happen on the
// store's schedule, not inside the COMMIT of a batch that happens to push
// DuckDB's WAL over checkpoint_threshold (issue 21: that COMMIT took 2-4 s
// every ~25 s at 60k events/s).
func (s *Store) CheckpointDue() bool {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed || s.path == "" || s.opts.CheckpointRows < 0 || s.uncheckpointed == 0 || s.checkpointing >= 0 {
		return false
	}
	return s.uncheckpointed >= s.opts.CheckpointRows || time.Since(s.lastCheckpoint) >= s.opts.CheckpointInterval
}

// Checkpoint switches writes to the other twin database and folds the WAL
// of the one just left into its file (compressing the rows stored there
// since its last checkpoint) in the background. It returns at once: writes
// carry on in the other twin meanwhile, which DuckDB does not block
// (BenchmarkCommitDuringCheckpoint). While the previous background
// checkpoint still runs it does nothing, and writes stay where they are.
// An in-memory store has nothing to checkpoint.
func (s *Store) Checkpoint(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.path == "" || s.checkpointing >= 0 {
		return nil
	}
	old, next := s.active, 1-s.active
	if err := s.useTwin(next); err != nil {
		s.metrics.checkpointErrors.Inc()
		return fmt.Errorf("checkpoint %s: %w", s.path, err)
	}
	s.active = next
	rows := s.uncheckpointed
	s.uncheckpointed = 0
	s.lastCheckpoint = time.Now()
	s.checkpointing = old
	done := make(chan struct{})
	s.ckDone = done
	go s.checkpointTwin(context.WithoutCancel(ctx), old, rows, done)
	return nil
}

// checkpointTwin runs CHECKPOINT on twins[i] on the checkpoint connection.
// A failure is logged and counted: the twin's WAL stays and is folded in at
// its next turn (or by DuckDB at checkpoint_threshold, or on restart).
func (s *Store) checkpointTwin(ctx context.Context, i int, rows int64, done chan struct{}) {
	defer close(done)
	start := time.Now()
	_, err := s.ckconn.ExecContext(ctx, "CHECKPOINT "+twins[i])
	d := time.Since(start)
	s.writeMu.Lock()
	s.checkpointing = -1
	s.writeMu.Unlock()
	if err != nil {
		s.metrics.checkpointErrors.Inc()
		s.opts.Logger.Error("store checkpoint failed; its WAL is folded in at the next one",
			"database", s.twinFile(i), "err", err)
		return
	}
	s.metrics.checkpointSeconds.Observe(d.Seconds())
	s.metrics.checkpointRows.Add(float64(rows))
}

func (s *Store) twinFile(i int) string { return Files(s.path)[i] }

// walSize is the size of twins[i]'s WAL file, 0 when there is none (or the
// store is in memory).
func (s *Store) walSize(i int) int64 {
	if s.path == "" {
		return 0
	}
	fi, err := os.Stat(s.twinFile(i) + ".wal")
	if err != nil {
		return 0
	}
	return fi.Size()
}

// fileGauges reports the on-disk footprint that is not the database itself:
// the WAL (what a restart replays) and DuckDB's temp directory (what large
// sorts and aggregations spilled beyond memory_limit).
func (s *Store) fileGauges() []prometheus.Collector {
	if s.path == "" {
		return nil
	}
	files := Files(s.path)
	tmp := s.path + ".tmp" // the temp_directory Open sets
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "wirelog_store_wal_bytes",
			Help: "Size of DuckDB's write-ahead logs (both twins): rows stored since their last checkpoint, replayed on restart.",
		}, func() float64 {
			var n int64
			for _, f := range files {
				if fi, err := os.Stat(f + ".wal"); err == nil {
					n += fi.Size()
				}
			}
			return float64(n)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "wirelog_store_temp_bytes",
			Help: "Bytes DuckDB has spilled to its temp directory (beside the database) because a query or checkpoint needed more than --store-memory.",
		}, func() float64 {
			var n int64
			filepath.WalkDir(tmp, func(_ string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if fi, err := d.Info(); err == nil {
						n += fi.Size()
					}
				}
				return nil
			})
			return float64(n)
		}),
	}
}
