package api

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirelog/wirelog/internal/event"
)

// TailHub fans stored events out to live-tail subscribers as server-sent
// events. Tail is a view, not an acknowledgement path: each subscriber has a
// bounded buffer, and a subscriber too slow to keep up is told how many
// events it missed instead of slowing the processor down.
type TailHub struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool

	subsGauge prometheus.Gauge
	dropped   prometheus.Counter
}

type subscriber struct {
	ch      chan []byte // encoded SSE "data:" payloads
	dropped int64       // guarded by TailHub.mu
	service string
	level   event.Level
	q       string
}

// subscriberBuffer bounds the events queued for one client.
const subscriberBuffer = 1024

// NewTailHub returns an empty hub.
func NewTailHub() *TailHub {
	return &TailHub{
		subs: make(map[*subscriber]struct{}),
		subsGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wirelog_tail_subscribers", Help: "Live-tail clients connected.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_tail_dropped_events_total", Help: "Events not sent to a live-tail client that was too slow (the events are stored; only the view skipped them).",
		}),
	}
}

// Collector exports the hub's metrics.
func (h *TailHub) Collector() prometheus.Collector { return collectors{h.subsGauge, h.dropped} }

type collectors []prometheus.Collector

func (c collectors) Describe(ch chan<- *prometheus.Desc) {
	for _, x := range c {
		x.Describe(ch)
	}
}
func (c collectors) Collect(ch chan<- prometheus.Metric) {
	for _, x := range c {
		x.Collect(ch)
	}
}

// Publish offers stored events to every subscriber whose filter matches. It
// never blocks. The events may be reused after it returns.
func (h *TailHub) Publish(events []event.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) == 0 {
		return
	}
	var buf []byte
	for i := range events {
		e := &events[i]
		buf = buf[:0]
		for s := range h.subs {
			if !s.match(e) {
				continue
			}
			if len(buf) == 0 {
				buf = event.AppendJSON(buf, e)
			}
			select {
			case s.ch <- append([]byte(nil), buf...):
			default:
				s.dropped++
				h.dropped.Inc()
			}
		}
	}
}

func (s *subscriber) match(e *event.Event) bool {
	if s.service != "" && e.Service != s.service {
		return false
	}
	if s.level != event.LevelUnknown && e.Level < s.level {
		return false
	}
	return s.q == "" || strings.Contains(e.Message, s.q)
}

// Close ends every subscription (at shutdown).
func (h *TailHub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		close(s.ch)
		delete(h.subs, s)
	}
}

// ServeHTTP streams events as text/event-stream. Filters: service (exact),
// level (this level and above), q (substring of message).
func (h *TailHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s := &subscriber{ch: make(chan []byte, subscriberBuffer), service: q.Get("service"), q: q.Get("q")}
	if l := q.Get("level"); l != "" {
		lv, ok := event.ParseLevel(l)
		if !ok {
			badParam(w, "level", fmt.Errorf("unknown level %q (want trace, debug, info, warn, error or fatal)", l))
			return
		}
		s.level = lv
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeJSON(w, http.StatusInternalServerError, apiError{Error: "streaming unsupported"})
		return
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "shutting down"})
		return
	}
	h.subs[s] = struct{}{}
	h.subsGauge.Inc()
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		if _, ok := h.subs[s]; ok {
			delete(h.subs, s)
		}
		h.mu.Unlock()
		h.subsGauge.Dec()
	}()

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": wirelog live tail\n\n")
	fl.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	var reported int64
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
			fl.Flush()
		case b, ok := <-s.ch:
			if !ok {
				return
			}
			h.mu.Lock()
			dropped := s.dropped
			h.mu.Unlock()
			if dropped > reported {
				fmt.Fprintf(w, "event: dropped\ndata: {\"dropped\":%d}\n\n", dropped-reported)
				reported = dropped
			}
			w.Write([]byte("data: "))
			w.Write(b)
			w.Write([]byte("\n\n"))
			// Flush once the queue is drained, not per event.
			if len(s.ch) == 0 {
				fl.Flush()
			}
		}
	}
}
