package process

import (
	"context"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/transport"
	"github.com/wirelog/wirelog/internal/transport/disklog"
)

// TestUndecodableRecordIsStoredAsAnError writes a good record, one that is
// not an event, and another good one into a real embedded log: the processor
// stores all three — the bad one as an error event naming its offset — and
// moves on, and a restart on the same store stores nothing twice.
func TestUndecodableRecordIsStoredAsAnError(t *testing.T) {
	lg, st := openRealLog(t, store.Options{})
	good := func(msg string) []byte {
		return event.AppendJSON(nil, &event.Event{Time: time.Now(), Service: "svc", Level: event.LevelInfo, Message: msg})
	}
	recs := []transport.Record{{Value: good("first")}, {Value: []byte("not an event")}, {Value: good("third")}}
	if err := lg.Producer().Produce(context.Background(), recs); err != nil {
		t.Fatal(err)
	}

	processUntil(t, lg, st, 3)
	processUntil(t, lg, st, 3) // a second processor on the same store must skip what is stored

	res, err := st.Search(context.Background(), store.SearchRequest{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 3 {
		t.Fatalf("stored %d events, want 3 (two good, one error event)", len(res.Events))
	}
	var bad *store.StoredEvent
	for i := range res.Events {
		if res.Events[i].Offset == 1 {
			bad = &res.Events[i]
		}
	}
	if bad == nil || bad.Level != "error" || bad.Service != "wirelog" || bad.Message == "" || len(bad.Attrs) == 0 {
		t.Fatalf("the undecodable record was stored as %+v", bad)
	}
}

// TestPauseStopsStoring: while paused the processor stores nothing; after
// Resume it catches up.
func TestPauseStopsStoring(t *testing.T) {
	lg, st := openRealLog(t, store.Options{})
	cons := lg.Consumer("test", st.NextOffset)
	defer cons.Close()
	p := New(cons, st, Options{})
	p.Pause()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	rec := event.AppendJSON(nil, &event.Event{Time: time.Now(), Message: "waits"})
	if err := lg.Producer().Produce(context.Background(), []transport.Record{{Value: rec}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	tp := transport.TopicPartition{Topic: disklog.DefaultTopic, Partition: 0}
	if _, ok, _ := st.NextOffset(context.Background(), tp); ok {
		t.Fatal("a paused processor stored a record")
	}
	p.Resume()
	waitStored(t, st, 1)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
