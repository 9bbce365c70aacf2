package store

import (
	"context"
	"database/sql/driver"
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
// The processor asks after each stored batch, so the checkpoint runs between
// batches at a moment it chooses, not inside the COMMIT of a batch that
// happens to push DuckDB's WAL over checkpoint_threshold (issue 21: that
// COMMIT took 2-4 s every ~25 s at 60k events/s).
func (s *Store) CheckpointDue() bool {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed || s.path == "" || s.uncheckpointed == 0 {
		return false
	}
	return s.uncheckpointed >= s.opts.CheckpointRows || time.Since(s.lastCheckpoint) >= s.opts.CheckpointInterval
}

// Checkpoint folds DuckDB's write-ahead log into the database file
// (compressing the rows stored since the last one). Writes wait while it
// runs: DuckDB's checkpoint blocks appends to the tables it writes, whichever
// connection runs it (measured, docs/bench/store.md), so it runs under the
// write lock instead of racing the writer. An in-memory store has nothing to
// checkpoint.
func (s *Store) Checkpoint(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.path == "" {
		return nil
	}
	start := time.Now()
	err := s.withWriter(func(conn driver.Conn) error {
		_, err := conn.(driver.ExecerContext).ExecContext(ctx, "CHECKPOINT", nil)
		return err
	})
	if err != nil {
		s.metrics.checkpointErrors.Inc()
		return fmt.Errorf("checkpoint %s: %w (DuckDB checkpoints by itself once the WAL passes --store-checkpoint-threshold)", s.path, err)
	}
	d := time.Since(start)
	s.metrics.checkpointSeconds.Observe(d.Seconds())
	s.metrics.checkpointRows.Add(float64(s.uncheckpointed))
	s.uncheckpointed = 0
	s.lastCheckpoint = time.Now()
	return nil
}

// fileGauges reports the on-disk footprint that is not the database itself:
// the WAL (what a restart replays) and DuckDB's temp directory (what large
// sorts and aggregations spilled beyond memory_limit).
func (s *Store) fileGauges() []prometheus.Collector {
	if s.path == "" {
		return nil
	}
	wal := s.path + ".wal"
	tmp := s.path + ".tmp" // DuckDB's default temp_directory for a file database
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "wirelog_store_wal_bytes",
			Help: "Size of DuckDB's write-ahead log: rows stored since the last checkpoint, replayed on restart.",
		}, func() float64 {
			fi, err := os.Stat(wal)
			if err != nil {
				return 0
			}
			return float64(fi.Size())
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
