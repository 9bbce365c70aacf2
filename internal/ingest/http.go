// Package ingest is wirelog's HTTP ingest gateway: POST /api/v1/logs turns a
// body of NDJSON or JSON into normalised log records and answers 202 only
// after the transport made every accepted record durable.
package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fastjson"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/transport"
)

// Options configure the HTTP ingest handler. The zero value of each field
// means its default.
type Options struct {
	// Topic the records are produced to. Default "wirelog.logs".
	Topic string
	// MaxBodyBytes bounds a request body, compressed and decompressed alike,
	// so a small gzip bomb cannot grow memory. Over it: 413. Default 16 MiB.
	MaxBodyBytes int64
	// MaxLineBytes bounds one NDJSON line; a longer line is rejected on its
	// own and the rest of the body is kept. Default 1 MiB.
	MaxLineBytes int
	// MaxConcurrent bounds requests being decoded or waiting for durability
	// at once, which bounds memory at about MaxConcurrent × body size. Over
	// it: 429. Default 256.
	MaxConcurrent int
	// RetryAfter is the Retry-After the gateway sends with 429 and 503.
	// Default 1s.
	RetryAfter time.Duration
	// MaxErrors bounds the per-line errors listed in a response; "rejected"
	// still counts them all. Default 100.
	MaxErrors int
	// Now returns the arrival time of a request. Default time.Now.
	Now func() time.Time
	// Tenants, when set, requires a bearer token on every request and
	// applies per-tenant rate limits (--auth-tokens). Nil: no auth, and the
	// tenant is whatever the event's "tenant" field says.
	Tenants *Tenants
}

func (o *Options) setDefaults() {
	if o.Topic == "" {
		o.Topic = "wirelog.logs"
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 16 << 20
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = 1 << 20
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 256
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = time.Second
	}
	if o.MaxErrors <= 0 {
		o.MaxErrors = 100
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Handler serves POST /api/v1/logs.
type Handler struct {
	prod  transport.Producer
	opts  Options
	slots chan struct{}
	pool  sync.Pool // *request
	m     metrics
}

// NewHandler returns the ingest handler producing to prod.
func NewHandler(prod transport.Producer, opts Options) *Handler {
	opts.setDefaults()
	h := &Handler{prod: prod, opts: opts, slots: make(chan struct{}, opts.MaxConcurrent), m: newMetrics()}
	h.pool.New = func() any { return new(request) }
	return h
}

// Collector exports the gateway's metrics.
func (h *Handler) Collector() prometheus.Collector { return h.m.set() }

// LineError is one rejected line of a body.
type LineError struct {
	Line  int    `json:"line"` // 1-based line of an NDJSON body, or 1-based element of a JSON array
	Error string `json:"error"`
}

// Response is the body of every answer to POST /api/v1/logs.
type Response struct {
	Accepted int         `json:"accepted"`
	Rejected int         `json:"rejected"`
	Errors   []LineError `json:"errors"`
	Message  string      `json:"message,omitempty"` // why the whole request failed, when it did
}

// request holds the buffers one request needs, pooled across requests.
type request struct {
	body   bytes.Buffer
	out    []byte
	offs   []int
	recs   []transport.Record
	dec    event.Decoder
	ev     event.Event
	jp     fastjson.Parser
	elem   []byte
	zr     *zstd.Decoder
	gz     *gzip.Reader
	resp   Response
	tenant *tenant
}

// Pooled buffers beyond this size are dropped so one huge request does not
// pin memory for ever.
const maxPooledBytes = 4 << 20

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := h.serve(w, r)
	h.m.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	h.m.duration.Observe(time.Since(start).Seconds())
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return h.fail(w, http.StatusMethodNotAllowed, "use POST")
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		return h.pushBack(w, http.StatusTooManyRequests, "too many requests in flight; retry after the Retry-After delay")
	}
	ndjson, err := bodyKind(r.Header.Get("Content-Type"))
	if err != nil {
		return h.fail(w, http.StatusUnsupportedMediaType, err.Error())
	}
	req := h.pool.Get().(*request)
	defer h.release(req)
	if code, msg := h.authenticate(w, r, req); code != 0 {
		return h.fail(w, code, msg)
	}
	if code, msg := h.readBody(req, r); code != 0 {
		return h.fail(w, code, msg)
	}
	h.m.bytes.Add(float64(req.body.Len()))
	body := bytes.TrimSpace(req.body.Bytes())
	if len(body) == 0 {
		return h.fail(w, http.StatusBadRequest, "empty body: send NDJSON lines or a JSON object/array")
	}
	if ndjson == kindSniff {
		ndjson = kindNDJSON
		if body[0] == '[' {
			ndjson = kindJSON
		}
	}
	arrival := h.opts.Now()
	req.resp = Response{Errors: req.resp.Errors[:0]}
	req.out, req.offs = req.out[:0], req.offs[:0]
	if ndjson == kindNDJSON {
		h.decodeNDJSON(req, body, arrival)
	} else {
		h.decodeJSON(req, body, arrival)
	}
	h.m.events.WithLabelValues("rejected").Add(float64(req.resp.Rejected))
	if len(req.offs) == 0 {
		req.resp.Message = "no usable event in the body; see errors"
		return h.respond(w, http.StatusBadRequest, &req.resp)
	}
	if code, msg := h.limit(w, req, len(req.offs)/3, req.body.Len()); code != 0 {
		return h.fail(w, code, msg)
	}
	req.records(h.opts.Topic, arrival)
	if err := h.prod.Produce(r.Context(), req.recs); err != nil {
		return h.produceFailed(w, r.Context(), err)
	}
	req.resp.Accepted = len(req.recs)
	h.m.events.WithLabelValues("accepted").Add(float64(req.resp.Accepted))
	return h.respond(w, http.StatusAccepted, &req.resp)
}

type kind int

const (
	kindSniff kind = iota
	kindNDJSON
	kindJSON
)

func bodyKind(ct string) (kind, error) {
	if ct == "" {
		return kindSniff, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, fmt.Errorf("unreadable Content-Type %q: %v", ct, err)
	}
	switch mt {
	case "application/x-ndjson", "application/ndjson", "application/jsonlines", "application/x-jsonlines", "application/jsonl":
		return kindNDJSON, nil
	case "application/json":
		return kindJSON, nil
	}
	return 0, fmt.Errorf("unsupported Content-Type %q: send application/x-ndjson (one JSON object per line) or application/json (an object or an array)", mt)
}

// readBody reads the (possibly compressed) body into req.body, bounded by
// MaxBodyBytes before and after decompression. It returns a status and a
// message when the request must be refused.
func (h *Handler) readBody(req *request, r *http.Request) (int, string) {
	limit := h.opts.MaxBodyBytes
	if r.ContentLength > limit {
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes is over the limit of %d bytes (--max-body-bytes); split it", r.ContentLength, limit)
	}
	raw := http.MaxBytesReader(nil, r.Body, limit)
	var src io.Reader = raw
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		if req.gz == nil {
			req.gz = new(gzip.Reader)
		}
		if err := req.gz.Reset(raw); err != nil {
			return bodyErr(err, limit, "gzip")
		}
		src = req.gz
	case "zstd":
		if req.zr == nil {
			zr, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)*2))
			if err != nil {
				return http.StatusServiceUnavailable, "zstd decoder: " + err.Error()
			}
			req.zr = zr
		}
		if err := req.zr.Reset(raw); err != nil {
			return bodyErr(err, limit, "zstd")
		}
		src = req.zr
	default:
		return http.StatusUnsupportedMediaType, fmt.Sprintf("unsupported Content-Encoding %q: use gzip, zstd or none", enc)
	}
	req.body.Reset()
	n, err := req.body.ReadFrom(io.LimitReader(src, limit+1))
	if err != nil {
		return bodyErr(err, limit, r.Header.Get("Content-Encoding"))
	}
	if n > limit {
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("decompressed body is over the limit of %d bytes (--max-body-bytes); split it", limit)
	}
	return 0, ""
}

func bodyErr(err error, limit int64, enc string) (int, string) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("body is over the limit of %d bytes (--max-body-bytes); split it", limit)
	}
	if enc != "" && enc != "identity" {
		return http.StatusBadRequest, fmt.Sprintf("body is not valid %s: %v", enc, err)
	}
	return http.StatusBadRequest, "reading body: " + err.Error()
}

func (h *Handler) decodeNDJSON(req *request, body []byte, arrival time.Time) {
	line := 0
	for len(body) > 0 {
		line++
		var l []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			l, body = body[:i], body[i+1:]
		} else {
			l, body = body, nil
		}
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		h.decodeOne(req, l, line, arrival)
	}
}

func (h *Handler) decodeJSON(req *request, body []byte, arrival time.Time) {
	if body[0] != '[' {
		h.decodeOne(req, body, 1, arrival)
		return
	}
	v, err := req.jp.ParseBytes(body)
	if err != nil {
		h.reject(req, 1, "invalid JSON array: "+shorten(err.Error()))
		return
	}
	elems, _ := v.Array()
	if len(elems) == 0 {
		h.reject(req, 1, "empty JSON array")
		return
	}
	// Elements are re-serialised and decoded like NDJSON lines: one decode
	// path, one set of rules, at a small cost for the less common form.
	for i, e := range elems {
		req.elem = e.MarshalTo(req.elem[:0])
		h.decodeOne(req, req.elem, i+1, arrival)
	}
}

func (h *Handler) decodeOne(req *request, l []byte, line int, arrival time.Time) {
	if len(l) > h.opts.MaxLineBytes {
		h.reject(req, line, fmt.Sprintf("line of %d bytes is over the limit of %d bytes (--max-line-bytes)", len(l), h.opts.MaxLineBytes))
		return
	}
	if err := req.dec.Decode(l, arrival, &req.ev); err != nil {
		h.reject(req, line, err.Error())
		return
	}
	if req.tenant != nil {
		req.ev.Tenant = req.tenant.name
	}
	req.appendRecord()
}

// appendRecord encodes req.ev and its partition key into req.out. The key
// is the event's host (its service when it has no host), so one source's
// events stay in order on one Kafka partition while many sources spread
// over all of them.
func (req *request) appendRecord() {
	start := len(req.out)
	req.out = event.AppendJSON(req.out, &req.ev)
	end := len(req.out)
	if req.ev.Host != "" {
		req.out = append(req.out, req.ev.Host...)
	} else {
		req.out = append(req.out, req.ev.Service...)
	}
	req.offs = append(req.offs, start, end, len(req.out))
}

// records slices req.out into the transport records of the request.
func (req *request) records(topic string, arrival time.Time) {
	req.recs = req.recs[:0]
	for i := 0; i < len(req.offs); i += 3 {
		rec := transport.Record{Topic: topic, Value: req.out[req.offs[i]:req.offs[i+1]], Timestamp: arrival}
		if req.offs[i+2] > req.offs[i+1] {
			rec.Key = req.out[req.offs[i+1]:req.offs[i+2]]
		}
		req.recs = append(req.recs, rec)
	}
}

func (h *Handler) reject(req *request, line int, msg string) {
	req.resp.Rejected++
	if len(req.resp.Errors) < h.opts.MaxErrors {
		req.resp.Errors = append(req.resp.Errors, LineError{Line: line, Error: msg})
	}
}

// produceFailed maps a transport error to the status a client retries on.
// Nothing of the request is acknowledged, so the client must resend it all.
func (h *Handler) produceFailed(w http.ResponseWriter, ctx context.Context, err error) int {
	switch {
	case errors.Is(err, transport.ErrBackpressure):
		h.m.pushback.WithLabelValues("backlog").Inc()
		return h.pushBack(w, http.StatusTooManyRequests, "the log is behind its bound; retry after the Retry-After delay")
	case ctx.Err() != nil:
		// The client went away or gave up; it saw no 202 and will resend.
		return h.pushBack(w, http.StatusServiceUnavailable, "request cancelled before the events were durable; resend")
	default:
		h.m.pushback.WithLabelValues("unavailable").Inc()
		slog.Warn("ingest: produce failed, answering 503", "err", err)
		return h.pushBack(w, http.StatusServiceUnavailable, "the log cannot take writes right now: "+shorten(err.Error()))
	}
}

func (h *Handler) pushBack(w http.ResponseWriter, code int, msg string) int {
	secs := int((h.opts.RetryAfter + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return h.fail(w, code, msg)
}

func (h *Handler) fail(w http.ResponseWriter, code int, msg string) int {
	return h.respond(w, code, &Response{Errors: []LineError{}, Message: msg})
}

func (h *Handler) respond(w http.ResponseWriter, code int, resp *Response) int {
	if resp.Errors == nil {
		resp.Errors = []LineError{}
	}
	b, _ := json.Marshal(resp)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
	return code
}

// authenticate resolves the request's tenant when auth is on. It returns a
// status and message when the request must be refused.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request, req *request) (int, string) {
	req.tenant = nil
	if h.opts.Tenants == nil {
		return 0, ""
	}
	tn, ok := h.opts.Tenants.lookup(r.Header.Get("Authorization"))
	if !ok {
		h.m.authFailures.Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="wirelog"`)
		return http.StatusUnauthorized, "missing or unknown bearer token (Authorization: Bearer <token> from the --auth-tokens file)"
	}
	req.tenant = tn
	return 0, ""
}

// limit applies the tenant's rate limits to a decoded request.
func (h *Handler) limit(w http.ResponseWriter, req *request, events, bytes int) (int, string) {
	if req.tenant == nil {
		return 0, ""
	}
	code, wait, msg := req.tenant.admit(time.Now(), events, bytes)
	if code == 0 {
		return 0, ""
	}
	h.m.rateLimited.WithLabelValues(req.tenant.name).Inc()
	if wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	}
	return code, msg
}

func (h *Handler) release(req *request) {
	if req.body.Cap() > maxPooledBytes || cap(req.out) > maxPooledBytes {
		return
	}
	for i := range req.recs {
		req.recs[i] = transport.Record{}
	}
	h.pool.Put(req)
}

func shorten(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
