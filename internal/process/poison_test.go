package process

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/transport"
	"github.com/wirelog/wirelog/internal/transport/disklog"
)

// refusing is the real store, except that a Write holding a row whose
// message is "poison" fails as DuckDB failed on issue 19's record, and
// while diskFull is set every Write fails as a full disk does.
type refusing struct {
	*store.Store
	diskFull atomic.Bool
	writes   atomic.Int64
	deadRaw  atomic.Value // string: the raw record of the last dead letter
}

func (r *refusing) WriteDeadLetters(ctx context.Context, dls []store.DeadLetter) error {
	for _, d := range dls {
		r.deadRaw.Store(string(d.Raw))
	}
	return r.Store.WriteDeadLetters(ctx, dls)
}

func (r *refusing) Write(ctx context.Context, rows []store.Row) (int, error) {
	r.writes.Add(1)
	if r.diskFull.Load() {
		return 0, errors.New("IO Error: could not write file \"wirelog.duckdb.wal\": No space left on device")
	}
	for _, row := range rows {
		if row.Event.Message == "poison" {
			return 0, errors.New("Out of Memory Error: failed to allocate data of size 16.0 MiB")
		}
	}
	return r.Store.Write(ctx, rows)
}

func openLogAndStore(t *testing.T) (*disklog.Log, *refusing) {
	dir := t.TempDir()
	lg, err := disklog.Open(filepath.Join(dir, "log"), disklog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	st, err := store.Open(filepath.Join(dir, "wirelog.duckdb"), store.Options{DisableMaintenance: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return lg, &refusing{Store: st}
}

func produce(t *testing.T, lg *disklog.Log, msgs ...string) {
	var recs []transport.Record
	for i, m := range msgs {
		// Both record forms HTTP ingest writes: JSON and binary.
		f := event.RecordJSON
		if i%2 == 1 {
			f = event.RecordBinary
		}
		recs = append(recs, transport.Record{Value: event.AppendRecord(nil, &event.Event{Time: time.Now(), Service: "svc", Level: event.LevelInfo, Message: m}, f)})
	}
	if err := lg.Producer().Produce(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

func waitOffset(t *testing.T, st *refusing, want int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		next, _, err := st.NextOffset(context.Background(), transport.TopicPartition{Topic: disklog.DefaultTopic, Partition: 0})
		if err != nil {
			t.Fatal(err)
		}
		if next == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processor did not reach offset %d (at %d)", want, next)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPoisonRecordIsDeadLettered: one record the store refuses, in a batch
// of 16, goes to the dead_letters table; the other 15 are stored, the
// offset moves past all 16, and a restart stores nothing twice.
func TestPoisonRecordIsDeadLettered(t *testing.T) {
	lg, st := openLogAndStore(t)
	var msgs []string
	for i := 0; i < 16; i++ {
		msgs = append(msgs, fmt.Sprintf("good %d", i))
	}
	msgs[5] = "poison"
	produce(t, lg, msgs...)

	run := func() *Processor {
		cons := lg.Consumer("test", st.NextOffset)
		defer cons.Close()
		p := New(cons, st, Options{RetryDelay: 10 * time.Millisecond, MaxWriteTries: 2})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		waitOffset(t, st, 16)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		return p
	}
	p := run()
	if err := p.Stuck(); err != nil {
		t.Errorf("Stuck after the batch went through: %v", err)
	}
	run()
	res, err := st.Search(context.Background(), store.SearchRequest{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 15 {
		t.Errorf("stored %d events, want the 15 good ones", len(res.Events))
	}
	for _, e := range res.Events {
		if e.Message == "poison" {
			t.Errorf("the poison record was stored")
		}
	}
	n, err := st.DeadLetterCount(context.Background())
	if err != nil || n != 1 {
		t.Errorf("dead letters %d (%v), want 1", n, err)
	}
	// The poison (index 5) came as a binary record; operators read the
	// dead_letters table, so it is kept as its JSON record.
	if raw, _ := st.deadRaw.Load().(string); !strings.HasPrefix(raw, `{"ts":"`) || !strings.Contains(raw, `"message":"poison"`) {
		t.Errorf("dead letter kept as %q, want the JSON record", raw)
	}
}

// TestFullDiskIsRetriedNotDeadLettered: a store failing for every record
// (the disk) is retried whole, never split; Stuck says why until it
// passes, then everything is stored.
func TestFullDiskIsRetriedNotDeadLettered(t *testing.T) {
	lg, st := openLogAndStore(t)
	st.diskFull.Store(true)
	produce(t, lg, "a", "b", "c", "d")
	cons := lg.Consumer("test", st.NextOffset)
	defer cons.Close()
	p := New(cons, st, Options{RetryDelay: 10 * time.Millisecond, MaxWriteTries: 2})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for p.Stuck() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Stuck(); err == nil {
		t.Fatal("Stuck is nil while every write fails")
	}
	st.diskFull.Store(false)
	waitOffset(t, st, 4)
	cancel()
	<-done
	if err := p.Stuck(); err != nil {
		t.Errorf("Stuck after recovery: %v", err)
	}
	n, _ := st.DeadLetterCount(context.Background())
	if n != 0 {
		t.Errorf("%d records dead-lettered for a full disk", n)
	}
}
