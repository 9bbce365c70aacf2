package store

import (
	"context"
	"os"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestCPExp(t *testing.T) {
	thr := os.Getenv("THR")
	if thr == "" {
		t.Skip()
	}
	every, _ := strconv.Atoi(os.Getenv("EVERY"))
	batch, _ := strconv.Atoi(os.Getenv("BATCH"))
	total, _ := strconv.Atoi(os.Getenv("TOTAL"))
	st, err := Open(tempDB(t), Options{DisableMaintenance: true, Retention: -1, CheckpointThreshold: thr})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	all := genRows(total, "t", 0, 0, t0, time.Millisecond)
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(0, &ru0)
	w0 := time.Now()
	var durs, cps []time.Duration
	since := 0
	for i := 0; i < total; i += batch {
		s := time.Now()
		mustWrite(t, st, all[i:i+batch])
		durs = append(durs, time.Since(s))
		since += batch
		if every > 0 && since >= every {
			s := time.Now()
			if _, err := st.db.ExecContext(context.Background(), "CHECKPOINT"); err != nil {
				t.Fatal(err)
			}
			cps = append(cps, time.Since(s))
			since = 0
		}
	}
	s := time.Now()
	st.db.ExecContext(context.Background(), "CHECKPOINT")
	final := time.Since(s)
	wall := time.Since(w0)
	syscall.Getrusage(0, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	sort.Slice(cps, func(i, j int) bool { return cps[i] < cps[j] })
	var cpmed, cpmax time.Duration
	if len(cps) > 0 {
		cpmed, cpmax = cps[len(cps)/2], cps[len(cps)-1]
	}
	t.Logf("RESULT thr=%s every=%d batch=%d rows=%d cpu/event=%.2fus wall/event=%.2fus write p50=%v max=%v checkpoints=%d med=%v max=%v final=%v",
		thr, every, batch, total, float64(cpu.Nanoseconds())/1e3/float64(total), float64(wall.Nanoseconds())/1e3/float64(total),
		durs[len(durs)/2], durs[len(durs)-1], len(cps), cpmed, cpmax, final)
}
