package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkCheckpointEvery measures what checkpointing every N stored rows
// costs: CPU per event (every checkpoint included, and the one Close makes,
// so a schedule cannot win by leaving work undone) and the longest Write,
// which is what the writer waits for. "auto" leaves checkpoints to DuckDB's
// 256MB threshold, inside the commit that crosses it, and to Close.
//
//	go test -run '^$' -bench CheckpointEvery -benchtime 1x -count 3 ./internal/store
func BenchmarkCheckpointEvery(b *testing.B) {
	const total, batch = 491520, 2048 // four row groups
	all := genRows(total, "t", 0, 0, t0, time.Millisecond)
	for _, every := range []int{0, 10240, 40960, 122880} {
		name := "auto"
		if every > 0 {
			name = fmt.Sprintf("rows=%d", every)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(total) * 250)
			var longest, closing time.Duration
			var cpu time.Duration
			for range b.N {
				st, err := Open(tempDB(b), Options{DisableMaintenance: true, Retention: -1, CheckpointRows: int64(max(every, 1))})
				if err != nil {
					b.Fatal(err)
				}
				cpu0 := processCPU(b)
				for i := 0; i < total; i += batch {
					s := time.Now()
					if _, err := st.Write(context.Background(), all[i:i+batch]); err != nil {
						b.Fatal(err)
					}
					longest = max(longest, time.Since(s))
					if every > 0 && st.CheckpointDue() {
						if err := st.Checkpoint(context.Background()); err != nil {
							b.Fatal(err)
						}
					}
				}
				s := time.Now()
				if err := st.Close(); err != nil { // waits for a background checkpoint, then checkpoints what is left
					b.Fatal(err)
				}
				closing += time.Since(s)
				cpu += processCPU(b) - cpu0
			}
			b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(b.N*total), "cpu-µs/event")
			b.ReportMetric(float64(longest)/float64(time.Millisecond), "max-write-ms")
			b.ReportMetric(float64(closing)/float64(time.Millisecond)/float64(b.N), "close-ms")
		})
	}
}

// BenchmarkCommitDuringCheckpoint measures what a writer waits while a
// checkpoint runs on another connection: commits into the database being
// checkpointed wait for all of it; commits into another attached database
// do not (DuckDB's checkpoint lock is per database). This is what the
// two-file design in docs/bench/store.md would rest on.
//
//	go test -run '^$' -bench CommitDuringCheckpoint -benchtime 1x -count 3 ./internal/store
func BenchmarkCommitDuringCheckpoint(b *testing.B) {
	for _, target := range []string{"same-db", "other-db"} {
		b.Run(target, func(b *testing.B) {
			var longest, cpTime time.Duration
			commits := 0
			for range b.N {
				l, c, n := commitDuringCheckpoint(b, target == "other-db")
				longest, cpTime, commits = max(longest, l), cpTime+c, commits+n
			}
			b.ReportMetric(float64(longest)/float64(time.Millisecond), "max-commit-ms")
			b.ReportMetric(float64(cpTime)/float64(time.Millisecond)/float64(b.N), "checkpoint-ms")
			b.ReportMetric(float64(commits)/float64(b.N), "commits/checkpoint")
		})
	}
}

func commitDuringCheckpoint(b *testing.B, other bool) (longest, cp time.Duration, commits int) {
	dir := b.TempDir()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	w, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	c, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	table := `(id BIGINT, ts TIMESTAMP, service VARCHAR, message VARCHAR, trace_id VARCHAR, attrs VARCHAR)`
	for _, q := range []string{"SET threads = 1", "SET checkpoint_threshold = '1TB'",
		"ATTACH '" + filepath.Join(dir, "a.duckdb") + "' AS a", "ATTACH '" + filepath.Join(dir, "b.duckdb") + "' AS b",
		"CREATE TABLE a.ev " + table, "CREATE TABLE b.ev " + table} {
		if _, err := w.ExecContext(ctx, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	insert := func(db string, from, n int) {
		if _, err := w.ExecContext(ctx, `INSERT INTO `+db+`.ev SELECT i, TIMESTAMP '2026-01-01' + to_milliseconds(i), 'svc' || (i % 5),
			'GET /api/v1/orders/' || i || ' completed status=200 in ' || (i % 97) || 'ms for user u-' || (i % 1013),
			md5(i::VARCHAR), '{"latency_ms":' || (i % 97) || '}' FROM range(?, ?) t(i)`, from, from+n); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 4*122880; i += 4096 { // four row groups for the checkpoint to compress
		insert("a", i, 4096)
	}
	done := make(chan time.Duration)
	go func() {
		s := time.Now()
		if _, err := c.ExecContext(ctx, "CHECKPOINT a"); err != nil {
			b.Error(err)
		}
		done <- time.Since(s)
	}()
	target := "a"
	if other {
		target = "b"
	}
	for off := 1 << 30; ; off += 1000 {
		select {
		case cp = <-done:
			return longest, cp, commits
		default:
		}
		s := time.Now()
		insert(target, off, 1000)
		longest = max(longest, time.Since(s))
		commits++
	}
}
