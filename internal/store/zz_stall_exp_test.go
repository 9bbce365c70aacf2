package store

import (
	osexec "os/exec"
	"path/filepath"
	"syscall"
	"context"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"
)

// go test -run TestStallExp -v ./internal/store  (throwaway experiment)
func TestStallExp(t *testing.T) {
	thr := os.Getenv("THR")
	if thr == "" {
		t.Skip()
	}
	manual, _ := strconv.Atoi(os.Getenv("MANUAL_MS"))
	batch, _ := strconv.Atoi(os.Getenv("BATCH"))
	if batch == 0 {
		batch = 200
	}
	tdb := tempDB(t); os.Setenv("TDIR", filepath.Dir(tdb)); st, err := Open(tdb, Options{DisableMaintenance: true, Retention: -1, CheckpointThreshold: thr})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stop := make(chan struct{})
	done := make(chan struct{})
	var cpDur []time.Duration
	if manual > 0 {
		go func() {
			defer close(done)
			c, err := st.db.Conn(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			tk := time.NewTicker(time.Duration(manual) * time.Millisecond)
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
				}
				s := time.Now()
				if _, err := c.ExecContext(context.Background(), os.Getenv("CPSQL")); err != nil {
					t.Log("checkpoint:", err)
				}
				cpDur = append(cpDur, time.Since(s))
			}
		}()
	} else {
		close(done)
	}
	var ru0 syscall.Rusage
	syscall.Getrusage(0, &ru0)
	var durs []time.Duration
	off := int64(0)
	dur, _ := time.ParseDuration(os.Getenv("DUR")); if dur == 0 { dur = 20 * time.Second }; end := time.Now().Add(dur)
	for time.Now().Before(end) {
		rows := genRows(batch, "t", 0, off, t0.Add(time.Duration(off)*time.Millisecond), time.Millisecond)
		off += int64(batch)
		s := time.Now()
		mustWrite(t, st, rows)
		d := time.Since(s)
		durs = append(durs, d)
		if every, _ := strconv.Atoi(os.Getenv("EVERY")); every > 0 && off%int64(every) == 0 {
			s := time.Now()
			if _, err := st.db.ExecContext(context.Background(), os.Getenv("CPSQL")); err != nil {
				t.Log(err)
			}
			t.Logf("inline checkpoint at %d: %v", off, time.Since(s))
		}
		if d > 100*time.Millisecond {
			t.Logf("slow write at row %d: %v", off, d)
		}
	}
	var ru1 syscall.Rusage
	syscall.Getrusage(0, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano())
	t.Logf("cpu/event = %.2fus", float64(cpu.Microseconds())/float64(off))
	var sv string
	st.db.QueryRow("SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = current_database()").Scan(&sv)
	t.Log("storage:", sv)
	if out, err := osexec.Command("sh", "-c", "ls -la "+os.Getenv("TDIR")).CombinedOutput(); err == nil { t.Log(string(out)) }
	close(stop)
	<-done
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	t.Logf("thr=%s manual=%dms writes=%d rows=%d p50=%v p99=%v max=%v checkpoints=%v", thr, manual, len(durs), off,
		durs[len(durs)/2], durs[len(durs)*99/100], durs[len(durs)-1], cpDur)
}
