package store

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Segment compaction: a segment is written at least every
// SegmentInterval, so a slow stream of events makes many small files, and
// every query opens every file the view lists. Small files of similar size
// are merged (tiered, like an LSM tree): a file is a candidate while it
// holds less than a quarter of SegmentRows; files are grouped by size tier
// (powers of 4) and a group of at least segmentCompactMin is merged, so
// each merge moves its events up at least one tier and an event is
// rewritten at most log4(SegmentRows/4) ≈ 7 times, and only when the rate
// is low: at the rates that fill a segment within the interval nothing is
// ever compacted.
//
// Only files older than segmentCompactAge are merged: a burst of small
// files while the processor is starved of CPU (seen under sustained load)
// is not worth merging while that load lasts, and a merge needs CPU and
// DuckDB memory (an ORDER BY of a dozen files ran out of the 128MB `run`
// gives DuckDB: merges keep the files' order instead, streaming).
const (
	segmentCompactMin = 4  // files of one tier that make a merge
	segmentCompactMax = 16 // most files merged at once
)

// segmentCompactAge is how old a file must be to be merged; a variable so
// tests can merge at once.
var segmentCompactAge = 5 * time.Minute

func segmentTier(rows int64) int { return bits.Len64(uint64(rows)) / 2 }

// compactLoop merges small segments every CompactInterval until Close.
func (s *Store) compactLoop(g *segments) {
	defer close(g.compactDone)
	t := time.NewTicker(s.opts.CompactInterval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			for {
				ctx, cancel := context.WithTimeout(context.Background(), s.opts.CompactInterval)
				merged, err := s.CompactSegments(ctx)
				cancel()
				if err != nil && !errors.Is(err, ErrClosed) {
					s.metrics.compactErrors.Inc()
					s.opts.Logger.Error("store: merging small segment files failed; queries stay correct, the files stay until the next run", "err", err)
				}
				if err != nil || merged == 0 {
					break
				}
				select {
				case <-g.stop:
					return
				default:
				}
			}
		}
	}
}

// CompactSegments merges one group of small segment files of the same size
// tier and twin into one file, and returns how many files it
// merged (0: nothing to do). The merge (DuckDB reads the files and writes
// the new one) runs without the write lock; then one transaction in the
// twin that registered them replaces their rows in segments by the new
// file's. A crash before that COMMIT leaves an unregistered file, removed
// on Open; after it, the old files are unregistered and removed at the next
// retention run (a query that started before may still read them). No
// offset moves: exactly-once is not involved.
func (s *Store) CompactSegments(ctx context.Context) (int, error) {
	s.writeMu.Lock()
	if s.closed {
		s.writeMu.Unlock()
		return 0, ErrClosed
	}
	g := s.seg
	if g == nil {
		s.writeMu.Unlock()
		return 0, nil
	}
	type key struct{ twin, tier int }
	groups := map[key][]segmentFile{}
	var order []key
	for _, f := range g.files { // oldest first
		if f.rows*4 >= int64(g.maxRows) || f.twin == s.checkpointing || time.Since(f.created) < segmentCompactAge {
			continue
		}
		k := key{f.twin, segmentTier(f.rows)}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], f)
	}
	var pick []segmentFile
	for _, k := range order {
		if len(groups[k]) >= segmentCompactMin {
			pick = groups[k][:min(len(groups[k]), segmentCompactMax)]
			break
		}
	}
	dir := g.dir
	s.writeMu.Unlock()
	if len(pick) == 0 {
		return 0, nil
	}

	name := fmt.Sprintf("%d.parquet", time.Now().UnixNano())
	path := filepath.Join(dir, name)
	var paths []string
	var file segmentFile
	for i, f := range pick {
		paths = append(paths, "'"+sqlString(filepath.Join(dir, f.name))+"'")
		file.rows += f.rows
		if i == 0 || f.minTS.Before(file.minTS) {
			file.minTS = f.minTS
		}
		if i == 0 || f.maxTS.After(file.maxTS) {
			file.maxTS = f.maxTS
		}
	}
	file.name, file.twin, file.created = name, pick[0].twin, time.Now().UTC()
	q := fmt.Sprintf(`COPY (SELECT * FROM read_parquet([%s])) TO '%s' (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE %d)`,
		strings.Join(paths, ","), sqlString(path), segmentRowGroup)
	if _, err := s.db.ExecContext(ctx, q); err != nil {
		os.Remove(path)
		return 0, fmt.Errorf("merge %d segment files: %w", len(pick), err)
	}
	size, err := syncFile(path)
	if err != nil {
		os.Remove(path)
		return 0, err
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	registered := map[string]bool{}
	for _, f := range g.files {
		registered[f.name] = true
	}
	for _, f := range pick {
		if !registered[f.name] || s.closed || f.twin == s.checkpointing {
			// Expired meanwhile, shutting down, or its twin is being
			// checkpointed (a commit there would wait for it): next run.
			os.Remove(path)
			return 0, nil
		}
	}
	if err := s.replaceSegments(ctx, pick, file, size); err != nil {
		os.Remove(path)
		return 0, err
	}
	merged := map[string]bool{}
	for _, f := range pick {
		merged[f.name] = true
		g.doomed = append(g.doomed, f.name)
	}
	kept := g.files[:0]
	for _, f := range g.files {
		if !merged[f.name] {
			kept = append(kept, f)
		}
	}
	g.files = append(kept, file)
	sort.SliceStable(g.files, func(i, j int) bool { return g.files[i].minTS.Before(g.files[j].minTS) })
	if err := s.replaceEventsView(ctx); err != nil {
		return len(pick), err
	}
	g.compactions.Inc()
	return len(pick), nil
}

// replaceSegments swaps old for file in the segments table of their twin,
// in one transaction (the caller holds writeMu).
func (s *Store) replaceSegments(ctx context.Context, old []segmentFile, file segmentFile, size int64) error {
	home := s.active
	if file.twin != home {
		if err := s.useTwin(file.twin); err != nil {
			return err
		}
		s.active = file.twin
		defer func() {
			s.active = home
			if err := s.useTwin(home); err != nil {
				s.opts.Logger.Error("store: switching the writer back to its database failed; the next write retries", "err", err)
			}
		}()
	}
	names := make([]string, len(old))
	for i, f := range old {
		names[i] = "'" + sqlString(f.name) + "'"
	}
	return s.inTx(ctx, func(exec exec) error {
		res, err := exec(`DELETE FROM segments WHERE file IN (` + strings.Join(names, ",") + `)`)
		if err != nil {
			return fmt.Errorf("deregister merged segments: %w", err)
		}
		if n, _ := res.RowsAffected(); n != int64(len(old)) {
			return fmt.Errorf("deregister merged segments: %d of %d were registered in %s", n, len(old), twins[file.twin])
		}
		if _, err := exec(`INSERT INTO segments VALUES ($1, $2, $3, $4, $5, $6)`,
			file.name, file.rows, file.minTS, file.maxTS, size, file.created); err != nil {
			return fmt.Errorf("register merged segment %s: %w", file.name, err)
		}
		return nil
	})
}

// syncFile fsyncs a file another writer (DuckDB) wrote, and its directory
// entry, and returns its size.
func syncFile(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s to fsync it: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("fsync %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return fi.Size(), syncDir(filepath.Dir(path))
}
