package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"time"
)

// maintain runs retention and rollup compaction until Close.
func (s *Store) maintain() {
	defer close(s.done)
	retention := time.NewTicker(s.opts.RetentionInterval)
	defer retention.Stop()
	compact := time.NewTicker(s.opts.CompactInterval)
	defer compact.Stop()
	checkpoint := time.NewTicker(checkpointPoll)
	defer checkpoint.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-checkpoint.C:
			// The processor checkpoints after its batches; this covers a
			// store that has gone quiet with rows still in its WAL.
			if s.CheckpointDue() {
				if err := s.Checkpoint(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
					s.opts.Logger.Error("store checkpoint failed; retrying", "err", err)
				}
			}
		case now := <-retention.C:
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.RetentionInterval)
			if _, err := s.EnforceRetention(ctx, now); err != nil && !errors.Is(err, ErrClosed) {
				s.metrics.retentionErrors.Inc()
				s.opts.Logger.Error("store retention failed; expired events stay until the next run", "err", err)
			}
			cancel()
		case <-compact.C:
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.CompactInterval)
			if err := s.Compact(ctx); err != nil && !errors.Is(err, ErrClosed) {
				s.metrics.compactErrors.Inc()
				s.opts.Logger.Error("store rollup compaction failed; queries stay correct, the rollups table grows until the next run", "err", err)
			}
			cancel()
		}
	}
}

func minuteOf(sec int64) int64 {
	if sec < 0 && sec%60 != 0 {
		return sec/60 - 1
	}
	return sec / 60
}

// Deleted counts the rows one retention run removed.
type Deleted struct {
	Events  int64
	Rollups int64
}

// EnforceRetention deletes events and rollups whose event time is older than
// now minus the retention (cut at a whole second, so stats from rollups and
// events agree). It does nothing when retention is negative (keep forever).
func (s *Store) EnforceRetention(ctx context.Context, now time.Time) (Deleted, error) {
	var d Deleted
	if s.opts.Retention < 0 {
		return d, nil
	}
	cutoff := now.Add(-s.opts.Retention).Truncate(time.Second).UTC()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed {
		return d, ErrClosed
	}
	// Before the deletes: from now on queries read the seconds up to the
	// cutoff's minute from the per-second rows (rollup_minutes.go).
	if c := cutoff.Unix(); c > s.lowSec.Load() {
		s.lowSec.Store(c)
	}
	// Each twin in its own transaction (one transaction writes one
	// database); a twin being checkpointed waits for the next run.
	err := s.eachTwin(ctx, func(exec exec) error {
		res, err := exec(`DELETE FROM events WHERE ts < $1`, cutoff)
		if err != nil {
			return fmt.Errorf("delete events before %s: %w", cutoff.Format(time.RFC3339), err)
		}
		n, _ := res.RowsAffected()
		d.Events += n
		res, err = exec(`DELETE FROM rollups WHERE sec < $1`, cutoff.Unix())
		if err != nil {
			return fmt.Errorf("delete rollups before %s: %w", cutoff.Format(time.RFC3339), err)
		}
		n, _ = res.RowsAffected()
		d.Rollups += n
		// Whole minutes and 10 s spans before the cutoff (rollup_minutes.go).
		if err := deleteTierRows(exec, cutoff.Unix()); err != nil {
			return err
		}
		return expireTraceBlocks(exec, cutoff)
	}, nil)
	if err != nil {
		return Deleted{}, fmt.Errorf("retention: %w", err)
	}
	n, err := s.expireSegments(ctx, cutoff) // FormatParquet: whole segment files
	d.Events += n
	if err != nil {
		return d, fmt.Errorf("retention: %w", err)
	}
	s.metrics.retentionDeleted.WithLabelValues("events").Add(float64(d.Events))
	s.metrics.retentionDeleted.WithLabelValues("rollups").Add(float64(d.Rollups))
	return d, nil
}

// Compact sums the partial rollup rows that writes appended since the last
// compaction into one row per (second, service, level, tenant). It works on the
// minutes that got new rows only, so a late event costs a minute, not a scan.
func (s *Store) Compact(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	compacted := false
	err := s.eachTwin(ctx, func(exec exec) error {
		dirty := s.dirty[s.active]
		if len(dirty) == 0 {
			return nil
		}
		compacted = true
		return compactMinutes(exec, dirty)
	}, func() { clear(s.dirty[s.active]) })
	if err != nil {
		return fmt.Errorf("compact rollups: %w", err)
	}
	if compacted {
		s.metrics.compactions.Inc()
	}
	return nil
}

// compactMinutes sums the partial rollup rows of the dirty minutes, in the
// open transaction.
func compactMinutes(exec exec, dirty map[int64]struct{}) error {
	minutes := make([]int64, 0, len(dirty))
	for m := range dirty {
		minutes = append(minutes, m)
	}
	slices.Sort(minutes)
	// Contiguous minutes become one range [lo, hi) of seconds.
	type span struct{ lo, hi int64 }
	var spans []span
	for _, m := range minutes {
		if n := len(spans); n > 0 && spans[n-1].hi == m*60 {
			spans[n-1].hi += 60
			continue
		}
		spans = append(spans, span{m * 60, m*60 + 60})
	}
	for _, sp := range spans {
		if _, err := exec(`CREATE OR REPLACE TEMP TABLE rollups_compact AS
			SELECT sec, service, level, sum(count)::BIGINT AS count, sum(bytes)::BIGINT AS bytes,
				coalesce(tenant, '') AS tenant
			FROM rollups WHERE sec >= $1 AND sec < $2 GROUP BY sec, service, level, coalesce(tenant, '')`, sp.lo, sp.hi); err != nil {
			return fmt.Errorf("sum rollups: %w", err)
		}
		if _, err := exec(`DELETE FROM rollups WHERE sec >= $1 AND sec < $2`, sp.lo, sp.hi); err != nil {
			return fmt.Errorf("delete partial rollups: %w", err)
		}
		if _, err := exec(`INSERT INTO rollups (sec, service, level, count, bytes, tenant)
			SELECT sec, service, level, count, bytes, tenant FROM rollups_compact`); err != nil {
			return fmt.Errorf("insert summed rollups: %w", err)
		}
		if err := compactMinuteRows(exec, sp.lo, sp.hi); err != nil { // rollup_minutes.go
			return err
		}
	}
	_, err := exec(`DROP TABLE IF EXISTS rollups_compact`)
	return err
}

// eachTwin runs fn in one transaction per twin, with the writer connection
// switched to that twin (s.active names it meanwhile), skipping the twin a
// background checkpoint is folding: a commit into it would wait for the
// checkpoint while holding writeMu. after, when set, runs once a twin's
// transaction committed. The caller holds writeMu.
func (s *Store) eachTwin(ctx context.Context, fn func(exec) error, after func()) error {
	home := s.active
	defer func() {
		if s.active != home {
			s.active = home
			if err := s.useTwin(home); err != nil {
				s.opts.Logger.Error("store: switching the writer back to its database failed; the next write retries", "err", err)
			}
		}
	}()
	for i := range twins {
		if i == s.checkpointing {
			continue
		}
		if i != s.active {
			if err := s.useTwin(i); err != nil {
				return err
			}
			s.active = i
		}
		if err := s.inTx(ctx, fn); err != nil {
			return fmt.Errorf("%s: %w", twins[i], err)
		}
		if after != nil {
			after()
		}
	}
	return nil
}

// useTwin points the writer connection at twins[i]; the caller holds
// writeMu and sets s.active.
func (s *Store) useTwin(i int) error {
	return s.withWriter(func(conn driver.Conn) error {
		if _, err := conn.(driver.ExecerContext).ExecContext(context.Background(), "USE "+twins[i], nil); err != nil {
			return fmt.Errorf("switch the writer to %s: %w", twins[i], err)
		}
		return nil
	})
}

// exec runs one statement in the writer's open transaction.
type exec func(query string, args ...any) (driver.Result, error)

// inTx runs fn in a transaction on the writer connection; the caller holds
// writeMu. It uses explicit BEGIN/COMMIT on the driver connection, not
// database/sql's Tx: a Tx whose context expires discards its connection, and
// the writer connection must outlive a slow maintenance run.
func (s *Store) inTx(ctx context.Context, fn func(exec) error) error {
	return s.withWriter(func(conn driver.Conn) (err error) {
		ex := conn.(driver.ExecerContext)
		if _, err := ex.ExecContext(ctx, "BEGIN TRANSACTION", nil); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		defer func() {
			if err != nil {
				if _, rbErr := ex.ExecContext(context.Background(), "ROLLBACK", nil); rbErr != nil {
					err = errors.Join(err, fmt.Errorf("rollback: %w", rbErr))
				}
			}
		}()
		err = fn(func(query string, args ...any) (driver.Result, error) {
			named := make([]driver.NamedValue, len(args))
			for i, a := range args {
				named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
			}
			return ex.ExecContext(ctx, query, named)
		})
		if err != nil {
			return err
		}
		if _, err := ex.ExecContext(ctx, "COMMIT", nil); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	})
}

// withWriter runs fn on the writer's driver connection; the caller holds
// writeMu. Should database/sql ever have closed the connection, it opens a
// new one once instead of failing every later write.
func (s *Store) withWriter(fn func(driver.Conn) error) error {
	run := func() error { return s.wconn.Raw(func(dc any) error { return fn(dc.(driver.Conn)) }) }
	err := run()
	if !errors.Is(err, sql.ErrConnDone) {
		return err
	}
	s.opts.Logger.Warn("store writer connection was closed; opening a new one")
	c, cerr := s.db.Conn(context.Background())
	if cerr != nil {
		return errors.Join(err, fmt.Errorf("reopen writer connection: %w", cerr))
	}
	if _, err := c.ExecContext(context.Background(), "USE "+twins[s.active]); err != nil {
		c.Close()
		return fmt.Errorf("reopen writer connection: %w", err)
	}
	s.wconn.Close()
	s.wconn = c
	return run()
}
