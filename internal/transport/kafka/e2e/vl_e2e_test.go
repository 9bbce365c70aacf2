package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/loadgen"
	"github.com/wirelog/wirelog/internal/storage/victorialogs/vltest"
	"github.com/wirelog/wirelog/internal/testproc"
)

// vlEvents is how many events TestVictoriaLogsScaleOut sends (25,000/s
// for 40 s; about 4 minutes in all on 2 loaded cores); the
// WIRELOG_VL_E2E_EVENTS environment variable overrides it.
const vlEvents = 1_000_000

// TestVictoriaLogsScaleOut is the scale-out path end to end with real
// servers: `wirelog ingest` → Kafka (4 partitions) → two `wirelog process
// --store victorialogs` → a VictoriaLogs cluster (two storage nodes behind a
// front node) → `wirelog serve`. Under load it kills a processor with
// SIGKILL and restarts it, lets a third processor join and leave (two
// rebalances), kills a storage node with SIGKILL and restarts it, and
// restarts the front node. Then every acknowledged event must be returned by
// serve exactly once: every acknowledged id is in the cluster (VictoriaLogs
// may hold some twice: it does not deduplicate), once every row is verified
// durable serve's total equals the number of distinct ids stored, and
// serve's newest page holds each id once.
func TestVictoriaLogsScaleOut(t *testing.T) {
	n := int64(vlEvents)
	if v := os.Getenv("WIRELOG_VL_E2E_EVENTS"); v != "" {
		var err error
		if n, err = strconv.ParseInt(v, 10, 64); err != nil || n <= 0 {
			t.Fatalf("WIRELOG_VL_E2E_EVENTS=%q is not a positive count", v)
		}
	}
	k, names := sharedKafka(t), topicNames(t)
	vl := vltest.Start(t, true, "")
	common := append([]string{"--kafka", k.brokers(), "--kafka-partitions", "4",
		"--kafka-produce-timeout", "10s", "--kafka-session-timeout", "6s"}, names.flags()...)
	ing := startProc(t, "ingest", append([]string{"ingest", "--http", "127.0.0.1:0",
		"--syslog-udp", "", "--syslog-tcp", ""}, common...)...)
	procArgs := func() []string {
		return append([]string{"process", "--http", "127.0.0.1:0", "--data", t.TempDir(), "--group", names.group,
			"--store", "victorialogs", "--store-url", vl.URL}, common...)
	}
	var procs []*proc
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, p := range procs {
			for _, l := range strings.Split(p.Logs(), "\n") {
				if strings.Contains(l, "WARN") || strings.Contains(l, "ERROR") || strings.Contains(l, "partitions") {
					t.Logf("%s: %s", p.Name, l)
				}
			}
		}
	})
	p1 := startProc(t, "process-1", procArgs()...)
	p2 := startProc(t, "process-2", procArgs()...)
	procs = append(procs, p1, p2)
	srv := startProc(t, "serve", "serve", "--http", "127.0.0.1:0", "--store", "victorialogs", "--store-url", vl.URL)

	ackPath := filepath.Join(t.TempDir(), "acked.txt")
	ack, err := os.Create(ackPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ack.Close()
	// Open loop at a rate that takes about 40 s for the default count, so
	// every failure below happens under load.
	rate := float64(n) / 40
	start := time.Now()
	done := make(chan loadgen.Report, 1)
	go func() {
		rep, err := loadgen.Run(context.Background(), loadgen.Config{
			Target: ing.URL, Rate: rate, Count: n, Duration: 10 * time.Minute,
			Concurrency: 8, Batch: 500, AckLog: ack, RunID: "vl", Seed: 15,
		})
		if err != nil {
			t.Errorf("loadgen: %v", err)
		}
		done <- rep
	}()
	at := func(d time.Duration) { time.Sleep(time.Until(start.Add(d))) }

	at(5 * time.Second)
	t.Log("processor 1: kill -9 and restart")
	p1.Kill9()
	p1 = startProc(t, "process-1", procArgs()...)
	procs = append(procs, p1)

	at(12 * time.Second)
	t.Log("processor 3 joins")
	p3 := startProc(t, "process-3", procArgs()...)
	procs = append(procs, p3)
	eventually(t, 60*time.Second, func() error {
		if a := metric(p3, "wirelog_kafka_consumer_assigned_partitions"); a < 1 {
			return fmt.Errorf("processor 3 owns %v partitions", a)
		}
		return nil
	})
	at(20 * time.Second)
	t.Log("processor 3 leaves")
	p3.term()

	at(24 * time.Second)
	t.Log("storage node 2: kill -9, restart 3 s later")
	vl.Kill9("storage2")
	// serve says its answer is partial and names the node; refuses with
	// 503 when asked for a complete answer.
	var part struct {
		Events  int64    `json:"events"`
		Partial bool     `json:"partial"`
		Missing []string `json:"missing"`
	}
	if c := srv.get("/api/v1/stats", &part); c != 200 || !part.Partial || len(part.Missing) != 1 || part.Missing[0] != vl.StorageAddr(2) {
		t.Errorf("serve stats with storage node %s down: %d %+v; want 200 partial naming it", vl.StorageAddr(2), c, part)
	}
	if c := srv.get("/api/v1/stats?partial=false", nil); c != 503 {
		t.Errorf("serve stats?partial=false with a storage node down: %d, want 503", c)
	}
	time.Sleep(3 * time.Second)
	vl.Start()

	at(32 * time.Second)
	t.Log("front node: restart")
	vl.Term("front")
	vl.Start()

	rep := <-done
	t.Logf("loadgen: %d events acknowledged in %s, errors %v", rep.EventsAcked, time.Since(start).Round(time.Second), rep.Errors)
	acked := testproc.ReadLines(t, ackPath)
	want := map[string]bool{}
	for _, id := range acked {
		want[id] = true
	}
	if len(want) == 0 {
		t.Fatal("nothing was acknowledged; the test proves nothing")
	}

	// Settled: serve's complete total reaches the acknowledged ids and
	// stays there while the processors commit.
	var total int64
	settleStart := time.Now()
	stable := 0
	eventually(t, 3*time.Minute, func() error {
		var s struct {
			Events  int64 `json:"events"`
			Partial bool  `json:"partial"`
		}
		if c := srv.get("/api/v1/stats?partial=false", &s); c != 200 {
			stable = 0
			return fmt.Errorf("serve stats: %d", c)
		}
		if s.Events == total && s.Events >= int64(len(want)) {
			stable++
		} else {
			stable = 0
		}
		total = s.Events
		if stable < 5 {
			return fmt.Errorf("serve counts %d events, %d acknowledged", s.Events, len(want))
		}
		return nil
	})
	t.Logf("settled %s after the load: serve counts %d events for %d acknowledged ids", time.Since(settleStart).Round(time.Second), total, len(want))
	// And the processors converge: every row verified durable, every
	// offset committed (no lag), nothing waiting.
	eventually(t, 2*time.Minute, func() error {
		for _, p := range []*proc{p1, p2} {
			if v := metric(p, "wirelog_vl_rows_pending"); v != 0 {
				return fmt.Errorf("%s: %v rows sent but not verified durable", p.Name, v)
			}
			if v := metric(p, "wirelog_kafka_consumer_lag_records"); v != 0 {
				return fmt.Errorf("%s: lag %v records (offsets not committed)", p.Name, v)
			}
		}
		return nil
	})
	lost := metricSum([]*proc{p1, p2}, "wirelog_vl_rows_lost_total")
	t.Logf("rows the cluster lost and the processors replayed (this run's processors): %v", lost)

	// Every acknowledged id is in the cluster (read straight from it), and
	// serve counts no event twice.
	stored := vlEventIDs(t, vl.URL)
	missing, extra := 0, 0
	for id := range want {
		if !stored[id] {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged event %s is not in VictoriaLogs", id)
			}
		}
	}
	for id := range stored {
		if !want[id] {
			extra++ // sent, stored, but its 202 was not seen (a request in flight at a failure): fine
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events lost", missing, len(want))
	}
	// VictoriaLogs stores some ids twice (retried inserts, replays,
	// takeovers); once every row is verified durable, every answer counts
	// each id once (the guarantee of docs/ARCHITECTURE.md, "The commit
	// protocol"). The last marks need a second to become searchable.
	marked := metricSum([]*proc{p1, p2}, "wirelog_vl_duplicates_marked_total")
	var final int64
	if err := func() (err error) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			var s struct {
				Events int64 `json:"events"`
			}
			if c := srv.get("/api/v1/stats?partial=false", &s); c != 200 {
				err = fmt.Errorf("serve stats: %d", c)
			} else if final = s.Events; final == int64(len(stored)) {
				return nil
			} else {
				err = fmt.Errorf("serve counts %d events, the cluster holds %d distinct event ids: %d counted twice or missing", final, len(stored), final-int64(len(stored)))
			}
			if time.Now().After(deadline) {
				return err
			}
			time.Sleep(time.Second)
		}
	}(); err != nil {
		for _, l := range vlUnmarkedDuplicates(t, vl.URL) {
			t.Logf("stored more than once, no copy marked (counted twice unless a zone covers it): %s", l)
		}
		t.Fatalf("%v (at settle: %d; ids marked at verification by processors 1 and 2: %v)", err, total, marked)
	}
	t.Logf("every row durable: serve counts %d events for %d distinct ids; ids stored twice with no write-time mark, marked at verification by processors 1 and 2: %v",
		final, len(stored), marked)
	// A sample through serve's search: the newest page holds each id once.
	var page struct {
		Events []struct {
			Attrs     map[string]any `json:"attrs"`
			Partition int32          `json:"partition"`
			Offset    int64          `json:"offset"`
		} `json:"events"`
	}
	if c := srv.get("/api/v1/logs/search?limit=10000&partial=false", &page); c != 200 || len(page.Events) == 0 {
		t.Fatalf("serve search: %d, %d events", c, len(page.Events))
	}
	seen := map[string]bool{}
	for _, e := range page.Events {
		id, _ := e.Attrs["event_id"].(string)
		if seen[id] {
			t.Fatalf("serve's search returned event %s twice", id)
		}
		seen[id] = true
		if !stored[id] {
			t.Fatalf("serve's search returned event %s that is not in the cluster", id)
		}
	}
	sample := 0
	for id := range seen {
		if want[id] {
			sample++
		}
	}
	t.Logf("0 lost, 0 counted twice: %d acknowledged ids all stored, %d more stored without a seen 202; serve's newest %d events are distinct (%d of them acknowledged)",
		len(want), extra, len(page.Events), sample)
	for _, p := range []*proc{p1, p2, srv, ing} {
		p.term()
	}
}

// metric reads one unlabelled metric from a process's /metrics (summing
// labelled series), -1 when unreadable.
func metric(p *proc, name string) float64 {
	resp, err := http.Get(p.URL + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var sum float64
	found := false
	re := regexp.MustCompile(`^` + name + `(\{[^}]*\})? ([0-9.eE+-]+)`)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			sum += v
			found = true
		}
	}
	if !found {
		return -1
	}
	return sum
}

func metricSum(ps []*proc, name string) float64 {
	var s float64
	for _, p := range ps {
		if v := metric(p, name); v > 0 {
			s += v
		}
	}
	return s
}

// vlUnmarkedDuplicates lists (at most 20) ids stored more than once with no
// copy carrying a replay mark: what answers would count twice.
func vlUnmarkedDuplicates(t *testing.T, base string) []string {
	t.Helper()
	q := "* | stats by (wl_topic, wl_partition, wl_offset) count() as copies, count(wl_replay) as marked, min(_time) as t | filter copies:>1 marked:=0 | limit 20"
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).PostForm(base+"/select/logsql/query", url.Values{"query": {q}})
	if err != nil {
		t.Logf("duplicate query: %v", err)
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// vlEventIDs reads every distinct event_id attribute stored in the cluster,
// straight from VictoriaLogs (complete answers only).
func vlEventIDs(t *testing.T, base string) map[string]bool {
	t.Helper()
	form := url.Values{"query": {"* | uniq by (attrs.event_id)"}, "allow_partial_response": {"false"}}
	var resp *http.Response
	for attempt := 1; ; attempt++ {
		var err error
		resp, err = (&http.Client{Timeout: 5 * time.Minute}).PostForm(base+"/select/logsql/query", form)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == 200 {
			break
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// v1.52.2's front node now and then reuses a connection to a
		// storage node just as the node closes it ("cannot connect to
		// storage node …: EOF", seen once at 17:46, after a run's every
		// count had passed): a 502 that the next query does not get.
		if resp.StatusCode != http.StatusBadGateway || attempt == 3 {
			t.Fatalf("VictoriaLogs uniq query: %s %s", resp.Status, b)
		}
		t.Logf("VictoriaLogs uniq query: %s %s; asking again", resp.Status, b)
		time.Sleep(time.Second)
	}
	defer resp.Body.Close()
	out := map[string]bool{}
	dec := json.NewDecoder(resp.Body)
	for {
		var row map[string]string
		if err := dec.Decode(&row); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if id := row["attrs.event_id"]; id != "" && !strings.HasPrefix(id, " ") {
			out[id] = true
		}
	}
	return out
}
