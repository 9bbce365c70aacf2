package testproc

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/loadgen"
)

// Defaults of a sustained crash run (issue 12: "kill -9 of the processor
// under sustained load at the new rate, four times"): the load of issue 12's
// sustained scenario (`make sustained`: as fast as loadgen sends, 8
// connections, batches of 500, ~210 B events, 120 s) and four kills.
const (
	DefaultCrashDuration    = 120 * time.Second
	DefaultCrashConcurrency = 8
	DefaultCrashBatch       = 500
	DefaultCrashKills       = 4
	// crashMinUp is the least load a restarted processor takes before the
	// next kill, so every kill lands on a processor that is storing (and
	// replaying what the previous one left), not on one still starting.
	crashMinUp = 3 * time.Second
	// crashProgress is how often the run prints a progress line.
	crashProgress = 10 * time.Second
)

// CrashLoad is one sustained crash run: loadgen sends as fast as it can
// (or at Load.Rate) for Load.Duration while the processor is killed with
// SIGKILL Kills times at moments spread over the run (slot i of Kills+1,
// ± a quarter slot) and started again at once.
type CrashLoad struct {
	// Load is the loadgen configuration; Target must stay valid across
	// restarts. AckLog is set by Run.
	Load  loadgen.Config
	Kills int
	// Kill kills the processor with SIGKILL and waits for it to exit;
	// Restart starts it again on the same store and returns once it
	// serves. Both are called from Run's goroutine.
	Kill, Restart func()
	// Seed picks the kill moments (0: from the clock).
	Seed uint64
}

// CrashLoadFromEnv is the load of a sustained crash run, with the
// environment's overrides: WIRELOG_CRASH_DURATION (a Go duration),
// WIRELOG_CRASH_RATE (events/s, 0 = as fast as possible),
// WIRELOG_CRASH_CONCURRENCY, WIRELOG_CRASH_BATCH, WIRELOG_CRASH_KILLS.
func CrashLoadFromEnv(t testing.TB) (loadgen.Config, int) {
	t.Helper()
	cfg := loadgen.Config{Duration: DefaultCrashDuration, Concurrency: DefaultCrashConcurrency, Batch: DefaultCrashBatch,
		Seed: 12, RunID: "crash"}
	kills := DefaultCrashKills
	env := func(name string, parse func(string) error) {
		if v := os.Getenv(name); v != "" {
			if err := parse(v); err != nil {
				t.Fatalf("%s=%q: %v", name, v, err)
			}
		}
	}
	env("WIRELOG_CRASH_DURATION", func(v string) (err error) { cfg.Duration, err = time.ParseDuration(v); return })
	env("WIRELOG_CRASH_RATE", func(v string) (err error) { cfg.Rate, err = strconv.ParseFloat(v, 64); return })
	env("WIRELOG_CRASH_CONCURRENCY", func(v string) (err error) { cfg.Concurrency, err = strconv.Atoi(v); return })
	env("WIRELOG_CRASH_BATCH", func(v string) (err error) { cfg.Batch, err = strconv.Atoi(v); return })
	env("WIRELOG_CRASH_KILLS", func(v string) (err error) { kills, err = strconv.Atoi(v); return })
	return cfg, kills
}

// CrashReport is what a CrashLoad run did.
type CrashReport struct {
	Load loadgen.Report
	// KillsUnderLoad counts the kills that landed while loadgen was
	// still sending.
	KillsUnderLoad int
	// Down is the total time from each kill to the restarted processor
	// serving again.
	Down time.Duration
	// AckedAtKill is the number of events acknowledged when each kill
	// was sent.
	AckedAtKill []int64
}

// Run runs the load, kills and restarts the processor c.Kills times, and
// returns when the load is done (the processor is running). The ack log
// at ackPath gets every acknowledged event id.
func (c CrashLoad) Run(t testing.TB, ackPath string) CrashReport {
	t.Helper()
	f, err := os.Create(ackPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	acked := &countingWriter{w: f}
	cfg := c.Load
	cfg.AckLog = acked
	seed := c.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(seed, 12))

	start := time.Now()
	done := make(chan loadgen.Report, 1)
	go func() {
		rep, err := loadgen.Run(context.Background(), cfg)
		if err != nil {
			t.Errorf("loadgen: %v", err)
		}
		done <- rep
	}()
	var out CrashReport
	var rep loadgen.Report
	finished := false
	slot := cfg.Duration / time.Duration(c.Kills+1)
	lastUp := start
	tick := time.NewTicker(crashProgress)
	defer tick.Stop()
	wait := func(until time.Time) {
		for !finished && time.Now().Before(until) {
			select {
			case rep = <-done:
				finished = true
			case <-tick.C:
				el := time.Since(start)
				n := acked.lines.Load()
				fmt.Fprintf(os.Stderr, "crash run: %5.0fs  %d acked (%.0f/s)  %d of %d kills\n",
					el.Seconds(), n, float64(n)/el.Seconds(), len(out.AckedAtKill), c.Kills)
			case <-time.After(time.Until(until)):
			}
		}
	}
	for i := 0; i < c.Kills; i++ {
		at := start.Add(slot*time.Duration(i+1) + time.Duration(rng.Int64N(int64(slot/2)+1)) - slot/4)
		if earliest := lastUp.Add(crashMinUp); at.Before(earliest) {
			at = earliest
		}
		wait(at)
		if !finished {
			out.KillsUnderLoad++
		}
		out.AckedAtKill = append(out.AckedAtKill, acked.lines.Load())
		k := time.Now()
		c.Kill()
		c.Restart()
		lastUp = time.Now()
		out.Down += lastUp.Sub(k)
		t.Logf("kill %d at %.1fs, %d acknowledged; serving again after %v", i+1, k.Sub(start).Seconds(),
			out.AckedAtKill[i], lastUp.Sub(k).Round(time.Millisecond))
	}
	if !finished {
		wait(time.Now().Add(cfg.Duration + time.Hour)) // until the load ends
	}
	out.Load = rep
	return out
}

// countingWriter counts the lines written through it (one acknowledged
// event id each), for the progress line and the kill log.
type countingWriter struct {
	w     *os.File
	lines atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n := 0
	for _, b := range p {
		if b == '\n' {
			n++
		}
	}
	c.lines.Add(int64(n))
	return c.w.Write(p)
}

// WaitStored waits until the processor has drained after a crash run:
// stored() has not moved for 3 s, is at least want, and settled() (the
// consumer lag, say; nil for none) is nil. It gives up when stored() has
// not moved for a minute, or after limit, and then returns ok false, so
// the caller can still count what is missing instead of failing blind.
// It returns the last count and when it last moved.
func WaitStored(want int64, limit time.Duration, stored func() int64, settled func() error) (n int64, moved time.Time, ok bool) {
	n, moved = -1, time.Now()
	deadline := moved.Add(limit)
	for time.Now().Before(deadline) && time.Since(moved) < time.Minute {
		if got := stored(); got != n {
			n, moved = got, time.Now()
		}
		if n >= want && time.Since(moved) >= 3*time.Second && (settled == nil || settled() == nil) {
			return n, moved, true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return n, moved, false
}

// Verdict logs and reports a crash run — what was acknowledged, the kills,
// the drain, the exactly-once check of the stopped stores in dataDirs —
// and fails b when fewer than kills landed under load or an acknowledged
// event is missing or stored twice. stored is the processor's total when it
// drained (at drained); start and loadEnd bound the load.
func (r CrashReport) Verdict(b *testing.B, ackPath string, kills int, stored int64, start, loadEnd, drained time.Time, dataDirs ...string) {
	b.Helper()
	check := time.Now()
	eo := CheckExactlyOnce(b, ackPath, dataDirs...)
	b.Logf("load %.1fs: %d acknowledged (%.0f/s over the run, %.0f/s while the processor served), ack p50 %.1f ms p99 %.1f ms, errors %v",
		r.Load.DurationS, r.Load.EventsAcked, r.Load.EventsPerSecond,
		float64(r.Load.EventsAcked)/(r.Load.DurationS-r.Down.Seconds()), r.Load.Latency.P50, r.Load.Latency.P99, r.Load.Errors)
	b.Logf("%d kills of the processor (%d under load), down %v in all; drained %v after the load ended; %.0f stored/s from start to drained",
		len(r.AckedAtKill), r.KillsUnderLoad, r.Down.Round(time.Millisecond), drained.Sub(loadEnd).Round(time.Millisecond),
		float64(stored)/drained.Sub(start).Seconds())
	b.Logf("exactly-once check (%v): %v", time.Since(check).Round(time.Second), eo)
	b.ReportMetric(r.Load.EventsPerSecond, "acked/s")
	b.ReportMetric(float64(stored)/drained.Sub(start).Seconds(), "stored/s")
	b.ReportMetric(float64(r.Load.EventsAcked), "acked")
	b.ReportMetric(float64(r.KillsUnderLoad), "kills")
	b.ReportMetric(float64(eo.Duplicated), "duplicated")
	b.ReportMetric(float64(eo.Missing), "missing")
	if r.KillsUnderLoad < kills {
		b.Errorf("only %d of %d kills landed under load: lengthen WIRELOG_CRASH_DURATION", r.KillsUnderLoad, kills)
	}
	if !eo.OK() {
		b.Fatalf("not exactly once after %d kills of the processor at %.0f events/s: %v", len(r.AckedAtKill), r.Load.EventsPerSecond, eo)
	}
}
