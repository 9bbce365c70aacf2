package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
)

// readUntil collects log events from ch until one carries want, failing on
// any notice (dropped, gap) unless allowNotice.
func readUntil(t *testing.T, ch <-chan sseEvent, want string) []sseEvent {
	t.Helper()
	var got []sseEvent
	for {
		ev := next(t, ch)
		got = append(got, ev)
		if strings.Contains(ev.data, want) {
			return got
		}
	}
}

func messages(t *testing.T, evs []sseEvent) []string {
	t.Helper()
	var out []string
	for _, ev := range evs {
		if ev.name != "" {
			out = append(out, ev.name+" "+ev.data)
			continue
		}
		var e struct{ Message string }
		if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
			t.Fatalf("event %+v: %v", ev, err)
		}
		out = append(out, e.Message)
	}
	return out
}

func TestTailEventsCarryIncreasingIDs(t *testing.T) {
	hub := NewTailHub()
	srv, _ := newTestAPI(t, Options{Tail: hub})
	ch, _ := sseClient(t, srv.URL+"/api/v1/tail")
	hub.Publish([]event.Event{tailEvent("a", event.LevelInfo, "one"), tailEvent("a", event.LevelInfo, "two")})
	hub.Publish([]event.Event{tailEvent("a", event.LevelInfo, "three")})
	var ids []string
	for range 3 {
		ev := next(t, ch)
		if ev.id == "" {
			t.Fatalf("event %+v has no id: a reconnecting browser could not resume", ev)
		}
		ids = append(ids, ev.id)
	}
	if ids[0] == ids[1] || ids[1] == ids[2] || ids[0] == ids[2] {
		t.Fatalf("ids %v are not distinct", ids)
	}
}

// A client that reconnects with the last id it saw gets exactly the events
// it missed that match its filter, then the live ones: no gap, no duplicate.
func TestTailResumeReplaysWhatTheClientMissed(t *testing.T) {
	hub := NewTailHub()
	srv, _ := newTestAPI(t, Options{Tail: hub})
	url := srv.URL + "/api/v1/tail?service=payments"
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel() }) // the latest one: an open stream would hold the server's Close
	ch, _ := sseResume(t, ctx, url, "")
	hub.Publish([]event.Event{tailEvent("payments", event.LevelInfo, "p1"), tailEvent("other", event.LevelInfo, "o1"), tailEvent("payments", event.LevelInfo, "p2")})
	seen := readUntil(t, ch, `"p2"`)
	last := seen[len(seen)-1].id
	cancel()
	for range ch { // the stream ends
	}
	// While disconnected.
	hub.Publish([]event.Event{tailEvent("payments", event.LevelInfo, "p3"), tailEvent("other", event.LevelInfo, "o2")})
	hub.Publish([]event.Event{tailEvent("payments", event.LevelInfo, "p4")})

	ctx2, cancel2 := context.WithCancel(context.Background())
	t.Cleanup(cancel2)
	ch2, resp := sseResume(t, ctx2, url, last)
	if resp.StatusCode != 200 {
		t.Fatalf("resume: %d", resp.StatusCode)
	}
	hub.Publish([]event.Event{tailEvent("payments", event.LevelInfo, "p5")})
	got := messages(t, readUntil(t, ch2, `"p5"`))
	if want := []string{"p3", "p4", "p5"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after resuming from %s got %q, want %q", last, got, want)
	}
}

// Reconnecting over and over while events are published concurrently loses
// and repeats nothing: every number arrives exactly once, in order.
func TestTailResumeUnderConcurrentPublishHasNoGapOrDuplicate(t *testing.T) {
	hub := NewTailHubOptions(TailOptions{Buffer: 64}) // small: the stream also catches up from the ring
	srv, _ := newTestAPI(t, Options{Tail: hub})
	url := srv.URL + "/api/v1/tail"
	const total = 20000
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel() }) // the latest one: an open stream would hold the server's Close
	ch, _ := sseResume(t, ctx, url, "")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		batch := make([]event.Event, 10)
		for i := 0; i < total; i += len(batch) {
			for j := range batch {
				batch[j] = tailEvent("svc", event.LevelInfo, fmt.Sprint(i+j))
			}
			hub.Publish(batch)
			if i%500 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	t.Cleanup(wg.Wait)
	wantNext, lastID, reconnects := 0, "", 0
	deadline := time.After(60 * time.Second)
	for wantNext < total {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("stream ended without being cancelled")
			}
			if ev.name != "" {
				t.Fatalf("got a %s notice %s at %d, want a seamless resume", ev.name, ev.data, wantNext)
			}
			var e struct{ Message string }
			json.Unmarshal([]byte(ev.data), &e)
			if e.Message != fmt.Sprint(wantNext) {
				t.Fatalf("got event %q after %d (id %s, resumed from %s), want %d: a gap or a duplicate", e.Message, wantNext-1, ev.id, lastID, wantNext)
			}
			wantNext++
			lastID = ev.id
			if wantNext%1500 == 0 { // drop the connection mid-stream, unread events in flight
				cancel()
				for range ch {
				}
				ctx, cancel = context.WithCancel(context.Background())
				ch, _ = sseResume(t, ctx, url, lastID)
				reconnects++
			}
		case <-deadline:
			t.Fatalf("only %d of %d events within 60s", wantNext, total)
		}
	}
	cancel()
	t.Logf("%d events over %d reconnects", total, reconnects)
}

// A client whose last id is older than the ring holds is told how many
// events it cannot get back, then gets what the ring still has.
func TestTailResumeTooOldGetsAGapNotice(t *testing.T) {
	hub := NewTailHubOptions(TailOptions{ResumeEvents: 4})
	srv, _ := newTestAPI(t, Options{Tail: hub})
	url := srv.URL + "/api/v1/tail"
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel() }) // the latest one: an open stream would hold the server's Close
	ch, _ := sseResume(t, ctx, url, "")
	hub.Publish([]event.Event{tailEvent("a", event.LevelInfo, "m0")})
	last := next(t, ch).id
	cancel()
	for range ch {
	}
	batch := make([]event.Event, 10)
	for i := range batch {
		batch[i] = tailEvent("a", event.LevelInfo, fmt.Sprintf("m%d", i+1))
	}
	hub.Publish(batch)
	ctx2, cancel2 := context.WithCancel(context.Background())
	t.Cleanup(cancel2)
	ch2, _ := sseResume(t, ctx2, url, last)
	got := messages(t, readUntil(t, ch2, `"m10"`))
	want := []string{`gap {"reason":"expired","missed":6}`, "m7", "m8", "m9", "m10"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// An id from another server process (a restart) or no id at all cannot be
// resumed from: the client is told so before the live events.
func TestTailResumeAfterRestartGetsAGapNotice(t *testing.T) {
	old := NewTailHubOptions(TailOptions{Now: func() time.Time { return time.Unix(1, 0) }})
	hub := NewTailHub()
	srv, _ := newTestAPI(t, Options{Tail: hub})
	for _, id := range []string{old.epoch + ".42", "not-an-id"} {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		ch, _ := sseResume(t, ctx, srv.URL+"/api/v1/tail", id)
		hub.Publish([]event.Event{tailEvent("a", event.LevelInfo, "live")})
		got := messages(t, readUntil(t, ch, `"live"`))
		if want := []string{`gap {"reason":"restarted"}`, "live"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Last-Event-ID %s: got %q, want %q", id, got, want)
		}
		cancel()
	}
}

// With no client for longer than the resume window the ring is let go
// (publishing is then nearly free); a late client is told what it missed.
func TestTailRingLetGoAfterResumeWindow(t *testing.T) {
	var mu sync.Mutex
	clock := time.Unix(1000, 0)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	hub := NewTailHubOptions(TailOptions{ResumeWindow: time.Minute, Now: now})
	srv, _ := newTestAPI(t, Options{Tail: hub})
	url := srv.URL + "/api/v1/tail"
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel() }) // the latest one: an open stream would hold the server's Close
	ch, _ := sseResume(t, ctx, url, "")
	hub.Publish([]event.Event{tailEvent("a", event.LevelInfo, "m0")})
	last := next(t, ch).id
	cancel()
	for range ch {
	}
	testWait(t, func() bool { hub.mu.Lock(); defer hub.mu.Unlock(); return len(hub.subs) == 0 })
	mu.Lock()
	clock = clock.Add(2 * time.Minute)
	mu.Unlock()
	hub.Publish([]event.Event{tailEvent("a", event.LevelInfo, "m1"), tailEvent("a", event.LevelInfo, "m2")})
	hub.mu.Lock()
	held := hub.ring.n
	hub.mu.Unlock()
	if held != 0 {
		t.Fatalf("the ring holds %d events with no client for 2 minutes, want it let go", held)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	t.Cleanup(cancel2)
	ch2, _ := sseResume(t, ctx2, url, last)
	hub.Publish([]event.Event{tailEvent("a", event.LevelInfo, "m3")})
	got := messages(t, readUntil(t, ch2, `"m3"`))
	if want := []string{`gap {"reason":"expired","missed":2}`, "m3"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func testWait(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 10s")
}

// max_rate keeps a stream under N events a second: of a burst it sends the
// newest, after a notice of how many it skipped.
func TestTailMaxRateSamplesTheNewest(t *testing.T) {
	hub := NewTailHub()
	srv, _ := newTestAPI(t, Options{Tail: hub})
	ch, _ := sseClient(t, srv.URL+"/api/v1/tail?max_rate=5")
	batch := make([]event.Event, 100)
	for i := range batch {
		batch[i] = tailEvent("a", event.LevelInfo, fmt.Sprintf("m%d", i+1))
	}
	hub.Publish(batch)
	got := messages(t, readUntil(t, ch, `"m100"`))
	want := []string{`sampled {"skipped":95}`, "m96", "m97", "m98", "m99", "m100"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for _, bad := range []string{"0", "x", "2000000"} {
		resp, err := http.Get(srv.URL + "/api/v1/tail?max_rate=" + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("max_rate=%s: %d, want 400", bad, resp.StatusCode)
		}
	}
}
