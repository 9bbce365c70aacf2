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
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fastjson"

	"github.com/wirelog/wirelog/internal/authz"
	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/telemetry"
	"github.com/wirelog/wirelog/internal/transport"
)

// Options configure the HTTP ingest handler. The zero value of each field
// means its default (the constants in limits.go).
type Options struct {
	// Topic the records are produced to. Default "wirelog.logs".
	Topic string
	// MaxBodyBytes bounds a request body, compressed and decompressed alike,
	// so a small gzip bomb cannot grow memory. Over it: 413.
	MaxBodyBytes int64
	// MaxLineBytes bounds one record: an NDJSON line as sent and every
	// record's encoded form; a longer record is rejected on its own and the
	// rest of the body is kept.
	MaxLineBytes int
	// MaxAttributes, MaxDepth bound one record's attributes and nesting.
	MaxAttributes, MaxDepth int
	// MaxRecords bounds the records of one request. Over it: 413.
	MaxRecords int
	// MaxEventBytes bounds the encoded events of one request. Over it: 413.
	MaxEventBytes int64
	// MaxDecompressionRatio bounds decompressed/compressed body size.
	MaxDecompressionRatio int
	// MaxConcurrent bounds requests being decoded or waiting for durability
	// at once. Over it: 429.
	MaxConcurrent int
	// MaxPerClient bounds requests in flight per client address and per
	// token. Over it: 429.
	MaxPerClient int
	// MemoryBudget bounds the bytes all in-flight requests hold together.
	// Over it: 503.
	MemoryBudget int64
	// BodyTimeout bounds reading one body; MinBodyRate (bytes/s) is the
	// slowest upload accepted after a short grace. Over either: 408.
	BodyTimeout time.Duration
	MinBodyRate int64
	// RetryAfter is the Retry-After the gateway sends with 429 and 503.
	// Default 1s.
	RetryAfter time.Duration
	// MaxErrors bounds the per-line errors listed in a response; "rejected"
	// still counts them all. Default 100.
	MaxErrors int
	// Now returns the arrival time of a request. Default time.Now.
	Now func() time.Time
	// Tenants, when set, requires a bearer token on every request and
	// applies per-tenant rate limits (--auth-tokens). Nil: no auth, and
	// events carry the tenant "" (a "tenant" field is kept as an attribute).
	Tenants *Tenants
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client (--trusted-proxies); the client's address is stored on every
	// event as client.address (and client.port when known).
	TrustedProxies []netip.Prefix
	// Record is the form events take in the log: event.RecordJSON (the
	// zero value) or event.RecordBinary (--ingest-record-format,
	// ResolveRecordFormat).
	Record event.RecordFormat
}

func (o *Options) limits() Limits {
	return Limits{MaxBodyBytes: o.MaxBodyBytes, MaxLineBytes: o.MaxLineBytes, MaxAttributes: o.MaxAttributes, MaxDepth: o.MaxDepth,
		MaxRecords: o.MaxRecords, MaxEventBytes: o.MaxEventBytes, MaxDecompressionRatio: o.MaxDecompressionRatio}
}

// Validate checks the options agree with each other; errors name the flags.
func (o *Options) Validate() error {
	l := o.limits()
	budget := o.MemoryBudget
	if budget <= 0 {
		budget = DefaultMemoryBudget
	}
	return l.Validate(budget)
}

func (o *Options) setDefaults() {
	if o.Topic == "" {
		o.Topic = "wirelog.logs"
	}
	l := o.limits()
	l.setDefaults()
	o.MaxBodyBytes, o.MaxLineBytes, o.MaxAttributes, o.MaxDepth = l.MaxBodyBytes, l.MaxLineBytes, l.MaxAttributes, l.MaxDepth
	o.MaxRecords, o.MaxEventBytes, o.MaxDecompressionRatio = l.MaxRecords, l.MaxEventBytes, l.MaxDecompressionRatio
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.MaxPerClient <= 0 {
		o.MaxPerClient = DefaultMaxPerClient
	}
	if o.MemoryBudget <= 0 {
		o.MemoryBudget = DefaultMemoryBudget
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.MinBodyRate <= 0 {
		o.MinBodyRate = DefaultMinBodyRate
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
	prod transport.Producer
	opts Options
	adm  *Admission
	pool sync.Pool // *request
	m    metrics
}

// NewHandler returns the ingest handler producing to prod.
func NewHandler(prod transport.Producer, opts Options) *Handler {
	opts.setDefaults()
	h := &Handler{prod: prod, opts: opts, m: newMetrics(),
		adm: NewAdmission(opts.MaxConcurrent, opts.MaxPerClient, opts.MemoryBudget, opts.limits())}
	h.adm.proxies = opts.TrustedProxies
	h.pool.New = func() any {
		req := new(request)
		req.format = opts.Record
		req.dec.MaxAttributes, req.dec.MaxDepth = opts.MaxAttributes, opts.MaxDepth
		return req
	}
	h.m.budgetInUse = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "wirelog_ingest_memory_in_use_bytes",
		Help: "Bytes of the in-flight memory budget (--ingest-memory-budget) held by requests being read, decoded or made durable.",
	}, func() float64 { return float64(h.adm.InUse()) })
	return h
}

// Admission is the handler's admission control (slots and memory budget),
// for other ingest routes that must share it.
func (h *Handler) Admission() *Admission { return h.adm }

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
	body         bytes.Buffer
	out          []byte
	offs         []int
	recs         []transport.Record
	dec          event.Decoder
	format       event.RecordFormat
	ev           event.Event
	jp           fastjson.Parser
	elem         []byte
	zr           *zstd.Decoder
	gz           *gzip.Reader
	resp         Response
	tenant       *tenant
	ticket       *Ticket
	limitRejects int               // rejections for a limit (413 when nothing else is wrong)
	trace        telemetry.Inherit // the request's trace, for events sent without one
	// client is the sender's "client.address"/"client.port" JSON members,
	// added to every event of the request.
	client, attrs []byte
}

// Pooled buffers beyond this size are dropped so one huge request does not
// pin memory for ever.
const maxPooledBytes = 4 << 20

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := h.serve(w, r)
	h.m.request(code)
	telemetry.Observe(r.Context(), h.m.duration, time.Since(start).Seconds())
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return h.fail(w, http.StatusMethodNotAllowed, "use POST")
	}
	ticket, err := h.adm.Enter(r)
	if err != nil {
		h.m.pushback.WithLabelValues("slots").Inc()
		w.Header().Set("Connection", "close") // do not wait for the unread body
		return h.pushBack(w, http.StatusTooManyRequests, err.Error())
	}
	defer ticket.Done()
	ndjson, err := bodyKind(r.Header.Get("Content-Type"))
	if err != nil {
		return h.fail(w, http.StatusUnsupportedMediaType, err.Error())
	}
	req := h.pool.Get().(*request)
	defer h.release(req)
	req.ticket = ticket
	if code, msg := h.authenticate(w, r, req); code != 0 {
		return h.fail(w, code, msg)
	}
	if code, msg := h.readBody(w, req, r); code != 0 {
		return h.failBody(w, code, msg)
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
	req.trace = telemetry.RequestTrace(r.Context())
	req.client = event.AppendClientAddr(req.client[:0], ClientAddr(r, h.opts.TrustedProxies))
	req.resp = Response{Errors: req.resp.Errors[:0]}
	req.out, req.offs = req.out[:0], req.offs[:0]
	req.limitRejects = 0
	if ndjson == kindNDJSON {
		err = h.decodeNDJSON(req, body, arrival)
	} else {
		err = h.decodeJSON(req, body, arrival)
	}
	if err != nil {
		return h.failBody(w, admissionStatus(err), err.Error())
	}
	h.m.rejected.Add(float64(req.resp.Rejected))
	if len(req.offs) == 0 {
		req.resp.Message = "no usable event in the body; see errors"
		code := http.StatusBadRequest
		if req.limitRejects == req.resp.Rejected {
			code = http.StatusRequestEntityTooLarge
		}
		return h.respond(w, code, &req.resp)
	}
	if code, msg := h.limit(w, req, len(req.offs)/3, req.body.Len()); code != 0 {
		return h.fail(w, code, msg)
	}
	req.records(h.opts.Topic, arrival)
	if err := h.prod.Produce(r.Context(), req.recs); err != nil {
		return h.produceFailed(w, r.Context(), err)
	}
	req.resp.Accepted = len(req.recs)
	h.m.accepted.Add(float64(req.resp.Accepted))
	return h.respond(w, http.StatusAccepted, &req.resp)
}

// failBody answers a request refused while reading or decoding its body:
// 503 (memory budget, passes) gets Retry-After.
func (h *Handler) failBody(w http.ResponseWriter, code int, msg string) int {
	switch code {
	case http.StatusServiceUnavailable:
		h.m.pushback.WithLabelValues("memory").Inc()
		return h.pushBack(w, code, msg)
	case http.StatusRequestEntityTooLarge:
		h.m.tooLarge.Inc()
	}
	return h.fail(w, code, msg)
}

// admissionStatus maps an error of reading or decoding a body.
func admissionStatus(err error) int {
	switch {
	case errors.Is(err, ErrBudget):
		return http.StatusServiceUnavailable
	default:
		return http.StatusRequestEntityTooLarge
	}
}

type kind int

const (
	kindSniff kind = iota
	kindNDJSON
	kindJSON
)

func bodyKind(ct string) (kind, error) {
	switch ct {
	case "":
		return kindSniff, nil
	case "application/x-ndjson": // what loadgen and most shippers send: no parse (it allocates a map)
		return kindNDJSON, nil
	case "application/json":
		return kindJSON, nil
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
// MaxBodyBytes before and after decompression, by the decompression ratio,
// by the request's share of the memory budget, and in time: the body must
// arrive within BodyTimeout and, after a grace, at MinBodyRate or faster,
// so stalled uploads give their slot back. It returns a status and a
// message when the request must be refused.
func (h *Handler) readBody(w http.ResponseWriter, req *request, r *http.Request) (int, string) {
	limit := h.opts.MaxBodyBytes
	if r.ContentLength > limit {
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes is over the limit of %d bytes (--max-body-bytes); split it", r.ContentLength, limit)
	}
	rc := http.NewResponseController(w)
	pace := &pacedReader{r: http.MaxBytesReader(nil, r.Body, limit), rc: rc, start: time.Now(), timeout: h.opts.BodyTimeout, rate: h.opts.MinBodyRate}
	pace.extend()
	code, msg := h.readBodyPaced(req, r, pace)
	if code != 0 {
		// Keep the deadline, and close after answering: the server would
		// otherwise wait for the rest of the body (up to 256 KB) before
		// sending the answer, for as long as the sender stalls.
		w.Header().Set("Connection", "close")
		return code, msg
	}
	rc.SetReadDeadline(time.Time{})
	return 0, ""
}

func (h *Handler) readBodyPaced(req *request, r *http.Request, pace *pacedReader) (int, string) {
	limit := h.opts.MaxBodyBytes
	var src io.Reader = pace
	enc := r.Header.Get("Content-Encoding")
	switch enc {
	case "", "identity":
	case "gzip", "x-gzip":
		if req.gz == nil {
			req.gz = new(gzip.Reader)
		}
		if err := req.gz.Reset(pace); err != nil {
			return h.bodyErr(err, limit, "gzip")
		}
		req.gz.Multistream(true)
		src = req.gz
	case "zstd":
		if req.zr == nil {
			zr, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)*2), zstd.WithDecoderMaxWindow(8<<20))
			if err != nil {
				return http.StatusServiceUnavailable, "zstd decoder: " + err.Error()
			}
			req.zr = zr
		}
		if err := req.zr.Reset(pace); err != nil {
			return h.bodyErr(err, limit, "zstd")
		}
		src = req.zr
	default:
		return http.StatusUnsupportedMediaType, fmt.Sprintf("unsupported Content-Encoding %q: use gzip, zstd or none", enc)
	}
	req.body.Reset()
	if r.ContentLength > 0 && (enc == "" || enc == "identity") {
		// The size is known: one allocation of it, charged before it is made.
		if err := req.ticket.Need(r.ContentLength + readChunk); err != nil {
			return admissionStatus(err), err.Error()
		}
		req.body.Grow(int(r.ContentLength) + 1)
	}
	// Read in chunks, charging the memory budget with the buffer's capacity
	// as it grows and checking the expansion ratio.
	ratio := int64(h.opts.MaxDecompressionRatio)
	for {
		if err := req.ticket.Need(int64(req.body.Len()) + 2*readChunk); err != nil {
			return admissionStatus(err), err.Error()
		}
		req.body.Grow(readChunk)
		if err := req.ticket.Need(int64(req.body.Cap())); err != nil {
			return admissionStatus(err), err.Error()
		}
		buf := req.body.AvailableBuffer()[:readChunk]
		n, err := src.Read(buf)
		req.body.Write(buf[:n])
		d := int64(req.body.Len())
		if d > limit {
			return http.StatusRequestEntityTooLarge, fmt.Sprintf("decompressed body is over the limit of %d bytes (--max-body-bytes); split it", limit)
		}
		if enc != "" && enc != "identity" && d > minRatioCheckBytes && d > ratio*pace.n {
			return http.StatusRequestEntityTooLarge, fmt.Sprintf("body decompresses more than %dx (%d bytes from %d); refused as a decompression bomb (--max-decompression-ratio)", ratio, d, pace.n)
		}
		if err == io.EOF {
			return 0, ""
		}
		if err != nil {
			return h.bodyErr(err, limit, enc)
		}
	}
}

// readChunk is how much of a body is read at a time.
const readChunk = 64 << 10

// pacedReader moves the connection's read deadline forward as the body
// arrives: start + grace + received/rate, never past start + timeout.
type pacedReader struct {
	r        io.Reader
	rc       *http.ResponseController
	start    time.Time
	timeout  time.Duration
	rate     int64
	n        int64 // bytes received (compressed)
	deadline time.Time
}

func (p *pacedReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if n > 0 {
		p.extend()
	}
	return n, err
}

func (p *pacedReader) extend() {
	d := p.start.Add(bodyRateGrace + time.Duration(float64(p.n)/float64(p.rate)*float64(time.Second)))
	if last := p.start.Add(p.timeout); d.After(last) {
		d = last
	}
	if d.Sub(p.deadline) >= 100*time.Millisecond {
		p.deadline = d
		p.rc.SetReadDeadline(d) // unsupported (tests' recorders): no deadline
	}
}

func (h *Handler) bodyErr(err error, limit int64, enc string) (int, string) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("body is over the limit of %d bytes (--max-body-bytes); split it", limit)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		h.m.pushback.WithLabelValues("slow_body").Inc()
		return http.StatusRequestTimeout, fmt.Sprintf("body arrived slower than %d bytes/s (--min-body-rate) or took longer than %s (--body-read-timeout)", h.opts.MinBodyRate, h.opts.BodyTimeout)
	}
	if enc != "" && enc != "identity" {
		return http.StatusBadRequest, fmt.Sprintf("body is not valid %s: %v", enc, err)
	}
	return http.StatusBadRequest, "reading body: " + err.Error()
}

func (h *Handler) decodeNDJSON(req *request, body []byte, arrival time.Time) error {
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
		if err := h.decodeOne(req, l, line, arrival); err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) decodeJSON(req *request, body []byte, arrival time.Time) error {
	if body[0] != '[' {
		return h.decodeOne(req, body, 1, arrival)
	}
	if i := event.ControlByte(body); i >= 0 {
		h.reject(req, 1, fmt.Sprintf("invalid JSON array: raw control character 0x%02x at byte %d; escape it", body[i], i+1))
		return nil
	}
	// fastjson's parse of the array costs about 64 bytes per value.
	if err := req.ticket.Add(int64(len(body)) * 2); err != nil {
		return err
	}
	v, err := req.jp.ParseBytes(body)
	if err != nil {
		h.reject(req, 1, "invalid JSON array: "+shorten(err.Error()))
		return nil
	}
	elems, _ := v.Array()
	if len(elems) == 0 {
		h.reject(req, 1, "empty JSON array")
		return nil
	}
	if len(elems) > h.opts.MaxRecords {
		return fmt.Errorf("%w: %d records in one request, over the limit of %d (--max-records); split it", errTooManyRecords, len(elems), h.opts.MaxRecords)
	}
	// Elements are re-serialised and decoded like NDJSON lines: one decode
	// path, one set of rules, at a small cost for the less common form.
	for i, e := range elems {
		req.elem = e.MarshalTo(req.elem[:0])
		if err := h.decodeOne(req, req.elem, i+1, arrival); err != nil {
			return err
		}
	}
	return nil
}

// errTooManyRecords: a request over --max-records (413).
var errTooManyRecords = errors.New("too many records")

func (h *Handler) decodeOne(req *request, l []byte, line int, arrival time.Time) error {
	if req.resp.Rejected+len(req.offs)/3 >= h.opts.MaxRecords {
		return fmt.Errorf("%w: more than %d records in one request (--max-records); split it", errTooManyRecords, h.opts.MaxRecords)
	}
	if len(l) > h.opts.MaxLineBytes {
		req.limitRejects++
		h.reject(req, line, fmt.Sprintf("line of %d bytes is over the limit of %d bytes (--max-line-bytes)", len(l), h.opts.MaxLineBytes))
		return nil
	}
	if err := req.dec.Decode(l, arrival, &req.ev); err != nil {
		if errors.Is(err, event.ErrLimit) {
			req.limitRejects++
		}
		h.reject(req, line, err.Error())
		return nil
	}
	if req.tenant != nil {
		req.ev.Tenant = req.tenant.name
	}
	return h.keep(req, line)
}

// keep appends the decoded req.ev to the request's records, unless its
// encoded form is over --max-line-bytes, and charges the memory it takes.
func (h *Handler) keep(req *request, line int) error {
	req.trace.Apply(&req.ev)
	start := len(req.out)
	req.appendRecord()
	if n := req.offs[len(req.offs)-2] - start; n > h.opts.MaxLineBytes {
		req.out, req.offs = req.out[:start], req.offs[:len(req.offs)-3]
		req.limitRejects++
		h.reject(req, line, (&event.LimitError{What: "bytes once encoded", Got: n, Limit: h.opts.MaxLineBytes, Flag: "--max-line-bytes"}).Error())
		return nil
	}
	if int64(len(req.out)) > h.opts.MaxEventBytes {
		return fmt.Errorf("%w: the events of one request encode to more than %d bytes (--max-request-event-bytes); split it", errTooManyRecords, h.opts.MaxEventBytes)
	}
	return req.ticket.Need(int64(req.body.Cap()) + int64(cap(req.out)) + int64(len(req.offs)/3)*recordOverhead)
}

// appendRecord encodes req.ev and its partition key into req.out. The key
// is the event's host (its service when it has no host), so one source's
// events stay in order on one Kafka partition while many sources spread
// over all of them.
func (req *request) appendRecord() {
	if len(req.client) > 0 {
		req.attrs = event.WithMembers(req.attrs, req.ev.Attrs, req.client)
		req.ev.Attrs = req.attrs
	}
	start := len(req.out)
	req.out = event.AppendRecord(req.out, &req.ev, req.format)
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
	case errors.Is(err, transport.ErrTooLarge):
		// Retrying cannot help: say so with a status clients do not retry.
		h.m.tooLarge.Inc()
		return h.fail(w, http.StatusRequestEntityTooLarge, "the log refused the request as too large: "+shorten(err.Error()))
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
	var b []byte
	if len(resp.Errors) == 0 && resp.Message == "" {
		// Every line accepted, the answer to nearly every request: the
		// bytes json.Marshal writes, without its reflection.
		var buf [64]byte
		b = append(buf[:0], `{"accepted":`...)
		b = strconv.AppendInt(b, int64(resp.Accepted), 10)
		b = append(b, `,"rejected":`...)
		b = strconv.AppendInt(b, int64(resp.Rejected), 10)
		b = append(b, `,"errors":[]}`...)
	} else {
		if resp.Errors == nil {
			resp.Errors = []LineError{}
		}
		b, _ = json.Marshal(resp)
	}
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
	if p, ok := authz.FromContext(r.Context()); ok && p.Tenant != "" {
		// Another authenticator (mTLS) or the middleware resolved it.
		if h.opts.Tenants != nil {
			req.tenant = h.opts.Tenants.named(p.Tenant)
		} else {
			req.tenant = &tenant{name: p.Tenant}
		}
		return 0, ""
	}
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
	req.ticket = nil
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
