package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wirelog/wirelog/internal/loadgen"
	"github.com/wirelog/wirelog/internal/testproc"
)

// load posts synthetic events to the ingest gateway in the background at a
// bounded rate and duration, appending the event_id of every 202'd event to
// the ack log.
func load(t *testing.T, target string, ack *os.File, runID string, d time.Duration) <-chan loadgen.Report {
	t.Helper()
	done := make(chan loadgen.Report, 1)
	go func() {
		rep, err := loadgen.Run(context.Background(), loadgen.Config{
			Target: target, Rate: 2000, Duration: d, Count: 200_000,
			Concurrency: 4, Batch: 100, AckLog: ack, RunID: runID, Seed: uint64(len(runID)),
		})
		if err != nil {
			t.Errorf("loadgen %s: %v", runID, err)
		}
		done <- rep
	}()
	return done
}

// settle waits until p has stored everything in its partitions: its Kafka
// consumer lag (end offset − committed offset, committed only after the
// rows are stored; refreshed every --kafka-lag-interval, 1 s in these tests)
// is 0 on every partition it owns, at least want events are stored, and the
// count has not moved for longer than a lag refresh. The count alone cannot
// say it: it can pass the acknowledged count early (a produce retried after
// a leader change stores a record at two offsets, each once) while the
// consumer pauses after a leader kill or a rebalance.
func settle(t *testing.T, want int64, p *proc) int64 {
	t.Helper()
	var last int64 = -1
	var since time.Time
	eventually(t, 120*time.Second, func() error {
		got := p.stored()
		if got != last {
			since = time.Now()
		}
		last = got
		if lag := metric(p, "wirelog_kafka_consumer_lag_records"); lag != 0 {
			return fmt.Errorf("consumer lag %v records (-1: no partition owned yet), %d stored", lag, got)
		}
		if got < want {
			return fmt.Errorf("stored %d events, want at least %d", got, want)
		}
		if time.Since(since) < 3*time.Second {
			return fmt.Errorf("stored %d events, still moving", got)
		}
		return nil
	})
	return last
}

// checkStores asserts that across the stores every event is stored once,
// every acknowledged event is there, and each store's rollups count exactly
// its events.
func checkStores(t *testing.T, acked []string, dirs ...string) {
	t.Helper()
	all := map[string]int{}
	var rows int64
	for _, d := range dirs {
		c := testproc.ReadStore(t, d)
		if c.RollupCount != c.Rows {
			t.Errorf("store %s: rollups count %d events, the events table holds %d", d, c.RollupCount, c.Rows)
		}
		rows += c.Rows
		for id, n := range c.IDs {
			all[id] += n
		}
	}
	dups := 0
	for id, n := range all {
		if n > 1 {
			dups++
			if dups <= 3 {
				t.Errorf("event %s stored %d times", id, n)
			}
		}
	}
	if dups > 0 {
		t.Fatalf("%d events stored more than once across %d stores", dups, len(dirs))
	}
	missing := 0
	for _, id := range acked {
		if all[id] == 0 {
			missing++
			if missing <= 3 {
				t.Errorf("acknowledged event %s is in no store", id)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events lost", missing, len(acked))
	}
	t.Logf("%d acknowledged events, %d stored once each across %d stores, rollups match", len(acked), rows, len(dirs))
}

// TestKafkaPipeline runs `wirelog ingest` and `wirelog process` on one real
// broker and checks, in order: a traced HTTP request's event is stored and
// kcat reads it from the topic with the request's traceparent; a processor
// killed with SIGKILL mid-stream and restarted on its store loses and
// doubles nothing; a second processor joining and leaving under load loses
// and doubles nothing; with the broker stopped ingest answers 503 with
// Retry-After and both roles turn unready, then resume when it returns.
func TestKafkaPipeline(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed: run scripts/deps/30-kafka.sh as root")
	}
	k := startKafka(t, false)
	common := []string{"--kafka", k.brokers(), "--kafka-lag-interval", "1s", "--kafka-partitions", "4",
		"--kafka-produce-timeout", "3s", "--kafka-session-timeout", "6s"}
	ing := startProc(t, "ingest", append([]string{"ingest", "--http", "127.0.0.1:0",
		"--syslog-udp", "", "--syslog-tcp", ""}, common...)...)
	d1, d2 := t.TempDir(), t.TempDir()
	procArgs := func(dir string) []string {
		return append([]string{"process", "--http", "127.0.0.1:0", "--data", dir, "--group", "e2e"}, common...)
	}
	p1 := startProc(t, "process-1", procArgs(d1)...)
	ackPath := filepath.Join(t.TempDir(), "acked.txt")
	ack, err := os.Create(ackPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ack.Close()

	// A traced request: stored by the processor, readable by kcat with the
	// request's trace context.
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if code, _ := ing.post(`{"message":"hello kafka","service":"checkout","event_id":"hello-1"}`+"\n",
		map[string]string{"traceparent": traceparent}); code != 202 {
		t.Fatalf("traced post: %d\n%s", code, ing.Logs())
	}
	fmt.Fprintln(ack, "hello-1")
	eventually(t, 30*time.Second, func() error {
		if n := p1.stored(); n != 1 {
			return fmt.Errorf("stored %d", n)
		}
		return nil
	})
	kctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	out, err := exec.CommandContext(kctx, kcat, "-C", "-b", k.brokers(), "-t", "wirelog.logs",
		"-o", "beginning", "-e", "-q", "-f", `%s %h\n`).CombinedOutput()
	cancel()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"message":"hello kafka"`) || !strings.Contains(string(out), "traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-") {
		t.Fatalf("kcat did not read the event with the request's traceparent:\n%s", out)
	}

	// Processor crash: SIGKILL mid-stream, restart on the same store.
	rep := load(t, ing.URL, ack, "crash", 8*time.Second)
	time.Sleep(3 * time.Second)
	p1.Kill9()
	p1 = startProc(t, "process-1", procArgs(d1)...)
	r := <-rep
	t.Logf("crash round: %d acked, errors %v", r.EventsAcked, r.Errors)

	// Rebalance: a second processor joins under load, then leaves.
	rep = load(t, ing.URL, ack, "rebalance", 10*time.Second)
	time.Sleep(2 * time.Second)
	p2 := startProc(t, "process-2", procArgs(d2)...)
	eventually(t, 30*time.Second, func() error {
		if n := p2.stored(); n <= 0 {
			return fmt.Errorf("second processor stored %d", n)
		}
		return nil
	})
	p2.term()
	r = <-rep
	t.Logf("rebalance round: %d acked, errors %v", r.EventsAcked, r.Errors)
	p2Rows := testproc.ReadStore(t, d2).Rows
	acked := testproc.ReadLines(t, ackPath)
	settle(t, int64(len(acked))-p2Rows, p1)

	// Broker gone: 503 with Retry-After, unready; back: everything resumes.
	k.stop()
	start := time.Now()
	code, retry := ing.post(`{"message":"while down","event_id":"down-1"}`+"\n", nil)
	if code != 503 || retry == "" {
		t.Fatalf("post with the broker stopped: %d, Retry-After %q (want 503 with Retry-After)", code, retry)
	}
	t.Logf("503 after %s with the broker stopped", time.Since(start).Round(time.Millisecond))
	if c := ing.get("/readyz", nil); c != 503 {
		t.Errorf("ingest /readyz %d with the broker stopped, want 503", c)
	}
	if c := p1.get("/readyz", nil); c != 503 {
		t.Errorf("processor /readyz %d with the broker stopped, want 503", c)
	}
	k.start()
	eventually(t, 90*time.Second, func() error {
		if code, _ := ing.post(`{"message":"after the broker returned","event_id":"back-1"}`+"\n", nil); code != 202 {
			return fmt.Errorf("post after restart: %d", code)
		}
		return nil
	})
	fmt.Fprintln(ack, "back-1")
	eventually(t, 30*time.Second, func() error {
		if c := ing.get("/readyz", nil); c != 200 {
			return fmt.Errorf("ingest /readyz %d", c)
		}
		if c := p1.get("/readyz", nil); c != 200 {
			return fmt.Errorf("processor /readyz %d", c)
		}
		return nil
	})
	acked = testproc.ReadLines(t, ackPath)
	settle(t, int64(len(acked))-p2Rows, p1)
	p1.term()
	ing.term()
	checkStores(t, acked, d1, d2)
}

// TestKafkaClusterLeaderKill kills the leader of a partition of a
// three-broker cluster (replication factor 3, min.insync.replicas 2) with
// SIGKILL under load: every event that got a 202 is stored, once, and the
// ingest gateway recovers without a restart.
func TestKafkaClusterLeaderKill(t *testing.T) {
	k := startKafka(t, true)
	common := []string{"--kafka", k.brokers(), "--kafka-lag-interval", "1s", "--kafka-partitions", "3", "--kafka-replication-factor", "3",
		"--kafka-produce-timeout", "10s", "--kafka-session-timeout", "6s"}
	ing := startProc(t, "ingest", append([]string{"ingest", "--http", "127.0.0.1:0",
		"--syslog-udp", "", "--syslog-tcp", ""}, common...)...)
	d1 := t.TempDir()
	p1 := startProc(t, "process", append([]string{"process", "--http", "127.0.0.1:0", "--data", d1, "--group", "e2e"}, common...)...)
	ackPath := filepath.Join(t.TempDir(), "acked.txt")
	ack, err := os.Create(ackPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ack.Close()

	rep := load(t, ing.URL, ack, "leader", 16*time.Second)
	time.Sleep(4 * time.Second)
	leader := partitionLeader(t, k.brokers(), "wirelog.logs", 0)
	k.killNode(leader)
	t.Logf("killed broker %d, leader of wirelog.logs/0", leader)
	time.Sleep(6 * time.Second)
	k.start() // brings the killed node back
	r := <-rep
	t.Logf("%d acked, errors %v", r.EventsAcked, r.Errors)
	if r.EventsAcked == 0 {
		t.Fatal("nothing was acknowledged; the test proves nothing")
	}
	// The same gateway takes writes again.
	eventually(t, 60*time.Second, func() error {
		if code, _ := ing.post(`{"message":"after failover","event_id":"failover-1"}`+"\n", nil); code != 202 {
			return fmt.Errorf("post after failover: %d", code)
		}
		return nil
	})
	fmt.Fprintln(ack, "failover-1")
	acked := testproc.ReadLines(t, ackPath)
	settle(t, int64(len(acked)), p1)
	p1.term()
	ing.term()
	checkStores(t, acked, d1)
}

func partitionLeader(t *testing.T, brokers, topic string, partition int32) int32 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := md.Topics[topic].Partitions[partition]
	if !ok || p.Leader < 0 {
		t.Fatalf("no leader for %s/%d: %+v", topic, partition, md.Topics[topic])
	}
	return p.Leader
}
