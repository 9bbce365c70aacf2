package api

import (
	"errors"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirelog/wirelog/internal/event"
)

// Tail defaults.
const (
	// DefaultTailBuffer is how many events one tail client may have waiting;
	// past it the client's events are dropped and it is told how many.
	DefaultTailBuffer = 4096
	// DefaultMaxTailClients bounds concurrent tail clients; more get 503.
	DefaultMaxTailClients = 64
	// DefaultMaxTailPerClient bounds the tail streams of one client address
	// (one tenant may hold half of MaxClients), so a stranger cannot hold
	// every slot; more get 503.
	DefaultMaxTailPerClient = 8
)

// ErrTooManyTailClients means the hub has MaxClients subscribers already.
var ErrTooManyTailClients = errors.New("api: too many tail clients, retry later")

// ErrTailClientBusy means this client (address or tenant) has
// MaxPerClient tail streams open already.
var ErrTailClientBusy = errors.New("api: this client has the most tail streams one client may open; close one or retry later")

// errHubClosed ends the tail streams when the hub is closed.
var errHubClosed = errors.New("api: tail hub closed")

// TailOptions configures a TailHub; zero fields take the defaults above.
type TailOptions struct {
	Buffer       int
	MaxClients   int
	MaxPerClient int
}

// TailHub fans stored events out to live tail clients. Tail is a view, not
// an acknowledgement path: Publish never blocks, and a slow client loses
// events (and is told how many) instead of slowing the processor.
type TailHub struct {
	opts TailOptions

	mu     sync.RWMutex
	subs   map[*tailSub]struct{}
	per    map[string]int // open streams per client key
	closed bool

	clients   prometheus.Gauge
	published prometheus.Counter
	dropped   prometheus.Counter
}

// NewTailHub returns an empty hub with the default limits.
func NewTailHub() *TailHub { return NewTailHubOptions(TailOptions{}) }

// NewTailHubOptions returns an empty hub with the given limits.
func NewTailHubOptions(opts TailOptions) *TailHub {
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultTailBuffer
	}
	if opts.MaxClients <= 0 {
		opts.MaxClients = DefaultMaxTailClients
	}
	if opts.MaxPerClient <= 0 {
		opts.MaxPerClient = DefaultMaxTailPerClient
	}
	return &TailHub{
		opts: opts,
		subs: make(map[*tailSub]struct{}),
		per:  make(map[string]int),
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wirelog_tail_clients", Help: "Connected live tail (server-sent events) clients.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_tail_events_sent_total", Help: "Events queued to tail clients (one per event per client).",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_tail_events_dropped_total", Help: "Events a slow tail client missed because its buffer was full.",
		}),
	}
}

// tailFilter selects the events one client sees; empty fields match all.
type tailFilter struct {
	service  string
	level    string
	q        string // lower-cased
	tenant   string
	byTenant bool // tenant was given (auth pins it for tenant tokens)
}

func (f *tailFilter) match(e *event.Event) bool {
	if f.byTenant && e.Tenant != f.tenant {
		return false
	}
	if f.service != "" && e.Service != f.service {
		return false
	}
	if f.level != "" && e.Level.String() != f.level {
		return false
	}
	return f.q == "" || containsFold(e.Message, f.q)
}

// containsFold reports whether lowerSub (already lower-cased) occurs in s,
// ignoring case, without allocating for ASCII messages (the common case).
func containsFold(s, lowerSub string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return strings.Contains(strings.ToLower(s), lowerSub)
		}
	}
	n := len(lowerSub)
	for i := 0; i+n <= len(s); i++ {
		if asciiEqualFold(s[i:i+n], lowerSub) {
			return true
		}
	}
	return false
}

func asciiEqualFold(s, lower string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

type tailSub struct {
	filter tailFilter
	keys   []string
	max    int
	notify chan struct{} // capacity 1: "pending has something"

	mu      sync.Mutex
	pending [][]byte // encoded events, oldest first
	dropped int64
	done    bool // the hub closed
}

// take returns what is waiting and how many events were dropped since the
// last take.
func (s *tailSub) take(buf [][]byte) ([][]byte, int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append(buf[:0], s.pending...)
	clear(s.pending)
	s.pending = s.pending[:0]
	d := s.dropped
	s.dropped = 0
	return out, d, s.done
}

func (h *TailHub) subscribe(f tailFilter, keys ...string) (*tailSub, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errHubClosed
	}
	if len(h.subs) >= h.opts.MaxClients {
		return nil, ErrTooManyTailClients
	}
	for _, k := range keys {
		limit := h.opts.MaxPerClient
		if strings.HasPrefix(k, "tenant:") {
			// A tenant is many people: half the streams, not one address's share.
			limit = max(limit, h.opts.MaxClients/2)
		}
		if h.per[k] >= limit {
			return nil, ErrTailClientBusy
		}
	}
	for _, k := range keys {
		h.per[k]++
	}
	s := &tailSub{filter: f, keys: keys, max: h.opts.Buffer, notify: make(chan struct{}, 1)}
	h.subs[s] = struct{}{}
	h.clients.Inc()
	return s, nil
}

func (h *TailHub) unsubscribe(s *tailSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		for _, k := range s.keys {
			if h.per[k]--; h.per[k] <= 0 {
				delete(h.per, k)
			}
		}
		h.clients.Dec()
	}
}

// Publish offers events to every tail client whose filter matches. The
// processor calls it after each stored batch; it copies what it needs (the
// events may be reused afterwards) and never blocks on a client.
func (h *TailHub) Publish(events []event.Event) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if len(h.subs) == 0 || len(events) == 0 {
		return
	}
	// Each event is encoded at most once, into one shared buffer; clients
	// get read-only slices of it.
	var buf []byte
	var spans [][2]int
	encoded := make([]bool, len(events))
	for range events {
		spans = append(spans, [2]int{})
	}
	var sent, dropped int
	for s := range h.subs {
		s.mu.Lock()
		added := false
		for i := range events {
			e := &events[i]
			if !s.filter.match(e) {
				continue
			}
			if len(s.pending) >= s.max {
				s.dropped++
				dropped++
				continue
			}
			if !encoded[i] {
				start := len(buf)
				buf = event.AppendJSON(buf, e)
				spans[i] = [2]int{start, len(buf)}
				encoded[i] = true
			}
			// Slices taken before buf grew still point at the old array,
			// which holds the same bytes: fine to share.
			s.pending = append(s.pending, buf[spans[i][0]:spans[i][1]:spans[i][1]])
			sent++
			added = true
		}
		s.mu.Unlock()
		if added {
			select {
			case s.notify <- struct{}{}:
			default:
			}
		}
	}
	h.published.Add(float64(sent))
	h.dropped.Add(float64(dropped))
}

// Close ends every tail stream (call it before http.Server.Shutdown, which
// does not end long-lived responses itself) and refuses new clients.
func (h *TailHub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		s.mu.Lock()
		s.done = true
		s.mu.Unlock()
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

// Collector returns the hub's metrics (wirelog_tail_*), for the caller to register.
func (h *TailHub) Collector() prometheus.Collector { return tailCollector{h} }

type tailCollector struct{ h *TailHub }

func (c tailCollector) Describe(ch chan<- *prometheus.Desc) {
	c.h.clients.Describe(ch)
	c.h.published.Describe(ch)
	c.h.dropped.Describe(ch)
}

func (c tailCollector) Collect(ch chan<- prometheus.Metric) {
	c.h.clients.Collect(ch)
	c.h.published.Collect(ch)
	c.h.dropped.Collect(ch)
}
