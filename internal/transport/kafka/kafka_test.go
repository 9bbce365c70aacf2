package kafka

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/transport"
)

// makeEvent returns the log-record JSON of a realistic event of about size
// bytes, the value the ingest gateway produces.
func makeEvent(rng *rand.Rand, i, size int) []byte {
	hosts := []string{"web-1", "web-2", "api-7", "db-3"}
	e := event.Event{
		Time:    time.Unix(1_790_000_000, int64(i)*1e6).UTC(),
		Service: "checkout",
		Level:   event.LevelInfo,
		Host:    hosts[i%len(hosts)],
		Attrs:   []byte(fmt.Sprintf(`{"seq":%d,"status":200}`, i)),
	}
	base := len(event.AppendJSON(nil, &e))
	msg := make([]byte, max(size-base-len(`,"message":""`), 8))
	const words = "abcdefghijklmnopqrstuvwxyz      "
	for j := range msg {
		msg[j] = words[rng.IntN(len(words))]
	}
	e.Message = string(msg)
	return event.AppendJSON(nil, &e)
}

func records(n, size int, seed uint64) []transport.Record {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]transport.Record, n)
	for i := range out {
		v := makeEvent(rng, i, size)
		out[i] = transport.Record{Key: []byte(fmt.Sprintf("web-%d/checkout", i%7)), Value: v}
	}
	return out
}

func newProducer(t testing.TB, cfg Config) *Producer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := NewProducer(ctx, cfg)
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func newConsumer(t testing.TB, cfg Config, src transport.OffsetSource) *Consumer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := NewConsumer(ctx, cfg, src)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// drain polls c until want records arrived or the deadline passes, calling
// Commit after each batch like the processor does.
func drain(t *testing.T, c *Consumer, want int, d time.Duration) []transport.Record {
	t.Helper()
	var got []transport.Record
	deadline := time.Now().Add(d)
	for len(got) < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		recs, err := c.Poll(ctx, 1000)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Poll: %v", err)
		}
		if len(recs) == 0 {
			continue
		}
		got = append(got, recs...)
		if err := c.Commit(context.Background(), nextOffsets(recs)); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	return got
}

func nextOffsets(recs []transport.Record) map[transport.TopicPartition]int64 {
	next := map[transport.TopicPartition]int64{}
	for _, r := range recs {
		tp := transport.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		if r.Offset+1 > next[tp] {
			next[tp] = r.Offset + 1
		}
	}
	return next
}

func TestProduceConsumeRoundTrip(t *testing.T) {
	cfg := testConfig(t, 3)
	p := newProducer(t, cfg)
	recs := records(600, 250, 1)
	recs[0].Headers = []transport.Header{{Key: "tenant", Value: []byte("acme")}}
	ctx := context.Background()
	for i := 0; i < len(recs); i += 200 {
		if err := p.Produce(ctx, recs[i:i+200]); err != nil {
			t.Fatalf("Produce: %v", err)
		}
	}
	// Acked means durable and visible: the log ends hold every record as soon
	// as Produce returned.
	if n := sum(endOffsets(t, cfg.Topic)); n != int64(len(recs)) {
		t.Fatalf("after Produce returned the topic holds %d records, want %d", n, len(recs))
	}

	c := newConsumer(t, cfg, nil)
	got := drain(t, c, len(recs), 60*time.Second)
	if len(got) != len(recs) {
		t.Fatalf("consumed %d records, want %d", len(got), len(recs))
	}
	// One Kafka record per event, value as given; one key stays on one
	// partition and in order.
	byValue := map[string]transport.Record{}
	lastOff := map[int32]int64{}
	keyPart := map[string]int32{}
	for _, r := range got {
		if r.Topic != cfg.Topic {
			t.Fatalf("record from topic %q", r.Topic)
		}
		if o, ok := lastOff[r.Partition]; ok && r.Offset <= o {
			t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, o)
		}
		lastOff[r.Partition] = r.Offset
		if p, ok := keyPart[string(r.Key)]; ok && p != r.Partition {
			t.Fatalf("key %s on partitions %d and %d", r.Key, p, r.Partition)
		}
		keyPart[string(r.Key)] = r.Partition
		byValue[string(r.Value)] = r
	}
	for i, r := range recs {
		g, ok := byValue[string(r.Value)]
		if !ok {
			t.Fatalf("record %d not consumed", i)
		}
		if !bytes.Equal(g.Key, r.Key) {
			t.Fatalf("record %d: key %q, want %q", i, g.Key, r.Key)
		}
	}
	if h := byValue[string(recs[0].Value)].Headers; len(h) == 0 || h[0].Key != "tenant" || string(h[0].Value) != "acme" {
		t.Fatalf("headers not carried: %+v", h)
	}
	if len(keyPart) < 2 {
		t.Fatalf("7 keys all landed on one partition: %v", keyPart)
	}

	// The group's committed offsets are the log ends: everything was finished.
	ctx2, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	committed, err := admin(t).FetchOffsets(ctx2, cfg.Group)
	if err != nil {
		t.Fatal(err)
	}
	for part, end := range endOffsets(t, cfg.Topic) {
		o, ok := committed.Lookup(cfg.Topic, part)
		if end > 0 && (!ok || o.At != end) {
			t.Fatalf("partition %d: committed %+v, want %d", part, o, end)
		}
	}
}

func TestKcatReadsRecordsWithTraceparent(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed: run scripts/deps/30-kafka.sh as root")
	}
	cfg := testConfig(t, 1)
	p := newProducer(t, cfg)

	// The span of the HTTP request that carried the events.
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), sc)
	value := []byte(`{"ts":"2026-11-27T10:00:00Z","service":"checkout","level":"info","message":"paid"}`)
	if err := p.Produce(ctx, []transport.Record{{Key: []byte("web-1/checkout"), Value: value}}); err != nil {
		t.Fatalf("Produce: %v", err)
	}

	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, kcat, "-C", "-b", brokerAddr, "-t", cfg.Topic, "-o", "beginning",
		"-f", `%k %s %h\n`, "-e", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	line := strings.TrimSpace(string(out))
	if !strings.HasPrefix(line, "web-1/checkout "+string(value)+" ") {
		t.Fatalf("kcat read %q, want key, value and headers", line)
	}
	if !strings.Contains(line, "traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-") {
		t.Fatalf("kcat read no traceparent of the request's trace: %q", line)
	}
}

func TestConsumerContinuesTrace(t *testing.T) {
	cfg := testConfig(t, 1)
	p := newProducer(t, cfg)
	// A caller that is not instrumented but forwards the client's header.
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	err := p.Produce(context.Background(), []transport.Record{{
		Value: []byte(`{"message":"x"}`), Headers: []transport.Header{{Key: "traceparent", Value: []byte(tp)}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := newConsumer(t, cfg, nil)
	got := drain(t, c, 1, 30*time.Second)
	if len(got) != 1 {
		t.Fatalf("consumed %d records", len(got))
	}
	var found string
	for _, h := range got[0].Headers {
		if h.Key == "traceparent" {
			found = string(h.Value)
		}
	}
	if found != tp {
		t.Fatalf("traceparent %q reached the consumer, want %q", found, tp)
	}
}

func TestBackpressureWhenBufferFull(t *testing.T) {
	cfg := testConfig(t, 1)
	cfg.MaxBufferedRecords = 100
	// A long linger keeps the first call's records in the buffer while the
	// second call arrives.
	cfg.Linger = 3 * time.Second
	p := newProducer(t, cfg)
	ctx := context.Background()

	if err := p.Produce(ctx, records(101, 250, 2)); !errors.Is(err, transport.ErrBackpressure) {
		t.Fatalf("a call larger than --kafka-max-buffered-records: err %v, want ErrBackpressure", err)
	}

	first := make(chan error, 1)
	go func() { first <- p.Produce(ctx, records(80, 250, 3)) }()
	// Wait until the first call is buffered.
	for deadline := time.Now().Add(10 * time.Second); p.cl.BufferedProduceRecords() < 80; {
		if time.Now().After(deadline) {
			t.Fatal("first call never buffered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	err := p.Produce(ctx, records(30, 250, 4))
	if !errors.Is(err, transport.ErrBackpressure) {
		t.Fatalf("second call over the bound: err %v, want ErrBackpressure", err)
	}
	if !strings.Contains(err.Error(), "--kafka-max-buffered-records") {
		t.Fatalf("error does not name the flag: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("first call: %v", err)
	}
	// Nothing of the refused calls was written.
	if n := sum(endOffsets(t, cfg.Topic)); n != 80 {
		t.Fatalf("topic holds %d records, want the 80 of the accepted call", n)
	}
	// And the producer takes writes again once the buffer drained.
	if err := p.Produce(ctx, records(30, 250, 5)); err != nil {
		t.Fatalf("after drain: %v", err)
	}
}

func TestBrokerDownUnavailableThenResumes(t *testing.T) {
	cfg := testConfig(t, 2)
	cfg.ProduceTimeout = 3 * time.Second
	cfg.ReadyTimeout = time.Second
	p := newProducer(t, cfg)
	ctx := context.Background()
	acked := 0
	if err := p.Produce(ctx, records(50, 250, 6)); err != nil {
		t.Fatal(err)
	}
	acked += 50
	if err := p.Ready(ctx); err != nil {
		t.Fatalf("Ready with the broker up: %v", err)
	}

	restarted := false
	t.Cleanup(func() {
		if !restarted {
			kafkaScript("start")
		}
	})
	if out, err := kafkaScript("stop"); err != nil {
		t.Fatalf("stop broker: %v\n%s", err, out)
	}

	// Bounded: the call fails on its own, long before this context would.
	pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	start := time.Now()
	err := p.Produce(pctx, records(20, 250, 7))
	cancel()
	if !errors.Is(err, transport.ErrUnavailable) {
		t.Fatalf("Produce with the broker stopped: err %v, want ErrUnavailable", err)
	}
	t.Logf("Produce failed after %s with: %v", time.Since(start).Round(time.Millisecond), err)
	if err := p.Ready(ctx); !errors.Is(err, transport.ErrUnavailable) {
		t.Fatalf("Ready with the broker stopped: %v, want ErrUnavailable", err)
	}
	// Later calls fail fast while the cluster is known to be down.
	if err := p.Produce(ctx, records(1, 250, 8)); !errors.Is(err, transport.ErrUnavailable) {
		t.Fatalf("second Produce while down: %v", err)
	}

	if out, err := kafkaScript("start"); err != nil {
		t.Fatalf("restart broker: %v\n%s", err, out)
	}
	restarted = true
	deadline := time.Now().Add(60 * time.Second)
	for p.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("producer not ready 60s after the broker returned: %v", p.Ready(ctx))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The same producer, without a restart, takes writes again.
	var perr error
	for time.Now().Before(deadline) {
		if perr = p.Produce(ctx, records(30, 250, 9)); perr == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if perr != nil {
		t.Fatalf("Produce after the broker returned: %v", perr)
	}
	acked += 30
	// Every acked record is there; unacked ones may or may not be.
	c := newConsumer(t, cfg, nil)
	got := drain(t, c, acked, 60*time.Second)
	seen := map[string]bool{}
	for _, r := range got {
		seen[string(r.Value)] = true
	}
	for i, r := range append(records(50, 250, 6), records(30, 250, 9)...) {
		if !seen[string(r.Value)] {
			t.Fatalf("acked record %d lost", i)
		}
	}
}

// member runs one consumer like a processor does: poll, "store", commit, in
// its own goroutine, until stopped.
type member struct {
	name string
	c    *Consumer
	stop chan struct{}
	done chan struct{}
}

// ledger is the shared "store" of the group test: which member processed
// each record, and any record processed twice.
type ledger struct {
	mu   sync.Mutex
	seen map[string]string
	dups []string
}

func (l *ledger) count(name string) (total, byName int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.seen {
		if m == name {
			byName++
		}
	}
	return len(l.seen), byName
}

func startMember(t *testing.T, name string, c *Consumer, l *ledger) *member {
	m := &member{name: name, c: c, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			select {
			case <-m.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			recs, err := c.Poll(ctx, 200)
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s Poll: %v", name, err)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			if len(recs) == 0 {
				continue
			}
			l.mu.Lock()
			for _, r := range recs {
				if other, ok := l.seen[string(r.Value)]; ok {
					l.dups = append(l.dups, fmt.Sprintf("%s/%d@%d by %s and %s", r.Topic, r.Partition, r.Offset, other, name))
				}
				l.seen[string(r.Value)] = name
			}
			l.mu.Unlock()
			if err := c.Commit(context.Background(), nextOffsets(recs)); err != nil {
				t.Logf("%s Commit (advisory): %v", name, err)
			}
		}
	}()
	t.Cleanup(func() { m.halt() })
	return m
}

func (m *member) halt() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
}

// TestConsumerGroupSharesAndHandsOver: two members of one group share the
// partitions with cooperative-sticky balancing. When the second joins under
// load, only the partitions it takes are revoked from the first; when it
// leaves, the first takes them back. Every record is processed exactly once
// across both: a member finishes and commits its batch before a partition
// moves.
func TestConsumerGroupSharesAndHandsOver(t *testing.T) {
	cfg := testConfig(t, 4)
	p := newProducer(t, cfg)
	ctx := context.Background()
	batches := 0
	produce := func() {
		batches++
		if err := p.Produce(ctx, records(100, 250, uint64(100+batches))); err != nil {
			t.Fatalf("Produce: %v", err)
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	var revMu sync.Mutex
	var revokedA []transport.TopicPartition
	cfgA := cfg
	cfgA.OnRevoked = func(tps []transport.TopicPartition) {
		revMu.Lock()
		revokedA = append(revokedA, tps...)
		revMu.Unlock()
	}
	l := &ledger{seen: map[string]string{}}
	a := newConsumer(t, cfgA, nil)
	startMember(t, "A", a, l)
	produce()
	waitFor("A to own all 4 partitions", func() bool { return len(a.Assigned()) == 4 })

	// B joins while records keep coming.
	b := newConsumer(t, cfg, nil)
	mb := startMember(t, "B", b, l)
	waitFor("a 2+2 split", func() bool {
		if batches < 20 {
			produce()
		}
		return len(a.Assigned()) == 2 && len(b.Assigned()) == 2
	})
	for i := 0; i < 3; i++ {
		produce()
	}
	waitFor("every record processed", func() bool { n, _ := l.count(""); return n == batches*100 })
	revMu.Lock()
	if len(revokedA) != 2 {
		t.Errorf("cooperative-sticky revoked %v from A when B joined, want exactly the 2 partitions B took", revokedA)
	}
	revMu.Unlock()
	if _, byB := l.count("B"); byB == 0 {
		t.Fatal("the second member processed nothing")
	}

	// B leaves under load; A takes its partitions back without losing its own.
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		mb.halt()
		b.Close()
	}()
	for i := 0; i < 5; i++ {
		produce()
		time.Sleep(100 * time.Millisecond)
	}
	<-stopped
	waitFor("A to own all 4 partitions again", func() bool { return len(a.Assigned()) == 4 })
	waitFor("every record processed", func() bool { n, _ := l.count(""); return n == batches*100 })

	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.dups) > 0 {
		t.Fatalf("%d records processed twice across the rebalances, first: %s", len(l.dups), l.dups[0])
	}
	revMu.Lock()
	defer revMu.Unlock()
	if len(revokedA) != 2 {
		t.Errorf("A lost %v in total, want only the 2 partitions B took when it joined", revokedA)
	}
}

func assigned(c *Consumer) []transport.TopicPartition {
	if c == nil {
		return nil
	}
	return c.Assigned()
}

// TestLeavingMemberCommitsAndHandsOver: a member that closes commits what it
// finished, and the remaining member continues exactly after it.
func TestLeavingMemberCommitsAndHandsOver(t *testing.T) {
	cfg := testConfig(t, 2)
	p := newProducer(t, cfg)
	ctx := context.Background()
	if err := p.Produce(ctx, records(200, 250, 20)); err != nil {
		t.Fatal(err)
	}
	a := newConsumer(t, cfg, nil)
	got := drain(t, a, 200, 30*time.Second)
	if len(got) != 200 {
		t.Fatalf("A consumed %d", len(got))
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Produce(ctx, records(50, 250, 21)); err != nil {
		t.Fatal(err)
	}
	b := newConsumer(t, cfg, nil)
	got = drain(t, b, 50, 30*time.Second)
	// Give a wrong resume a chance to show up as extra records.
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	extra, _ := b.Poll(pctx, 1000)
	cancel()
	if len(got) != 50 || len(extra) != 0 {
		t.Fatalf("after A left, B consumed %d (+%d), want exactly the 50 new records", len(got), len(extra))
	}
}

// TestResumeFromStoreOffsets: the store's offsets win when they are ahead of
// the group's, the group's when the store is behind.
func TestResumeFromStoreOffsets(t *testing.T) {
	cfg := testConfig(t, 1)
	p := newProducer(t, cfg)
	ctx := context.Background()
	if err := p.Produce(ctx, records(100, 250, 30)); err != nil {
		t.Fatal(err)
	}
	tp0 := transport.TopicPartition{Topic: cfg.Topic, Partition: 0}

	// Nothing known anywhere: from the start.
	c := newConsumer(t, cfg, func(context.Context, transport.TopicPartition) (int64, bool, error) { return 0, false, nil })
	got := pollOnce(t, c, 30*time.Second)
	if len(got) == 0 || got[0].Offset != 0 {
		t.Fatalf("first record %+v, want offset 0", got)
	}
	// Commit 10 to the group, then leave.
	if err := c.Commit(ctx, map[transport.TopicPartition]int64{tp0: 10}); err != nil {
		t.Fatal(err)
	}
	c.Close()

	cases := []struct {
		name  string
		store int64
		ok    bool
		want  int64
	}{
		{"store ahead of group", 40, true, 40},
		{"store behind group", 5, true, 10},
		{"store knows nothing", 0, false, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var asked []transport.TopicPartition
			src := func(_ context.Context, tp transport.TopicPartition) (int64, bool, error) {
				asked = append(asked, tp)
				return tc.store, tc.ok, nil
			}
			c := newConsumer(t, cfg, src)
			got := pollOnce(t, c, 30*time.Second)
			if len(got) == 0 || got[0].Offset != tc.want {
				t.Fatalf("resumed at %+v, want offset %d", first(got), tc.want)
			}
			if len(asked) != 1 || asked[0] != tp0 {
				t.Fatalf("OffsetSource asked for %v, want [%v]", asked, tp0)
			}
			c.Close() // without committing: the group stays at 10
		})
	}
}

// pollOnce returns the first non-empty poll, without committing.
func pollOnce(t *testing.T, c *Consumer, d time.Duration) []transport.Record {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		recs, err := c.Poll(ctx, 1000)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Poll: %v", err)
		}
		if len(recs) > 0 {
			return recs
		}
	}
	return nil
}

func first(r []transport.Record) any {
	if len(r) == 0 {
		return "nothing"
	}
	return r[0].Offset
}

func TestSendToDLQCarriesErrorAndOrigin(t *testing.T) {
	cfg := testConfig(t, 1)
	p := newProducer(t, cfg)
	ctx := context.Background()
	if err := p.Produce(ctx, []transport.Record{{Key: []byte("k"), Value: []byte("not json {"),
		Headers: []transport.Header{{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")}}}}); err != nil {
		t.Fatal(err)
	}
	c := newConsumer(t, cfg, nil)
	got := drain(t, c, 1, 30*time.Second)
	if len(got) != 1 {
		t.Fatalf("consumed %d", len(got))
	}
	if err := c.SendToDLQ(ctx, got[0], errors.New("decode: invalid JSON at byte 9")); err != nil {
		t.Fatalf("SendToDLQ: %v", err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.ConsumeTopics(cfg.DLQTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	fs := cl.PollFetches(fctx)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	if len(recs) != 1 {
		t.Fatalf("dead-letter topic holds %d records", len(recs))
	}
	r := recs[0]
	if string(r.Value) != "not json {" || string(r.Key) != "k" {
		t.Fatalf("dead letter %q/%q, want the original key and value", r.Key, r.Value)
	}
	h := map[string]string{}
	for _, x := range r.Headers {
		h[x.Key] = string(x.Value)
	}
	want := map[string]string{
		HeaderDLQError:     "decode: invalid JSON at byte 9",
		HeaderDLQTopic:     cfg.Topic,
		HeaderDLQPartition: "0",
		HeaderDLQOffset:    "0",
		"traceparent":      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("header %s = %q, want %q", k, h[k], v)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, h[HeaderDLQTime]); err != nil {
		t.Errorf("header %s: %v", HeaderDLQTime, err)
	}
}

func TestPartitionMismatchReported(t *testing.T) {
	cfg := testConfig(t, 2)
	ctx := context.Background()
	if err := EnsureTopics(ctx, &cfg); err != nil {
		t.Fatalf("create: %v", err)
	}
	if n := len(endOffsets(t, cfg.Topic)); n != 2 {
		t.Fatalf("created %d partitions, want 2", n)
	}
	cfg.Partitions = 5
	err := EnsureTopics(ctx, &cfg)
	var pm *PartitionMismatchError
	if !errors.As(err, &pm) || !errors.Is(err, ErrPartitionMismatch) || pm.Have != 2 || pm.Want != 5 {
		t.Fatalf("err %v, want a partition mismatch 2 vs 5", err)
	}
	if !strings.Contains(err.Error(), "--kafka-partitions") {
		t.Fatalf("error does not name the flag: %v", err)
	}
	// The producer still works with the existing topic.
	p := newProducer(t, cfg)
	if err := p.Produce(ctx, records(10, 100, 40)); err != nil {
		t.Fatal(err)
	}

	cfg.Topic += ".absent"
	cfg.CreateTopics = false
	if err := EnsureTopics(ctx, &cfg); err == nil || !strings.Contains(err.Error(), "--kafka-create-topics") {
		t.Fatalf("missing topic without creation: %v", err)
	}
}

func TestMetricsExported(t *testing.T) {
	cfg := testConfig(t, 2)
	p := newProducer(t, cfg)
	ctx := context.Background()
	if err := p.Produce(ctx, records(100, 250, 50)); err != nil {
		t.Fatal(err)
	}
	c := newConsumer(t, cfg, nil)
	got := drain(t, c, 60, 30*time.Second)
	if len(got) < 60 {
		t.Fatalf("consumed %d", len(got))
	}
	c.refreshLag(ctx)

	reg := prometheus.NewRegistry()
	reg.MustRegister(p.Collector(), c.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var v float64
			switch {
			case m.Counter != nil:
				v = m.Counter.GetValue()
			case m.Gauge != nil:
				v = m.Gauge.GetValue()
			default:
				continue
			}
			vals[mf.GetName()] += v
		}
	}
	if vals["wirelog_kafka_producer_acked_records_total"] != 100 {
		t.Errorf("acked records %v, want 100", vals["wirelog_kafka_producer_acked_records_total"])
	}
	if vals["wirelog_kafka_produce_records_total"] != 100 {
		t.Errorf("franz-go produced records %v, want 100", vals["wirelog_kafka_produce_records_total"])
	}
	if _, ok := vals["wirelog_kafka_consumer_lag_records"]; !ok {
		t.Errorf("no consumer lag gauge")
	}
	if vals["wirelog_kafka_consumer_lag_records"] != float64(100-len(got)) {
		t.Errorf("lag %v, want %d", vals["wirelog_kafka_consumer_lag_records"], 100-len(got))
	}
	if vals["wirelog_kafka_consumer_assigned_partitions"] != 2 {
		t.Errorf("assigned partitions %v, want 2", vals["wirelog_kafka_consumer_assigned_partitions"])
	}
}

// TestSASL produces and consumes through the broker's SASL_PLAINTEXT
// listener with each mechanism, and a wrong password fails at start with an
// authentication error instead of hanging.
func TestSASL(t *testing.T) {
	for _, mech := range []string{"plain", "scram-sha-256", "scram-sha-512"} {
		t.Run(mech, func(t *testing.T) {
			cfg := testConfig(t, 1)
			cfg.Brokers = []string{saslAddr}
			cfg.SASLMechanism, cfg.SASLUser, cfg.SASLPassword = mech, "wirelog", "wirelog-secret"
			p := newProducer(t, cfg)
			if err := p.Produce(context.Background(), records(5, 200, 60)); err != nil {
				t.Fatalf("Produce over SASL %s: %v", mech, err)
			}
			c := newConsumer(t, cfg, nil)
			if got := drain(t, c, 5, 30*time.Second); len(got) != 5 {
				t.Fatalf("consumed %d over SASL %s", len(got), mech)
			}

			bad := cfg
			bad.SASLPassword = "wrong"
			bad.ProduceTimeout = 3 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := NewProducer(ctx, bad)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), "auth") {
				t.Fatalf("wrong password: err %v, want an authentication error", err)
			}
		})
	}
}

// TestSASLFromFiles: the SCRAM password and the OAUTHBEARER token come
// from files read at every authentication (as a mounted Secret or a token
// refresher provides them).
func TestSASLFromFiles(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("wirelog-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, 1)
	cfg.Brokers = []string{saslAddr}
	cfg.SASLMechanism, cfg.SASLUser, cfg.SASLPasswordFile = "scram-sha-512", "wirelog", pw
	p := newProducer(t, cfg)
	if err := p.Produce(context.Background(), records(3, 100, 80)); err != nil {
		t.Fatalf("Produce with --kafka-sasl-password-file: %v", err)
	}

	// Kafka's unsecured OAUTHBEARER validator takes an unsigned JWT.
	enc := base64.RawURLEncoding.EncodeToString
	now := time.Now().Unix()
	jwt := enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(fmt.Sprintf(`{"sub":"wirelog","iat":%d,"exp":%d}`, now, now+3600))) + "."
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte(jwt+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ocfg := testConfig(t, 1)
	ocfg.Brokers = []string{saslAddr}
	ocfg.SASLMechanism, ocfg.SASLOAuthTokenFile = "oauthbearer", tok
	op := newProducer(t, ocfg)
	if err := op.Produce(context.Background(), records(3, 100, 81)); err != nil {
		t.Fatalf("Produce with OAUTHBEARER from --kafka-sasl-oauth-token-file: %v", err)
	}
}

// TestTLS produces and consumes through the broker's TLS listener, verifying
// its certificate against --kafka-tls-ca and presenting a client certificate;
// without the CA the connection is refused for the unknown authority.
func TestTLS(t *testing.T) {
	cfg := testConfig(t, 1)
	cfg.Brokers = []string{tlsAddr}
	cfg.TLS, cfg.TLSCAFile = true, tlsCA
	cfg.TLSCertFile, cfg.TLSKeyFile = tlsClient[0], tlsClient[1]
	p := newProducer(t, cfg)
	if err := p.Produce(context.Background(), records(5, 200, 70)); err != nil {
		t.Fatalf("Produce over TLS: %v", err)
	}
	c := newConsumer(t, cfg, nil)
	if got := drain(t, c, 5, 30*time.Second); len(got) != 5 {
		t.Fatalf("consumed %d over TLS", len(got))
	}

	// Mutual TLS: without a client certificate the broker refuses us.
	anon := cfg
	anon.TLSCertFile, anon.TLSKeyFile = "", ""
	anon.ProduceTimeout = 3 * time.Second
	actx, acancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer acancel()
	if p, err := NewProducer(actx, anon); err == nil {
		err = p.Produce(actx, records(1, 100, 71))
		p.Close()
		if err == nil {
			t.Fatal("the broker requiring client certificates accepted a client without one")
		}
	}

	// kcat, a client no one here wrote, reads what wirelog produced over
	// the same mutual-TLS listener.
	out, err := exec.Command("kcat", "-b", tlsAddr, "-X", "security.protocol=ssl", "-X", "ssl.ca.location="+tlsCA,
		"-X", "ssl.certificate.location="+tlsClient[0], "-X", "ssl.key.location="+tlsClient[1],
		"-C", "-t", cfg.Topic, "-o", "beginning", "-e", "-q", "-f", "%o\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat over SSL: %v\n%s", err, out)
	}
	if n := len(strings.Fields(string(out))); n != 5 {
		t.Fatalf("kcat read %d records over SSL, want 5:\n%s", n, out)
	}

	untrusted := cfg
	untrusted.TLSCAFile = "" // system roots do not know the test CA
	untrusted.ProduceTimeout = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := NewProducer(ctx, untrusted); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted broker certificate: err %v, want a certificate error", err)
	}
}
