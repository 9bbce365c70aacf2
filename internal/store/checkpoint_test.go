package store

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// TestCheckpointSchedule checks what the processor relies on: a checkpoint
// is due once CheckpointRows rows were stored since the last one (or the
// interval passed with rows pending), Checkpoint folds the WAL into the file
// and resets the count, the rows stay readable, and a reopened store holds
// them.
func TestCheckpointSchedule(t *testing.T) {
	path := tempDB(t)
	st, err := Open(path, Options{DisableMaintenance: true, Retention: -1, CheckpointRows: 1000, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if st.CheckpointDue() {
		t.Fatal("checkpoint due on an empty store")
	}
	mustWrite(t, st, genRows(999, "t", 0, 0, t0, time.Millisecond))
	if st.CheckpointDue() {
		t.Fatal("checkpoint due after 999 of 1000 rows")
	}
	mustWrite(t, st, genRows(1, "t", 0, 999, t0, time.Millisecond))
	if !st.CheckpointDue() {
		t.Fatal("checkpoint not due after 1000 rows")
	}
	wal := func() int64 {
		fi, err := os.Stat(path + ".wal")
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	if wal() == 0 {
		t.Fatal("no WAL after 1000 rows: DuckDB checkpointed by itself, so this test proves nothing")
	}
	if err := st.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st.CheckpointDue() {
		t.Fatal("checkpoint still due right after Checkpoint")
	}
	if n := wal(); n != 0 {
		t.Fatalf("WAL holds %d bytes after Checkpoint", n)
	}
	// Rows already stored are skipped and do not count towards the next one.
	mustWrite(t, st, genRows(1000, "t", 0, 0, t0, time.Millisecond))
	if st.CheckpointDue() {
		t.Fatal("replayed rows made a checkpoint due")
	}
	if n := countEvents(t, st); n != 1000 {
		t.Fatalf("%d events, want 1000", n)
	}
	st.Close()
	if err := st.Checkpoint(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Checkpoint after Close = %v, want ErrClosed", err)
	}
	st2 := openTest(t, path)
	if n := countEvents(t, st2); n != 1000 {
		t.Fatalf("%d events after reopening, want 1000", n)
	}
}

// TestCheckpointDueByAge: a trickle of rows below CheckpointRows still gets
// checkpointed once CheckpointInterval has passed, so the WAL a crash
// replays stays small; an in-memory store never asks for one.
func TestCheckpointDueByAge(t *testing.T) {
	st, err := Open(tempDB(t), Options{DisableMaintenance: true, Retention: -1, CheckpointRows: 1 << 30, CheckpointInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mustWrite(t, st, genRows(10, "t", 0, 0, t0, time.Millisecond))
	deadline := time.Now().Add(10 * time.Second)
	for !st.CheckpointDue() {
		if time.Now().After(deadline) {
			t.Fatal("checkpoint never became due by age")
		}
		time.Sleep(20 * time.Millisecond)
	}

	mem, err := Open("", Options{DisableMaintenance: true, Retention: -1, CheckpointRows: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	mustWrite(t, mem, genRows(10, "t", 0, 0, t0, time.Millisecond))
	if mem.CheckpointDue() {
		t.Fatal("an in-memory store asked for a checkpoint")
	}
	if err := mem.Checkpoint(context.Background()); err != nil {
		t.Fatalf("Checkpoint of an in-memory store: %v", err)
	}
}
