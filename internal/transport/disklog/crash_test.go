package disklog

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/transport"
)

const (
	crashHelperEnv      = "DISKLOG_CRASH_HELPER_DIR"
	crashRunEnv         = "DISKLOG_CRASH_RUN"
	crashCompressionEnv = "DISKLOG_CRASH_COMPRESSION"
)

var crashOpts = Options{SegmentBytes: 64 << 10, Partitions: 2, MaxLagBytes: -1}

func crashValue(run, worker, seq, i int) string {
	return fmt.Sprintf("run%d-w%d-s%d-i%d", run, worker, seq, i)
}

// crashHelperMain is the child process of TestCrashKill9: it produces from
// four goroutines until killed and prints one line per acknowledged call,
// "ack <run> <worker> <seq> <partition> <base offset> <count>", written with
// a single write(2) so a kill never leaves half a line that parses.
func crashHelperMain() int {
	dir := os.Getenv(crashHelperEnv)
	run, _ := strconv.Atoi(os.Getenv(crashRunEnv))
	opts := crashOpts
	opts.Compression = os.Getenv(crashCompressionEnv)
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	l, err := Open(dir, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 2
	}
	fmt.Fprintf(os.Stdout, "ready truncated=%d\n", l.Stats().TruncatedBytes)
	deadline := time.Now().Add(30 * time.Second) // the parent kills far sooner
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := l.Producer()
			key := []byte(fmt.Sprintf("worker-%d", w))
			for seq := 0; time.Now().Before(deadline); seq++ {
				n := 1 + rand.IntN(200)
				recs := make([]transport.Record, n)
				for i := range recs {
					recs[i] = transport.Record{Key: key, Value: []byte(crashValue(run, w, seq, i))}
				}
				if err := p.Produce(context.Background(), recs); err != nil {
					fmt.Fprintln(os.Stderr, "produce:", err)
					os.Exit(3)
				}
				line := fmt.Sprintf("ack %d %d %d %d %d %d\n", run, w, seq, recs[0].Partition, recs[0].Offset, n)
				mu.Lock()
				os.Stdout.WriteString(line)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	l.Close()
	return 0
}

type ackedRecord struct {
	partition int32
	offset    int64
}

// TestCrashKill9 kills a producing process with SIGKILL at random moments,
// several times over the same directory, and then checks that every record
// whose Produce call returned is present with the right contents. After
// every other kill it also leaves a torn batch at the end of a segment, as a
// write cut short by a power failure would, and checks the next start cuts
// exactly that off. It runs once per compression codec, and the torn batch
// is compressed with the run's codec.
func TestCrashKill9(t *testing.T) {
	preallocated := 0
	for _, comp := range Compressions() {
		t.Run(comp, func(t *testing.T) { preallocated += testCrashKill9(t, comp) })
	}
	if preallocated == 0 {
		t.Fatalf("no kill left an active segment ending in preallocated zeros: the test does not cover recovery of preallocated segments")
	}
}

// testCrashKill9 returns how many kills left an active segment that ends
// in preallocated zeros.
func testCrashKill9(t *testing.T, comp string) int {
	dir := t.TempDir()
	acked := map[ackedRecord]string{}
	const runs = 6
	var truncated []string
	tornBytes, preallocated := 0, 0
	for run := 0; run < runs; run++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir, crashRunEnv+"="+strconv.Itoa(run), crashCompressionEnv+"="+comp)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })

		r := bufio.NewReader(stdout)
		ready, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(ready, "ready") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("run %d: child did not start: %q %v\nstderr:\n%s", run, ready, err, stderr.String())
		}
		truncated = append(truncated, strings.TrimSpace(strings.TrimPrefix(ready, "ready ")))
		// A kill can also cut a large write short, so recovery may cut more
		// than the torn batch appended here, never less.
		var cut int
		if _, err := fmt.Sscanf(ready, "ready truncated=%d\n", &cut); err != nil || cut < tornBytes {
			t.Fatalf("run %d: child reported %q after a torn tail of %d bytes", run, ready, tornBytes)
		}
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return // a line cut by the kill has no newline and is dropped
				}
				lines <- line
			}
		}()
		// The kill is armed once some calls were acknowledged (or after a
		// while on a slow host), so that the segments roll onto
		// preallocated files before most kills.
		var killAt <-chan time.Time
		arm := time.After(3 * time.Second)
		n := 0
	read:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					break read
				}
				recordAck(t, acked, line)
				n++
				if n == 20 && arm != nil {
					killAt, arm = time.After(time.Duration(30+rand.IntN(400))*time.Millisecond), nil
				}
			case <-arm:
				killAt, arm = time.After(time.Duration(rand.IntN(400))*time.Millisecond), nil
			case <-killAt:
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Fatalf("kill -9 %d: %v", pid, err)
				}
				killAt = nil
			}
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("run %d: child ended with %v, not by SIGKILL\nstderr:\n%s", run, err, stderr.String())
		}
		t.Logf("run %d: %d acknowledged calls before kill -9", run, n)
		if zeroTails(t, dir) > 0 {
			preallocated++
		}
		tornBytes = 0
		if run%2 == 0 {
			tornBytes = tearTail(t, dir, comp)
		}
	}
	t.Logf("recovery at each restart: %v; killed with a preallocated active segment %d of %d times", truncated, preallocated, runs)
	if len(acked) == 0 {
		t.Fatal("no call was acknowledged in any run")
	}

	opts := crashOpts
	opts.Compression = comp
	l := openT(t, dir, opts)
	st := l.Stats()
	if codecs := batchCodecs(t, dir); comp != CompressionNone && codecs[0] == codecs[-1] {
		t.Fatalf("a %s log holds no compressed batch: %v", comp, codecs)
	}
	var total int64
	for _, p := range st.Partitions {
		total += p.EndOffset
	}
	got := pollN(t, l.Consumer("verify", nil), int(total))
	stored := make(map[ackedRecord]string, len(got))
	for _, rec := range got {
		k := ackedRecord{rec.Partition, rec.Offset}
		if _, dup := stored[k]; dup {
			t.Fatalf("offset %d of partition %d read twice", rec.Offset, rec.Partition)
		}
		stored[k] = string(rec.Value)
	}
	missing := 0
	for k, want := range acked {
		if v, ok := stored[k]; !ok || v != want {
			if missing < 5 {
				t.Errorf("acknowledged record %d/%d: stored %q (present %v), want %q", k.partition, k.offset, v, ok, want)
			}
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged records lost or wrong", missing, len(acked))
	}
	t.Logf("%d acknowledged records all present among %d stored", len(acked), len(got))
	return preallocated
}

// tearTail writes the first part of a record batch, compressed as comp
// says, after the last batch of the active segment of partition 0 — into
// its preallocated zeros when it has them, as a write cut short there
// would, else at the end of the file — and returns how many bytes it wrote.
func tearTail(t *testing.T, dir, comp string) int {
	t.Helper()
	path, size := lastSegment(t, dir)
	b := encodeCodecT(t, makeRecs("torn", 40), 0, comp)
	b = b[:1+rand.IntN(len(b)-1)]
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	at := size
	if res := scanT(t, f, path, size); res.zeroTail {
		at = res.validEnd
	}
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// scanT scans the segment file f (at path, of size bytes) as recovery does.
func scanT(t *testing.T, f *os.File, path string, size int64) scanResult {
	t.Helper()
	base, ok := parseSegmentName(filepath.Base(path))
	if !ok {
		t.Fatalf("%s is not a segment name", path)
	}
	res, err := scanSegment(f, size, base)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// zeroTails counts the partitions in dir whose active segment ends in
// preallocated zeros, as a crash leaves it.
func zeroTails(t *testing.T, dir string) int {
	t.Helper()
	parts, err := filepath.Glob(filepath.Join(dir, DefaultTopic+"-*"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range parts {
		segs, err := filepath.Glob(filepath.Join(p, "*"+segmentSuffix))
		if err != nil || len(segs) == 0 {
			continue
		}
		path := segs[len(segs)-1]
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if res := scanT(t, f, path, st.Size()); res.zeroTail {
			n++
		}
		f.Close()
	}
	return n
}

// batchCodecs counts the batches of every segment in dir by codec id (-1:
// all batches).
func batchCodecs(t *testing.T, dir string) map[int]int {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*", "*"+segmentSuffix))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no segments in %s: %v", dir, err)
	}
	n := map[int]int{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for len(b) >= batchHeaderSize && !allZero(b[:batchHeaderSize]) { // zeros: preallocated space
			h, err := parseBatchHeader(b)
			if err != nil || h.size() > int64(len(b)) {
				t.Fatalf("%s: %v", p, err)
			}
			n[int(h.attrs&codecMask)]++
			n[-1]++
			b = b[h.size():]
		}
	}
	return n
}

func recordAck(t *testing.T, acked map[ackedRecord]string, line string) {
	t.Helper()
	var run, w, seq, n int
	var part int32
	var base int64
	if _, err := fmt.Sscanf(line, "ack %d %d %d %d %d %d\n", &run, &w, &seq, &part, &base, &n); err != nil {
		t.Fatalf("bad ack line %q: %v", line, err)
	}
	for i := 0; i < n; i++ {
		k := ackedRecord{part, base + int64(i)}
		v := crashValue(run, w, seq, i)
		if prev, ok := acked[k]; ok {
			t.Fatalf("offset %d/%d acknowledged twice: %q and %q", part, k.offset, prev, v)
		}
		acked[k] = v
	}
}
