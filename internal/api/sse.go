package api

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wirelog/wirelog/internal/authz"
)

// tailKeys are what tail slots are counted by besides the total: the client
// address and, with auth, the principal's tenant.
func tailKeys(r *http.Request) []string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	keys := []string{"addr:" + host}
	if p, ok := authz.FromContext(r.Context()); ok && !p.Admin {
		keys = append(keys, "tenant:"+p.Tenant)
	}
	return keys
}

// tail streams matching events as server-sent events: each event has an
// "id:" (see TailHub) and a "data:" line with its log-record JSON;
// a client that falls behind its queue reads on from the resume ring, and
// "event: dropped" with {"dropped":N} tells it how many events (at most) the
// ring no longer held; "event: gap" tells a resuming client (Last-Event-ID, which
// browsers send themselves on reconnect) what could not be replayed; comment
// lines keep an idle stream open. Filters: service and level (exact), q
// (case-insensitive substring of the message). max_rate caps the events a
// second the stream sends, keeping the newest of each burst and telling how
// many it skipped ("event: sampled", {"skipped":N}): the dashboard asks for
// 2,000, more than anyone reads, so a 100k events/s ingest does not swamp
// the browser's main thread with messages to parse.
func (s *server) tail(w http.ResponseWriter, r *http.Request) {
	p := newParams(r.URL.RawQuery, queryParams["/api/v1/tail"], s.opts.Now())
	f := tailFilter{service: p.str("service"), level: p.level("level"), q: strings.ToLower(p.str("q")),
		tenant: p.str("tenant"), byTenant: p.has("tenant")}
	if p.err != nil {
		writeParamError(w, p.err)
		return
	}
	sampler := tailSampler{rate: float64(p.maxRate("max_rate")), last: time.Now()}
	sampler.tokens = sampler.rate
	if p.err != nil {
		writeParamError(w, p.err)
		return
	}
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = p.str("last_event_id") // for clients that cannot set headers
	}
	hub := s.opts.Tail
	sub, err := hub.subscribe(f, lastID, tailKeys(r)...)
	switch {
	case errors.Is(err, ErrTooManyTailClients), errors.Is(err, ErrTailClientBusy):
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: err.Error()})
		return
	case err != nil:
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "live tail is shutting down"})
		return
	}
	defer hub.unsubscribe(sub)

	rc := http.NewResponseController(w)
	// A server WriteTimeout would cut the stream; tail lives until the client leaves.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write([]byte(": wirelog live tail\nretry: 2000\n\n")); err != nil {
		return
	}
	var out []byte
	if sub.gap != nil {
		out = append(out, "event: gap\ndata: "...)
		gap, _ := json.Marshal(sub.gap)
		out = append(out, gap...)
		out = append(out, "\n\n"...)
	}
	// The replay is written in slices, so a long one does not sit in one
	// buffer; live events wait in the client's pending queue meanwhile.
	replay := sampler.keep(sub.replay, time.Now())
	out = sampler.appendNotice(out)
	for i, it := range replay {
		out = hub.appendEvent(out, it)
		if len(out) >= 1<<20 || i == len(replay)-1 {
			if _, err := w.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
	}
	sub.replay = nil
	if len(out) > 0 {
		if _, err := w.Write(out); err != nil {
			return
		}
	}
	if err := rc.Flush(); err != nil {
		return
	}
	keepalive := time.NewTicker(tailKeepalive)
	defer keepalive.Stop()
	var batch []tailItem
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			if _, err := w.Write([]byte(": keepalive\n\n")); err != nil {
				return
			}
		case <-sub.notify:
			// What is queued first, then, if the client fell behind, on from
			// the ring a buffer at a time; again until nothing is queued and
			// it is caught up. Queued events always come before the point it
			// fell behind at (Publish queues nothing past it), so taking the
			// queue before each catch-up keeps the order.
			for {
				var behind uint64
				var done bool
				batch, behind, done = sub.take(batch)
				kept := sampler.keep(batch, time.Now())
				out = sampler.appendNotice(out[:0])
				for _, it := range kept {
					out = hub.appendEvent(out, it)
				}
				clear(batch)
				if done {
					w.Write(out)
					rc.Flush()
					return
				}
				if behind != 0 {
					// Only what the ring no longer holds is dropped.
					var lost uint64
					batch, lost = hub.catchUp(sub, behind, batch)
					if lost > 0 {
						out = append(out, "event: dropped\ndata: {\"dropped\":"...)
						out = strconv.AppendUint(out, lost, 10)
						out = append(out, "}\n\n"...)
					}
					kept := sampler.keep(batch, time.Now())
					out = sampler.appendNotice(out)
					for _, it := range kept {
						out = hub.appendEvent(out, it)
					}
					clear(batch)
				}
				if len(out) > 0 {
					if _, err := w.Write(out); err != nil {
						return
					}
				}
				if behind == 0 {
					break
				}
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// appendEvent appends one log event of the stream: its id and its data.
func (h *TailHub) appendEvent(out []byte, it tailItem) []byte {
	out = append(out, "id: "...)
	out = h.appendID(out, it.seq)
	out = append(out, "\ndata: "...)
	out = append(out, it.json...)
	return append(out, '\n', '\n')
}

// tailSampler keeps a stream under rate events a second (0: no cap), a
// token bucket one second deep that keeps the newest events of a burst.
type tailSampler struct {
	rate, tokens float64
	last         time.Time
	skipped      uint64
}

func (s *tailSampler) keep(items []tailItem, now time.Time) []tailItem {
	if s.rate == 0 {
		return items
	}
	s.tokens = min(s.rate, s.tokens+now.Sub(s.last).Seconds()*s.rate)
	s.last = now
	n := min(len(items), int(s.tokens))
	s.tokens -= float64(n)
	s.skipped += uint64(len(items) - n)
	return items[len(items)-n:]
}

// appendNotice appends "event: sampled" when events were skipped since the
// last notice.
func (s *tailSampler) appendNotice(out []byte) []byte {
	if s.skipped == 0 {
		return out
	}
	out = append(out, "event: sampled\ndata: {\"skipped\":"...)
	out = strconv.AppendUint(out, s.skipped, 10)
	s.skipped = 0
	return append(out, "}\n\n"...)
}
