package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestRunWithKafkaDeadLetters runs the all-in-one node on Kafka
// (`wirelog run --kafka`), writes a record no processor can decode into the
// events topic with kcat, and expects it in the dead-letter topic with the
// error and its origin in headers, while the events around it are stored.
func TestRunWithKafkaDeadLetters(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed: run scripts/deps/30-kafka.sh as root")
	}
	k, names := sharedKafka(t), topicNames(t)
	// `run` has no --group: it joins the default group, which no other
	// test on the shared broker uses.
	n := startProc(t, "run", append([]string{"run", "--http", "127.0.0.1:0", "--data", t.TempDir(),
		"--syslog-udp", "", "--syslog-tcp", "", "--kafka", k.brokers(), "--kafka-partitions", "1"}, names.flags()...)...)
	if code, body := n.post(`{"message":"before poison","service":"dlq"}`+"\n", nil); code != 202 {
		t.Fatalf("post: %d %s", code, body)
	}
	eventually(t, 30*time.Second, func() error {
		if s := n.stored(); s != 1 {
			return fmt.Errorf("stored %d", s)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	produce := exec.CommandContext(ctx, kcat, "-P", "-b", k.brokers(), "-t", names.topic, "-p", "0")
	produce.Stdin = strings.NewReader("this is not an event\n")
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	if code, body := n.post(`{"message":"after poison","service":"dlq"}`+"\n", nil); code != 202 {
		t.Fatalf("post: %d %s", code, body)
	}
	eventually(t, 30*time.Second, func() error {
		if s := n.stored(); s != 2 {
			return fmt.Errorf("stored %d, want the 2 good events (the poison record goes to the DLQ, not the store)", s)
		}
		return nil
	})
	var out []byte
	eventually(t, 30*time.Second, func() error {
		out, err = exec.CommandContext(ctx, kcat, "-C", "-b", k.brokers(), "-t", names.dlq,
			"-o", "beginning", "-e", "-q", "-f", `%s|%h\n`).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "this is not an event|") {
			return fmt.Errorf("dead-letter topic: %v %q", err, out)
		}
		return nil
	})
	for _, want := range []string{names.topic, "not JSON"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("dead-letter record lacks %q in its headers:\n%s", want, out)
		}
	}
}
