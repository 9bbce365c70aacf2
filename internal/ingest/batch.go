package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/telemetry"
	"github.com/wirelog/wirelog/internal/transport"
)

// Batch is one request of another wire protocol (the Elasticsearch bulk API,
// Loki push) going through the same gateway as POST /api/v1/logs: the same
// Admission (slots per node, client and tenant; the memory budget),
// authentication, body limits and decompression, record limits and
// encoding, tenant rate limits, producer and metrics. Only the decoding and
// the wording of the answer belong to the protocol's own package:
//
//	b, ref := gw.Begin(w, r, "loki")
//	if ref != nil { answer ref.Code, ref.Message in the protocol's words }
//	defer b.End()
//	for each entry: fill b.Event(), then b.Add(key) or b.Reject(reason)
//	  (either may refuse the whole request: --max-records, the memory budget…)
//	if ref := b.Commit(r.Context()); ref != nil { answer it }
//	answer success; b.SetCode(code)
//
// So every protocol acknowledges only after its events are durable, and its
// rejects show in the same wirelog_ingest_events_total as native ones.
type Batch struct {
	h       *Handler
	req     *request
	ticket  *Ticket
	api     string
	arrival time.Time
	start   time.Time
	code    int
	entries int // added and rejected, for --max-records
}

// Refusal is a whole request refused: the HTTP status to answer, a message
// for the sender, and Retry-After (zero when not to be retried).
type Refusal struct {
	Code       int
	Message    string
	RetryAfter time.Duration
}

func (r *Refusal) Error() string { return fmt.Sprintf("%d %s", r.Code, r.Message) }

// Begin admits a request of protocol api ("elasticsearch", "loki") through
// the gateway's Admission, authenticates it as the native route does, and
// reads the body (gzip or zstd per Content-Encoding) within the body
// limits. On a refusal nothing is held and End need not be called.
func (h *Handler) Begin(w http.ResponseWriter, r *http.Request, api string) (*Batch, *Refusal) {
	ticket, err := h.adm.Enter(r)
	if err != nil {
		h.m.pushback.WithLabelValues("slots").Inc()
		h.m.apiRequests.WithLabelValues(api, "429").Inc()
		w.Header().Set("Connection", "close") // do not wait for the unread body
		return nil, &Refusal{Code: http.StatusTooManyRequests, Message: err.Error(), RetryAfter: h.opts.RetryAfter}
	}
	b := &Batch{h: h, api: api, start: time.Now(), ticket: ticket, req: h.pool.Get().(*request)}
	b.req.ticket = ticket
	if code, msg := h.authenticate(w, r, b.req); code != 0 {
		b.End()
		h.m.apiRequests.WithLabelValues(api, strconv.Itoa(code)).Inc()
		return nil, &Refusal{Code: code, Message: msg}
	}
	if code, msg := h.readBody(w, b.req, r); code != 0 {
		b.End()
		h.m.apiRequests.WithLabelValues(api, strconv.Itoa(code)).Inc()
		return nil, h.bodyRefusal(code, msg)
	}
	h.m.bytes.Add(float64(b.req.body.Len()))
	b.arrival = h.opts.Now()
	b.req.trace = telemetry.RequestTrace(r.Context())
	b.req.out, b.req.offs = b.req.out[:0], b.req.offs[:0]
	b.code = http.StatusOK
	return b, nil
}

// bodyRefusal counts and words a refusal while reading or decoding a body
// as the native route's failBody does: 503 (memory budget) is retried.
func (h *Handler) bodyRefusal(code int, msg string) *Refusal {
	switch code {
	case http.StatusServiceUnavailable:
		h.m.pushback.WithLabelValues("memory").Inc()
		return &Refusal{Code: code, Message: msg, RetryAfter: h.opts.RetryAfter}
	case http.StatusRequestEntityTooLarge:
		h.m.tooLarge.Inc()
	}
	return &Refusal{Code: code, Message: msg}
}

// Body is the decompressed request body; valid until End.
func (b *Batch) Body() []byte { return b.req.body.Bytes() }

// MaxBodyBytes is --max-body-bytes, for protocols that decompress a body
// of their own (Loki's snappy) and must hold it to the same bound.
func (b *Batch) MaxBodyBytes() int64 { return b.h.opts.MaxBodyBytes }

// MaxLineBytes is --max-line-bytes: the bound on one event's source.
func (b *Batch) MaxLineBytes() int { return b.h.opts.MaxLineBytes }

// Arrival is the request's arrival time: the time of an event without one.
func (b *Batch) Arrival() time.Time { return b.arrival }

// Event returns the request's reusable event, reset, for the next entry.
func (b *Batch) Event() *event.Event {
	b.req.ev.Reset()
	return &b.req.ev
}

// Decoder is the request's pooled native JSON decoder.
func (b *Batch) Decoder() *event.Decoder { return &b.req.dec }

// MaxAttributes and MaxDepth are --max-attributes and --max-depth, the
// bounds of one record's attributes and nesting, for the protocol's decoder.
func (b *Batch) MaxAttributes() int { return b.h.opts.MaxAttributes }

// MaxDepth: see MaxAttributes.
func (b *Batch) MaxDepth() int { return b.h.opts.MaxDepth }

// Add encodes the event last returned by Event as a record. key is its
// partition key (events with one key stay in order); nil means the native
// rule: the host, else the service. The authenticated tenant overrides any
// tenant the event named.
//
// The native route's record limits apply: an event over --max-line-bytes
// once encoded is not added and reject says why (answer it per entry; it is
// already counted, reason "too_large"); a request over --max-records or
// --max-request-event-bytes (413) or over the memory budget (503) is
// refused as a whole.
func (b *Batch) Add(key []byte) (reject string, ref *Refusal) {
	if ref := b.next(); ref != nil {
		return "", ref
	}
	h, req := b.h, b.req
	if req.tenant != nil {
		req.ev.Tenant = req.tenant.name
	}
	req.trace.Apply(&req.ev) // an event without a trace joins the request's, as natively
	start := len(req.out)
	if key == nil {
		req.appendRecord()
	} else {
		req.out = event.AppendRecord(req.out, &req.ev, req.format)
		end := len(req.out)
		req.out = append(req.out, key...)
		req.offs = append(req.offs, start, end, len(req.out))
	}
	if n := req.offs[len(req.offs)-2] - start; n > h.opts.MaxLineBytes {
		req.out, req.offs = req.out[:start], req.offs[:len(req.offs)-3]
		b.count("too_large")
		return (&event.LimitError{What: "bytes once encoded", Got: n, Limit: h.opts.MaxLineBytes, Flag: "--max-line-bytes"}).Error(), nil
	}
	if int64(len(req.out)) > h.opts.MaxEventBytes {
		h.m.tooLarge.Inc()
		return "", &Refusal{Code: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("the events of one request encode to more than %d bytes (--max-request-event-bytes); split it", h.opts.MaxEventBytes)}
	}
	if err := req.ticket.Need(int64(req.body.Cap()) + int64(cap(req.out)) + int64(len(req.offs)/3)*recordOverhead); err != nil {
		return "", h.bodyRefusal(admissionStatus(err), err.Error())
	}
	return "", nil
}

// Reject counts one entry the protocol could not use, by reason (a short
// metric label such as "invalid_json" or "unsupported_action"). A refusal
// means the request is over --max-records and is refused as a whole.
func (b *Batch) Reject(reason string) *Refusal {
	b.count(reason)
	return b.next()
}

func (b *Batch) count(reason string) {
	b.h.m.rejected.Inc()
	b.h.m.apiRejects.WithLabelValues(b.api, reason).Inc()
}

// next counts one more entry against --max-records.
func (b *Batch) next() *Refusal {
	b.entries++
	if b.entries > b.h.opts.MaxRecords {
		b.h.m.tooLarge.Inc()
		return &Refusal{Code: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("more than %d records in one request (--max-records); split it", b.h.opts.MaxRecords)}
	}
	return nil
}

// Len is the number of events added so far.
func (b *Batch) Len() int { return len(b.req.offs) / 3 }

// Commit applies the tenant's rate limits and produces the added events,
// returning only once they are durable. A refusal means nothing of the
// request was acknowledged: the sender must resend it all. Commit with no
// events is a no-op.
func (b *Batch) Commit(ctx context.Context) *Refusal {
	h, req := b.h, b.req
	n := b.Len()
	if n == 0 {
		return nil
	}
	if req.tenant != nil {
		code, wait, msg := req.tenant.admit(time.Now(), n, req.body.Len())
		if code != 0 {
			h.m.rateLimited.WithLabelValues(req.tenant.name).Inc()
			return &Refusal{Code: code, Message: msg, RetryAfter: wait}
		}
	}
	req.records(h.opts.Topic, b.arrival)
	if err := h.prod.Produce(ctx, req.recs); err != nil {
		switch {
		case errors.Is(err, transport.ErrBackpressure):
			h.m.pushback.WithLabelValues("backlog").Inc()
			return &Refusal{Code: http.StatusTooManyRequests, Message: "the log is behind its bound; retry after the Retry-After delay", RetryAfter: h.opts.RetryAfter}
		case ctx.Err() != nil:
			return &Refusal{Code: http.StatusServiceUnavailable, Message: "request cancelled before the events were durable; resend", RetryAfter: h.opts.RetryAfter}
		default:
			h.m.pushback.WithLabelValues("unavailable").Inc()
			return &Refusal{Code: http.StatusServiceUnavailable, Message: "the log cannot take writes right now: " + shorten(err.Error()), RetryAfter: h.opts.RetryAfter}
		}
	}
	h.m.accepted.Add(float64(n))
	return nil
}

// SetCode records the status the protocol answered, for
// wirelog_ingest_api_requests_total; End counts it.
func (b *Batch) SetCode(code int) { b.code = code }

// End releases the request's admission ticket and buffers and counts the
// request. The body and events are invalid afterwards.
func (b *Batch) End() {
	if b.req != nil {
		b.h.release(b.req)
		b.req = nil
		if b.code != 0 {
			b.h.m.apiRequests.WithLabelValues(b.api, strconv.Itoa(b.code)).Inc()
			b.h.m.duration.Observe(time.Since(b.start).Seconds())
		}
	}
	if b.ticket != nil {
		b.ticket.Done()
		b.ticket = nil
	}
}

// RetryAfterSeconds renders d as a Retry-After header value (whole seconds,
// at least 1).
func RetryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}
