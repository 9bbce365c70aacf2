package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
)

// sseEvent is one server-sent event as a client parses it.
type sseEvent struct {
	name string // "" for a log event, "dropped" or "gap" for a notice
	id   string
	data string
}

// sseClient connects to the tail and returns parsed events on a channel.
func sseClient(t *testing.T, url string) (<-chan sseEvent, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return sseResume(t, ctx, url, "")
}

// sseResume connects as a browser's EventSource reconnecting after lastID
// does; the stream ends when ctx is cancelled.
func sseResume(t *testing.T, ctx context.Context, url, lastID string) (<-chan sseEvent, *http.Response) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan sseEvent, 100)
	if resp.StatusCode != 200 {
		return ch, resp
	}
	sc := bufio.NewScanner(resp.Body)
	// The stream's first lines are a comment and the retry hint; they arrive
	// once the client is subscribed.
	for sc.Scan() && sc.Text() != "" {
	}
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.data != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return ch, resp
}

func next(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("tail stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no tail event within 10s")
	}
	return sseEvent{}
}

func tailEvent(service string, level event.Level, msg string) event.Event {
	return event.Event{Time: now, Service: service, Level: level, Message: msg, Attrs: []byte(`{"k":1}`)}
}

func TestTailReceivesPublishedEventsMatchingItsFilter(t *testing.T) {
	hub := NewTailHub()
	srv, _ := newTestAPI(t, Options{Tail: hub})
	all, resp := sseClient(t, srv.URL+"/api/v1/tail")
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q, want text/event-stream", ct)
	}
	filtered, _ := sseClient(t, srv.URL+"/api/v1/tail?service=payments&level=error&q=DECLINED")

	batch := []event.Event{
		tailEvent("payments", event.LevelError, "card declined"),
		tailEvent("payments", event.LevelInfo, "card declined"),
		tailEvent("checkout", event.LevelError, "card declined"),
		tailEvent("payments", event.LevelError, "timeout"),
	}
	hub.Publish(batch)
	// The processor reuses its events after Publish: the tail must have copied them.
	for i := range batch {
		batch[i].Message = "overwritten"
		batch[i].Attrs[1] = 'X'
	}
	for i, want := range []string{"card declined", "card declined", "card declined", "timeout"} {
		ev := next(t, all)
		var e struct {
			Message string         `json:"message"`
			Attrs   map[string]int `json:"attrs"`
		}
		if err := json.Unmarshal([]byte(ev.data), &e); err != nil || ev.name != "" {
			t.Fatalf("event %d: %+v is not a log event: %v", i, ev, err)
		}
		if e.Message != want || e.Attrs["k"] != 1 {
			t.Errorf("event %d = %+v, want message %q and attrs k=1", i, e, want)
		}
	}
	ev := next(t, filtered)
	if !strings.Contains(ev.data, `"service":"payments"`) || !strings.Contains(ev.data, `"level":"error"`) || !strings.Contains(ev.data, "declined") {
		t.Errorf("filtered client got %s", ev.data)
	}
	hub.Publish([]event.Event{tailEvent("payments", event.LevelError, "Declined again")})
	if ev := next(t, filtered); !strings.Contains(ev.data, "Declined again") {
		t.Errorf("filtered client got %s, want the second match (and not the three non-matching events)", ev.data)
	}
}

// A batch larger than a client's queue (a processor batch often is) is not
// lost: the stream reads the rest from the resume ring, in order; only what
// the ring no longer holds is dropped, and the client is told how many.
func TestTailSlowClientCatchesUpFromTheRing(t *testing.T) {
	for _, c := range []struct {
		name string
		opts TailOptions
		want []string
	}{
		{"ring holds all", TailOptions{Buffer: 3}, []string{"m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9", "m10"}},
		{"ring holds 4", TailOptions{Buffer: 3, ResumeEvents: 4}, []string{"m1", "m2", "m3", `dropped {"dropped":3}`, "m7", "m8", "m9", "m10"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			hub := NewTailHubOptions(c.opts)
			srv, _ := newTestAPI(t, Options{Tail: hub})
			ch, _ := sseClient(t, srv.URL+"/api/v1/tail")
			batch := make([]event.Event, 10)
			for i := range batch {
				batch[i] = tailEvent("svc", event.LevelInfo, fmt.Sprintf("m%d", i+1))
			}
			hub.Publish(batch)
			got := messages(t, readUntil(t, ch, `"m10"`))
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			// Caught up, live events flow again.
			hub.Publish([]event.Event{tailEvent("svc", event.LevelInfo, "live")})
			if got := messages(t, []sseEvent{next(t, ch)}); got[0] != "live" {
				t.Fatalf("after catching up got %q, want the live event", got)
			}
			// Publishing never blocks, whatever the clients do.
			done := make(chan struct{})
			go func() {
				for range 1000 {
					hub.Publish(batch)
				}
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Publish blocked on a slow client")
			}
		})
	}
}

func TestTailClientLimitAndClose(t *testing.T) {
	hub := NewTailHubOptions(TailOptions{MaxClients: 1})
	srv, _ := newTestAPI(t, Options{Tail: hub})
	ch, _ := sseClient(t, srv.URL+"/api/v1/tail")
	resp, err := http.Get(srv.URL + "/api/v1/tail")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second client over the limit: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	hub.Close()
	select {
	case _, ok := <-ch:
		if ok {
			t.Error("got an event after Close, want the stream to end")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the tail stream")
	}
	rec := httptest.NewRecorder()
	New(Options{Tail: hub}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/tail", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("tail after Close: %d, want 503", rec.Code)
	}
}

// BenchmarkTailPublish is the processor's cost per stored batch of 1,000
// events for the live tail: with no client (a counter add), one unfiltered
// client (every event encoded once and kept in the resume ring), and three
// clients with filters. Compare its ns per event with the store's write cost
// per event for the tail's share of ingest CPU (docs/BENCHMARKS.md).
func BenchmarkTailPublish(b *testing.B) {
	for _, c := range []struct {
		name    string
		filters []tailFilter
	}{
		{"clients=0", nil},
		{"clients=1", []tailFilter{{}}},
		{"clients=3", []tailFilter{{}, {service: "payments"}, {q: "declined"}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			hub := NewTailHub()
			subs := []*tailSub{}
			for _, f := range c.filters {
				s, err := hub.subscribe(f, "")
				if err != nil {
					b.Fatal(err)
				}
				subs = append(subs, s)
			}
			batch := make([]event.Event, 1000)
			size := 0
			for i := range batch {
				batch[i] = tailEvent(services[i%3], levels[i%4], "card declined for order 1234567 after 3 attempts")
				size += len(event.AppendJSON(nil, &batch[i]))
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			var buf []tailItem
			for i := 0; i < b.N; i++ {
				hub.Publish(batch)
				for _, s := range subs { // drain, as the streams would
					buf, _, _ = s.take(buf)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/event")
		})
	}
}

func TestContainsFold(t *testing.T) {
	for _, c := range []struct {
		s, sub string
		want   bool
	}{
		{"Card DECLINED now", "declined", true}, {"card declined", "card declined", true}, {"decline", "declined", false},
		{"", "x", false}, {"anything", "", true}, {"Ünïcode DECLINED", "declined", true}, {"ÜNÏ", "ünï", true}, {"abc", "abd", false},
	} {
		if got := containsFold(c.s, c.sub); got != c.want {
			t.Errorf("containsFold(%q, %q) = %v, want %v", c.s, c.sub, got, c.want)
		}
	}
}
