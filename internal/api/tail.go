package api

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirelog/wirelog/internal/event"
)

// Tail defaults.
const (
	// DefaultTailBuffer is how many events one tail client may have queued;
	// past it the client's stream catches up from the resume ring (a
	// processor batch can hold more than this), and only what the ring no
	// longer holds is dropped, with a notice of how many.
	DefaultTailBuffer = 4096
	// DefaultMaxTailClients bounds concurrent tail clients; more get 503.
	DefaultMaxTailClients = 64
	// DefaultMaxTailPerClient bounds the tail streams of one client address
	// (one tenant may hold half of MaxClients), so a stranger cannot hold
	// every slot; more get 503.
	DefaultMaxTailPerClient = 8
	// DefaultTailResumeEvents and DefaultTailResumeBytes bound the ring of
	// recent events a reconnecting client (Last-Event-ID) is replayed from:
	// the oldest go first when either is reached. 32 MiB holds minutes at a
	// few thousand events/s and about a second at 100k/s; older gaps get a
	// gap notice instead.
	DefaultTailResumeEvents = 1 << 18
	DefaultTailResumeBytes  = 32 << 20
	// DefaultTailResumeWindow is how long the ring keeps recording after the
	// last client left, so a browser whose connection dropped can resume.
	// With no client for longer, the ring is let go and publishing costs
	// one counter add per batch.
	DefaultTailResumeWindow = 2 * time.Minute
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
	ResumeEvents int
	ResumeBytes  int
	ResumeWindow time.Duration
	Now          func() time.Time // for tests; time.Now when nil
}

// TailHub fans stored events out to live tail clients. Tail is a view, not
// an acknowledgement path: Publish never blocks, and a slow client loses
// events (and is told how many) instead of slowing the processor.
//
// Every published event gets the next number of a sequence that starts at
// 1 when the hub is made; its SSE id is "<epoch>.<seq>", the epoch telling
// one hub (one server process) from the next. While clients are connected
// (and DefaultTailResumeWindow after the last left) the hub keeps the recent
// events in a ring, so a client reconnecting with Last-Event-ID gets exactly
// the events after that id that match its filter: no gap, no duplicate.
// When the ring no longer holds them, or the id is from another process, the
// client is told with an "event: gap" notice first.
type TailHub struct {
	opts  TailOptions
	epoch string

	// mu orders Publish against subscribe: a resuming client's replay
	// (from the ring) and its live events (from Publish) neither overlap nor
	// leave a hole.
	mu       sync.Mutex
	subs     map[*tailSub]struct{}
	per      map[string]int // open streams per client key
	closed   bool
	seq      uint64    // the last event's sequence number
	ring     tailRing  // recent events, while recording
	lastLeft time.Time // when the last client left (zero: never had one, or has one)

	clients   prometheus.Gauge
	published prometheus.Counter
	dropped   prometheus.Counter
	resumed   *prometheus.CounterVec
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
	if opts.ResumeEvents <= 0 {
		opts.ResumeEvents = DefaultTailResumeEvents
	}
	if opts.ResumeBytes <= 0 {
		opts.ResumeBytes = DefaultTailResumeBytes
	}
	if opts.ResumeWindow <= 0 {
		opts.ResumeWindow = DefaultTailResumeWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &TailHub{
		opts:  opts,
		epoch: strconv.FormatInt(opts.Now().UnixNano(), 36),
		subs:  make(map[*tailSub]struct{}),
		per:   make(map[string]int),
		ring:  tailRing{maxEvents: opts.ResumeEvents, maxBytes: opts.ResumeBytes},
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wirelog_tail_clients", Help: "Connected live tail (server-sent events) clients.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_tail_events_sent_total", Help: "Events queued to tail clients, or read by them from the resume ring (one per event per client).",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_tail_events_dropped_total", Help: "Events a slow tail client missed: its queue was full and the resume ring no longer held them (an upper bound: counted over every filter).",
		}),
		resumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_tail_resumes_total",
			Help: "Tail clients that reconnected with Last-Event-ID, by outcome: replayed (nothing missed), expired (older than the resume ring), restarted (an id from another server process).",
		}, []string{"outcome"}),
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

func (f *tailFilter) match(e *tailEntry) bool {
	if f.byTenant && e.tenant != f.tenant {
		return false
	}
	if f.service != "" && e.service != f.service {
		return false
	}
	if f.level != "" && e.level.String() != f.level {
		return false
	}
	return f.q == "" || containsFold(e.message, f.q)
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

// tailEntry is one published event as the tail keeps it: its encoded form
// and the fields filters look at, all views into one per-batch buffer that
// is never written again (the processor reuses its events, so nothing may
// point into them).
type tailEntry struct {
	seq                      uint64
	level                    event.Level
	tenant, service, message string
	json                     []byte
}

// tailItem is what a client's stream writes: the id's sequence and the data.
type tailItem struct {
	seq  uint64
	json []byte
}

// tailRing holds the most recent entries with contiguous sequence numbers,
// bounded in count and bytes.
type tailRing struct {
	maxEvents, maxBytes int
	buf                 []tailEntry // circular, grown up to maxEvents
	start, n, bytes     int
	recording           bool
}

func (r *tailRing) first(next uint64) uint64 {
	if r.n == 0 {
		return next
	}
	return r.buf[r.start].seq
}

func (r *tailRing) push(e tailEntry) {
	if r.n == len(r.buf) && len(r.buf) < r.maxEvents {
		grown := make([]tailEntry, min(max(2*len(r.buf), 1024), r.maxEvents))
		for i := 0; i < r.n; i++ {
			grown[i] = r.buf[(r.start+i)%len(r.buf)]
		}
		r.buf, r.start = grown, 0
	}
	size := len(e.json) + len(e.tenant) + len(e.service) + len(e.message)
	for r.n > 0 && (r.n == len(r.buf) || r.bytes+size > r.maxBytes) {
		old := &r.buf[r.start]
		r.bytes -= len(old.json) + len(old.tenant) + len(old.service) + len(old.message)
		*old = tailEntry{}
		r.start = (r.start + 1) % len(r.buf)
		r.n--
	}
	r.buf[(r.start+r.n)%len(r.buf)] = e
	r.n++
	r.bytes += size
}

// since appends to dst the entries after seq that f matches.
func (r *tailRing) since(dst []tailItem, seq uint64, f *tailFilter) []tailItem {
	if r.n == 0 {
		return dst
	}
	from := 0
	if first := r.buf[r.start].seq; seq >= first {
		from = int(seq - first + 1)
	}
	for i := from; i < r.n; i++ {
		e := &r.buf[(r.start+i)%len(r.buf)]
		if f.match(e) {
			dst = append(dst, tailItem{e.seq, e.json})
		}
	}
	return dst
}

// from appends to dst up to max entries from seq on that f matches, and
// returns the sequence number to go on from.
func (r *tailRing) from(dst []tailItem, seq uint64, f *tailFilter, max int) ([]tailItem, uint64) {
	if r.n == 0 {
		return dst, seq
	}
	first := r.buf[r.start].seq
	if seq < first {
		seq = first
	}
	for i := int(seq - first); i < r.n; i++ {
		e := &r.buf[(r.start+i)%len(r.buf)]
		if f.match(e) {
			if len(dst) == max {
				return dst, e.seq
			}
			dst = append(dst, tailItem{e.seq, e.json})
		}
	}
	return dst, first + uint64(r.n)
}

func (r *tailRing) reset() {
	*r = tailRing{maxEvents: r.maxEvents, maxBytes: r.maxBytes}
}

// tailGap says what a resuming client cannot be replayed: Missed events
// (of every filter; 0 when unknown) and why.
type tailGap struct {
	Reason string `json:"reason"` // "expired" or "restarted"
	Missed uint64 `json:"missed,omitempty"`
}

type tailSub struct {
	filter tailFilter
	keys   []string
	max    int
	notify chan struct{} // capacity 1: "pending has something"
	// gap and replay are what a resuming client gets first; set once by
	// subscribe, read by the stream alone.
	gap    *tailGap
	replay []tailItem

	mu      sync.Mutex
	pending []tailItem // encoded events, oldest first
	// behind is the first sequence number not queued because pending was
	// full (0: none): from there the stream reads the ring (catchUp) until
	// it has caught up, and Publish queues nothing meanwhile, so order holds.
	behind uint64
	done   bool // the hub closed
}

// take returns what is queued, and where the client fell behind (0: it
// has not).
func (s *tailSub) take(buf []tailItem) ([]tailItem, uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append(buf[:0], s.pending...)
	clear(s.pending)
	s.pending = s.pending[:0]
	return out, s.behind, s.done
}

// catchUp returns up to the client's buffer of the events it matches from
// seq on, out of the ring, and how many events (of every filter) the ring
// no longer held. When that reaches the newest event, the client is caught
// up: Publish queues for it again, with nothing skipped (the hub's lock
// holds Publish off meanwhile).
func (h *TailHub) catchUp(s *tailSub, seq uint64, buf []tailItem) ([]tailItem, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var lost uint64
	if first := h.ring.first(h.seq + 1); seq < first {
		lost = first - seq
		seq = first
	}
	out, next := h.ring.from(buf[:0], seq, &s.filter, s.max)
	s.mu.Lock()
	if next > h.seq {
		s.behind = 0
	} else {
		s.behind = next
	}
	s.mu.Unlock()
	if lost > 0 {
		h.dropped.Add(float64(lost))
	}
	h.published.Add(float64(len(out)))
	return out, lost
}

// eventID is the SSE id of the event numbered seq.
func (h *TailHub) appendID(dst []byte, seq uint64) []byte {
	dst = append(dst, h.epoch...)
	dst = append(dst, '.')
	return strconv.AppendUint(dst, seq, 10)
}

// parseID splits a Last-Event-ID; ok is false when it is not one of this
// hub's ids (another process, or not an id at all).
func (h *TailHub) parseID(id string) (uint64, bool) {
	epoch, seq, found := strings.Cut(id, ".")
	if !found || epoch != h.epoch {
		return 0, false
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	return n, err == nil
}

// subscribe registers a client. With lastID (its Last-Event-ID) it also
// gets, atomically with the registration, the events after that id still
// in the ring, or a gap notice.
func (h *TailHub) subscribe(f tailFilter, lastID string, keys ...string) (*tailSub, error) {
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
	if lastID != "" {
		h.resume(s, lastID)
	}
	h.subs[s] = struct{}{}
	h.lastLeft = time.Time{}
	h.ring.recording = true
	h.clients.Inc()
	return s, nil
}

// resume fills s.gap and s.replay for a client that last saw lastID.
func (h *TailHub) resume(s *tailSub, lastID string) {
	last, ok := h.parseID(lastID)
	switch {
	case !ok || last > h.seq:
		s.gap = &tailGap{Reason: "restarted"}
		h.resumed.WithLabelValues("restarted").Inc()
		return
	case !h.ring.recording && last < h.seq:
		s.gap = &tailGap{Reason: "expired", Missed: h.seq - last}
		h.resumed.WithLabelValues("expired").Inc()
		return
	}
	if first := h.ring.first(h.seq + 1); last+1 < first {
		s.gap = &tailGap{Reason: "expired", Missed: first - last - 1}
		h.resumed.WithLabelValues("expired").Inc()
	} else {
		h.resumed.WithLabelValues("replayed").Inc()
	}
	s.replay = h.ring.since(nil, last, &s.filter)
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
		if len(h.subs) == 0 {
			h.lastLeft = h.opts.Now()
		}
	}
}

// Publish offers events to every tail client whose filter matches. The
// processor calls it after each stored batch; it copies what it needs (the
// events may be reused afterwards) and never blocks on a client.
func (h *TailHub) Publish(events []event.Event) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	first := h.seq + 1
	h.seq += uint64(len(events))
	if h.ring.recording && len(h.subs) == 0 && h.opts.Now().Sub(h.lastLeft) > h.opts.ResumeWindow {
		// Nobody came back: let the ring's memory go. A client resuming
		// later is told what it missed.
		h.ring.reset()
	}
	if !h.ring.recording {
		return
	}
	// Each event is encoded once, with the fields filters read, into one
	// buffer that is never written again; clients and the ring share views
	// of it.
	// Sized up front: growing it by append copied it over and over (a
	// quarter of Publish's time).
	size := 0
	for i := range events {
		e := &events[i]
		size += 160 + 2*(len(e.Message)+len(e.Service)+len(e.Tenant)) + len(e.Host) + len(e.TraceID) + len(e.SpanID) + len(e.Attrs)
	}
	buf := make([]byte, 0, size)
	spans := make([][4]int, len(events)) // ends of json, tenant, service, message
	for i := range events {
		e := &events[i]
		buf = event.AppendJSON(buf, e)
		spans[i][0] = len(buf)
		buf = append(buf, e.Tenant...)
		spans[i][1] = len(buf)
		buf = append(buf, e.Service...)
		spans[i][2] = len(buf)
		buf = append(buf, e.Message...)
		spans[i][3] = len(buf)
	}
	view := func(a, b int) string {
		if a == b {
			return ""
		}
		return unsafe.String(&buf[a], b-a)
	}
	entries := make([]tailEntry, len(events))
	start := 0
	for i := range events {
		sp := spans[i]
		entries[i] = tailEntry{seq: first + uint64(i), level: events[i].Level,
			json: buf[start:sp[0]:sp[0]], tenant: view(sp[0], sp[1]), service: view(sp[1], sp[2]), message: view(sp[2], sp[3])}
		h.ring.push(entries[i])
		start = sp[3]
	}
	var sent int
	for s := range h.subs {
		s.mu.Lock()
		added := false
		for i := range entries {
			if s.behind != 0 {
				break // the stream reads the rest from the ring
			}
			e := &entries[i]
			if !s.filter.match(e) {
				continue
			}
			if len(s.pending) >= s.max {
				s.behind = e.seq
				added = true
				break
			}
			s.pending = append(s.pending, tailItem{e.seq, e.json})
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
	c.h.resumed.Describe(ch)
}

func (c tailCollector) Collect(ch chan<- prometheus.Metric) {
	c.h.clients.Collect(ch)
	c.h.published.Collect(ch)
	c.h.dropped.Collect(ch)
	c.h.resumed.Collect(ch)
}
