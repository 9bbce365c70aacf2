package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/loadgen"
	"github.com/wirelog/wirelog/internal/testproc"
)

// TestCrashSafety kills wirelog with SIGKILL several times while loadgen
// posts, then tears the tail of the newest log segment, restarts, and checks
// that every event that got a 202 is stored exactly once.
func TestCrashSafety(t *testing.T) { crashSafety(t, "--store-format", "table") }

// TestCrashSafetySegments is TestCrashSafety with the store writing Parquet
// segment files (the default format with a data directory): buffered events die with the process and must be
// replayed, each segment's offsets commit with it, and an unregistered
// file left by a kill between writing a segment and its commit is removed.
func TestCrashSafetySegments(t *testing.T) { crashSafety(t, "--store-format", "parquet") }

// TestCrashSafetyCompressedLog is TestCrashSafety with the embedded log
// compressing its batches (--log-compression snappy): kills land while
// compressed batches are written, recovery cuts a torn compressed tail,
// and the processor reads every acknowledged event back through the codec.
func TestCrashSafetyCompressedLog(t *testing.T) { crashSafety(t, "--log-compression", "snappy") }

func crashSafety(t *testing.T, extra ...string) {
	dir := t.TempDir()
	ackPath := filepath.Join(t.TempDir(), "acked.txt")
	ack, err := os.Create(ackPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ack.Close()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	const rounds = 4
	for round := 0; round < rounds; round++ {
		n := startNode(t, dir, extra...)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan loadgen.Report, 1)
		go func() {
			rep, _ := loadgen.Run(ctx, loadgen.Config{
				Target: n.URL, Duration: 20 * time.Second, Count: 400_000,
				Concurrency: 4, Batch: 200, AckLog: ack, RunID: fmt.Sprintf("crash%d", round),
				Seed: uint64(round + 1),
			})
			done <- rep
		}()
		// Kill at a random moment once load is flowing.
		time.Sleep(time.Duration(400+rng.IntN(1600)) * time.Millisecond)
		n.Kill9()
		cancel()
		rep := <-done
		t.Logf("round %d: killed after %d acked events (%d requests, errors %v)", round, rep.EventsAcked, rep.Requests, rep.Errors)
	}
	acked := testproc.ReadLines(t, ackPath)
	if len(acked) == 0 {
		t.Fatal("no event was acknowledged before the kills; the test proves nothing")
	}

	// Tear the newest segment: a partial batch header and body as a crash
	// mid-write would leave.
	segs, _ := filepath.Glob(filepath.Join(dir, "log", "*", "*.log"))
	sort.Strings(segs)
	if len(segs) == 0 {
		t.Fatalf("no segment files under %s", filepath.Join(dir, "log"))
	}
	newest := segs[len(segs)-1]
	f, err := os.OpenFile(newest, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("\x00\x00\x00\x01torn batch that never finished"))
	f.Close()

	n := startNode(t, dir, extra...)
	if !strings.Contains(strings.ToLower(n.Logs()), "trunc") {
		t.Errorf("restart did not report truncating the torn tail of %s; logs:\n%s", newest, n.Logs())
	}
	// Wait until the processor has drained the log: stats stop moving and
	// cover at least every acknowledged event.
	var last float64 = -1
	stable := 0
	eventually(t, 120*time.Second, func() error {
		got := statsEvents(n)
		if got == last && got >= float64(len(acked)) {
			stable++
		} else {
			stable = 0
		}
		last = got
		if stable < 10 {
			return fmt.Errorf("stored %v events, %d acknowledged", got, len(acked))
		}
		return nil
	})
	// The log still takes writes after recovery.
	if code, _, _ := n.post("application/x-ndjson", "", []byte(`{"message":"after recovery","event_id":"after-1"}`)); code != http.StatusAccepted {
		t.Fatalf("post after recovery: %d", code)
	}
	eventually(t, 30*time.Second, func() error {
		if got := statsEvents(n); got != last+1 {
			return fmt.Errorf("stored %v, want %v", got, last+1)
		}
		return nil
	})
	if err := n.Term(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	st := testproc.ReadStore(t, dir)
	if slices.Contains(extra, "parquet") {
		if segs, _ := filepath.Glob(filepath.Join(dir, "wirelog.duckdb.segments", "*.parquet")); len(segs) == 0 {
			t.Fatal("--store-format parquet left no segment file: the events were not stored as segments")
		} else {
			t.Logf("%d segment files", len(segs))
		}
	}
	rows, distinct := st.Rows, int64(len(st.IDs))
	if rows != distinct {
		t.Fatalf("stored %d rows but %d distinct event ids: %d duplicates", rows, distinct, rows-distinct)
	}
	missing := 0
	for _, id := range acked {
		if st.IDs[id] == 0 {
			missing++
			if missing < 5 {
				t.Errorf("acknowledged event %s is not in the store", id)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events lost", missing, len(acked))
	}
	t.Logf("%d acknowledged events, %d stored (the rest were durable but unanswered when killed), no duplicates", len(acked), rows)
}

// TestBackpressure pauses the processor, posts until the log's backlog bound
// is reached, and expects 429 with Retry-After and bounded memory; after a
// resume every acknowledged event is stored.
func TestBackpressure(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "--max-backlog-bytes", strconv.Itoa(8<<20))
	if resp, err := http.Post(n.URL+"/api/v1/processor/pause", "application/json", nil); err != nil || resp.StatusCode != 204 {
		t.Fatalf("pause: %v %v", resp, err)
	}
	if code := n.getJSON("/readyz", nil); code == 200 {
		t.Fatalf("readyz is 200 while the processor is paused")
	}
	var body strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&body, `{"message":"pressure %d %s","service":"bp"}`+"\n", i, strings.Repeat("p", 150))
	}
	accepted, pushed := 0, 0
	var retryAfter string
	for i := 0; i < 400 && pushed == 0; i++ { // ≥ 60 MB offered against an 8 MiB bound
		code, resp, hdr := n.post("application/x-ndjson", "", []byte(body.String()))
		switch code {
		case 202:
			accepted += int(resp["accepted"].(float64))
		case 429, 503:
			pushed++
			retryAfter = hdr.Get("Retry-After")
		default:
			t.Fatalf("unexpected status %d: %v", code, resp)
		}
	}
	if pushed == 0 || retryAfter == "" {
		t.Fatalf("no 429/503 with Retry-After after %d accepted events over an 8 MiB bound", accepted)
	}
	rss := rssKB(t, n.Pid())
	t.Logf("pushed back after %d accepted events; Retry-After %s; RSS %d KiB", accepted, retryAfter, rss)
	if rss > 300*1024 {
		t.Errorf("RSS %d KiB while pushing back, over 300 MiB", rss)
	}
	if resp, err := http.Post(n.URL+"/api/v1/processor/resume", "application/json", nil); err != nil || resp.StatusCode != 204 {
		t.Fatalf("resume: %v %v", resp, err)
	}
	eventually(t, 60*time.Second, func() error {
		if got := statsEvents(n); got != float64(accepted) {
			return fmt.Errorf("stored %v, accepted %d", got, accepted)
		}
		return nil
	})
	eventually(t, 30*time.Second, func() error {
		code, _, _ := n.post("application/x-ndjson", "", []byte(`{"message":"after resume"}`))
		if code != 202 {
			return fmt.Errorf("post after resume: %d", code)
		}
		return nil
	})
}

func rssKB(t *testing.T, pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			v, _ := strconv.Atoi(strings.Fields(rest)[0])
			return v
		}
	}
	return -1
}
