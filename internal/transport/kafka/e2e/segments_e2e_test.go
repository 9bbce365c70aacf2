package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/testproc"
)

// TestKafkaSegmentsRebalance runs three `wirelog process --store-format
// parquet` in one consumer group, each with its own store, under load, and
// moves partitions between them: a processor joins (partitions are revoked
// from the other two), one stops with SIGTERM (it leaves the group: all its
// partitions are revoked), one is killed with SIGKILL and restarted on its
// store. Segment stores accept events before they are durable; every
// acknowledged event must still be in exactly one store, once: the revoke
// writes what the store buffered and commits it, so the new owner resumes
// after it.
//
// The killed processor runs with static membership (--kafka-instance-id)
// and comes back within the session timeout, as docs/KAFKA.md tells
// operators to run processors: a processor that dies between a store commit
// and the group commit and never comes back on its store leaves the records
// of that window to be stored again by the next owner (docs/KAFKA.md, "The
// one window left"), in either store format.
func TestKafkaSegmentsRebalance(t *testing.T) {
	k, names := sharedKafka(t), topicNames(t)
	common := append([]string{"--kafka", k.brokers(), "--kafka-lag-interval", "1s", "--kafka-partitions", "6",
		"--kafka-produce-timeout", "3s", "--kafka-session-timeout", "10s"}, names.flags()...)
	ing := startProc(t, "ingest", append([]string{"ingest", "--http", "127.0.0.1:0",
		"--syslog-udp", "", "--syslog-tcp", ""}, common...)...)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	procArgs := func(i int, extra ...string) []string {
		// A 2 s segment interval keeps a few thousand events buffered per
		// processor at any moment: the window a rebalance must not double.
		args := append([]string{"process", "--http", "127.0.0.1:0", "--data", dirs[i], "--group", names.group,
			"--store-format", "parquet", "--store-segment-interval", "2s"}, common...)
		return append(args, extra...)
	}
	p1 := startProc(t, "process-1", procArgs(0)...)
	p2 := startProc(t, "process-2", procArgs(1)...)
	ackPath := filepath.Join(t.TempDir(), "acked.txt")
	ack, err := os.Create(ackPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ack.Close()

	rep := load(t, ing.URL, ack, "segments", 30*time.Second)
	time.Sleep(4 * time.Second)
	// A third processor joins: partitions are revoked from the first two.
	static := []string{"--kafka-instance-id", "process-3"}
	p3 := startProc(t, "process-3", procArgs(2, static...)...)
	eventually(t, 60*time.Second, func() error {
		if n := p3.stored(); n <= 0 {
			return fmt.Errorf("the joining processor stored %d", n)
		}
		return nil
	})
	// One leaves with SIGTERM: every partition it owns is revoked.
	p2.term()
	time.Sleep(4 * time.Second)
	// One is killed mid-stream and restarted on its store.
	p3.Kill9()
	p3 = startProc(t, "process-3", procArgs(2, static...)...)
	r := <-rep
	t.Logf("%d acked, errors %v", r.EventsAcked, r.Errors)
	if r.EventsAcked == 0 {
		t.Fatal("nothing was acknowledged; the test proves nothing")
	}
	acked := testproc.ReadLines(t, ackPath)
	settle(t, 0, p1)
	settle(t, 0, p3)
	for _, p := range []*proc{p1, p3} {
		t.Logf("%s: %v releases written, %v discarded", p.Name,
			metric(p, `wirelog_kafka_consumer_releases_total\{result="written"\}`),
			metric(p, `wirelog_kafka_consumer_releases_total\{result="discarded"\}`))
	}
	p1.term()
	p3.term()
	ing.term()
	checkStores(t, acked, dirs...)
}
