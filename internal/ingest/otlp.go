package ingest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/telemetry"
	"github.com/wirelog/wirelog/internal/transport"
)

// OTLP returns the handler for POST /v1/logs: OTLP/HTTP logs in protobuf
// (application/x-protobuf) or JSON (application/json), optionally gzip or
// zstd, answered as the OTLP specification says so SDKs and collectors
// behave: 200 with an ExportLogsServiceResponse (partial_success when some
// records were rejected), 400 with a google.rpc.Status for unusable
// requests (not retried), 429/503 with Retry-After when pushing back (retried).
// It shares limits, in-flight slots and the producer with h.
func (h *Handler) OTLP() http.Handler { return otlpHandler{h} }

type otlpHandler struct{ h *Handler }

func (o otlpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := o.serve(w, r)
	o.h.m.otlpRequests.WithLabelValues(strconv.Itoa(code)).Inc()
	telemetry.Observe(r.Context(), o.h.m.duration, time.Since(start).Seconds())
}

func (o otlpHandler) serve(w http.ResponseWriter, r *http.Request) int {
	h := o.h
	asJSON := false
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "application/json" {
		asJSON = true
	} else if err != nil || mt != "application/x-protobuf" {
		return otlpStatus(w, asJSON, http.StatusUnsupportedMediaType, 3, "unsupported Content-Type: OTLP/HTTP takes application/x-protobuf or application/json")
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return otlpStatus(w, asJSON, http.StatusMethodNotAllowed, 12, "use POST")
	}
	ticket, err := h.adm.Enter(r)
	if err != nil {
		h.m.pushback.WithLabelValues("slots").Inc()
		w.Header().Set("Connection", "close") // do not wait for the unread body
		return o.pushBack(w, asJSON, http.StatusTooManyRequests, err.Error())
	}
	defer ticket.Done()
	req := h.pool.Get().(*request)
	defer h.release(req)
	req.ticket = ticket
	if code, msg := h.authenticate(w, r, req); code != 0 {
		return otlpStatus(w, asJSON, code, 16, msg) // 16 = UNAUTHENTICATED
	}
	if code, msg := h.readBody(w, req, r); code != 0 {
		return o.refuse(w, asJSON, code, msg)
	}
	h.m.bytes.Add(float64(req.body.Len()))
	body := req.body.Bytes()
	// Measure before decoding: pdata materialises every record and
	// attribute, so the count of records and messages decides whether the
	// request may be decoded at all, and records over a limit are cut out
	// of the bytes and never decoded.
	rejected, firstErr := 0, ""
	limitRejects := 0
	if !asJSON {
		sc := otlpScan{lim: h.opts.limits()}
		if err := sc.scan(body); err != nil {
			return otlpStatus(w, asJSON, http.StatusBadRequest, 3, "undecodable ExportLogsServiceRequest: "+shorten(err.Error()))
		}
		if sc.records > h.opts.MaxRecords {
			return o.refuse(w, asJSON, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d log records in one request, over the limit of %d (--max-records); split it", sc.records, h.opts.MaxRecords))
		}
		if len(sc.bad) > 0 {
			rejected, limitRejects = len(sc.bad), len(sc.bad)
			firstErr = sc.bad[0].err.Error()
			body = sc.without(body)
			sc.messages = 0
			if err := sc.scan(body); err != nil { // counts what is left to decode
				return otlpStatus(w, asJSON, http.StatusBadRequest, 3, "undecodable ExportLogsServiceRequest: "+shorten(err.Error()))
			}
		}
		if err := ticket.Add(int64(len(body)) + int64(sc.messages)*otlpMessageCost); err != nil {
			return o.refuse(w, asJSON, admissionStatus(err), err.Error())
		}
	} else {
		// JSON: every object becomes at least one message.
		if err := ticket.Add(int64(len(body)) + int64(jsonObjects(body))*otlpMessageCost); err != nil {
			return o.refuse(w, asJSON, admissionStatus(err), err.Error())
		}
	}
	ex := plogotlp.NewExportRequest()
	if asJSON {
		err = ex.UnmarshalJSON(body)
	} else {
		err = ex.UnmarshalProto(body)
	}
	if err != nil {
		return otlpStatus(w, asJSON, http.StatusBadRequest, 3, "undecodable ExportLogsServiceRequest: "+shorten(err.Error()))
	}
	if n := ex.Logs().LogRecordCount(); n > h.opts.MaxRecords {
		return o.refuse(w, asJSON, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d log records in one request, over the limit of %d (--max-records); split it", n, h.opts.MaxRecords))
	}
	arrival := h.opts.Now()
	req.trace = telemetry.RequestTrace(r.Context())
	req.client = event.AppendClientAddr(req.client[:0], ClientAddr(r, h.opts.TrustedProxies))
	req.out, req.offs = req.out[:0], req.offs[:0]
	req.resp = Response{Errors: req.resp.Errors[:0]}
	req.limitRejects = 0
	lim := attrLimits{maxAttrs: h.opts.MaxAttributes, maxDepth: h.opts.MaxDepth}
	rls := ex.Logs().ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := rl.Resource().Attributes()
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				err := fromOTLP(&req.ev, &req.elem, res, sl.Scope(), lrs.At(k), arrival, lim)
				if err == nil {
					if req.tenant != nil {
						req.ev.Tenant = req.tenant.name
					}
					before := req.resp.Rejected
					if err := h.keep(req, k+1); err != nil {
						return o.refuse(w, asJSON, admissionStatus(err), err.Error())
					}
					if req.resp.Rejected == before {
						continue
					}
					err = errors.New(req.resp.Errors[len(req.resp.Errors)-1].Error)
					limitRejects++
				} else if errors.Is(err, event.ErrLimit) {
					limitRejects++
				}
				rejected++
				if firstErr == "" {
					firstErr = err.Error()
				}
			}
		}
	}
	h.m.rejected.Add(float64(rejected))
	if len(req.offs) == 0 && rejected > 0 {
		code := http.StatusBadRequest
		if limitRejects == rejected {
			code = http.StatusRequestEntityTooLarge
		}
		return o.refuse(w, asJSON, code, fmt.Sprintf("all %d log records rejected; first: %s", rejected, firstErr))
	}
	if len(req.offs) > 0 {
		if code, msg := h.limit(w, req, len(req.offs)/3, req.body.Len()); code != 0 {
			if code == http.StatusTooManyRequests {
				return otlpStatus(w, asJSON, code, 14, msg) // Retry-After already set
			}
			return otlpStatus(w, asJSON, code, 3, msg)
		}
		req.records(h.opts.Topic, arrival)
		if err := h.prod.Produce(r.Context(), req.recs); err != nil {
			return o.produceFailed(w, asJSON, r.Context(), err)
		}
		h.m.accepted.Add(float64(len(req.recs)))
	}
	resp := plogotlp.NewExportResponse()
	if rejected > 0 {
		resp.PartialSuccess().SetRejectedLogRecords(int64(rejected))
		resp.PartialSuccess().SetErrorMessage(fmt.Sprintf("%d log records rejected; first: %s", rejected, firstErr))
	}
	var out []byte
	if asJSON {
		out, err = resp.MarshalJSON()
		w.Header().Set("Content-Type", "application/json")
	} else {
		out, err = resp.MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}
	if err != nil {
		return otlpStatus(w, asJSON, http.StatusInternalServerError, 13, "encode response: "+err.Error())
	}
	w.WriteHeader(http.StatusOK)
	w.Write(out)
	return http.StatusOK
}

func (o otlpHandler) produceFailed(w http.ResponseWriter, asJSON bool, ctx context.Context, err error) int {
	switch {
	case errors.Is(err, transport.ErrTooLarge):
		return o.refuse(w, asJSON, http.StatusRequestEntityTooLarge, "the log refused the request as too large: "+shorten(err.Error()))
	case errors.Is(err, transport.ErrBackpressure):
		o.h.m.pushback.WithLabelValues("backlog").Inc()
		return o.pushBack(w, asJSON, http.StatusTooManyRequests, "the log is behind its bound; retry")
	default:
		o.h.m.pushback.WithLabelValues("unavailable").Inc()
		if ctx.Err() != nil {
			return o.pushBack(w, asJSON, http.StatusServiceUnavailable, "request cancelled before the records were durable; resend")
		}
		return o.pushBack(w, asJSON, http.StatusServiceUnavailable, "the log cannot take writes right now: "+shorten(err.Error()))
	}
}

// refuse answers a request refused while reading or measuring its body.
func (o otlpHandler) refuse(w http.ResponseWriter, asJSON bool, code int, msg string) int {
	switch code {
	case http.StatusServiceUnavailable:
		o.h.m.pushback.WithLabelValues("memory").Inc()
		return o.pushBack(w, asJSON, code, msg)
	case http.StatusRequestEntityTooLarge:
		o.h.m.tooLarge.Inc()
		return otlpStatus(w, asJSON, code, 11, msg) // 11 = OUT_OF_RANGE
	}
	return otlpStatus(w, asJSON, code, 3, msg) // 3 = INVALID_ARGUMENT
}

// jsonObjects counts the '{' of a JSON body outside strings: an upper
// bound of the messages OTLP/JSON decoding allocates.
func jsonObjects(b []byte) int {
	n, inStr, esc := 0, false, false
	for _, c := range b {
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case !inStr && c == '{':
			n++
		}
	}
	return n
}

func (o otlpHandler) pushBack(w http.ResponseWriter, asJSON bool, code int, msg string) int {
	secs := int((o.h.opts.RetryAfter + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return otlpStatus(w, asJSON, code, 14, msg) // 14 = UNAVAILABLE
}

// otlpStatus answers with a google.rpc.Status, as OTLP/HTTP requires for
// errors, in the request's encoding.
func otlpStatus(w http.ResponseWriter, asJSON bool, httpCode int, rpcCode int32, msg string) int {
	var body []byte
	if asJSON {
		body, _ = json.Marshal(struct {
			Code    int32  `json:"code"`
			Message string `json:"message"`
		}{rpcCode, msg})
		w.Header().Set("Content-Type", "application/json")
	} else {
		body = protowire.AppendTag(body, 1, protowire.VarintType)
		body = protowire.AppendVarint(body, uint64(rpcCode))
		body = protowire.AppendTag(body, 2, protowire.BytesType)
		body = protowire.AppendString(body, msg)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}
	w.WriteHeader(httpCode)
	w.Write(body)
	return httpCode
}

// fromOTLP maps one OTLP log record onto an event: service.name and
// host.name from the resource, severity number (or text) to level, the body
// to message (non-string bodies as JSON), trace and span ids as hex; the
// record's attributes, the other resource attributes (prefixed "resource.")
// and the scope name go to attrs.
func fromOTLP(e *event.Event, buf *[]byte, res pcommon.Map, scope pcommon.InstrumentationScope, lr plog.LogRecord, arrival time.Time, lim attrLimits) error {
	e.Reset()
	if err := lim.check(res, lr); err != nil {
		return err
	}
	switch {
	case lr.Timestamp() != 0:
		e.Time = lr.Timestamp().AsTime().UTC()
	case lr.ObservedTimestamp() != 0:
		e.Time = lr.ObservedTimestamp().AsTime().UTC()
	default:
		e.Time = arrival.UTC()
	}
	if v, ok := res.Get("service.name"); ok {
		e.Service = v.AsString()
	}
	if v, ok := res.Get("host.name"); ok {
		e.Host = v.AsString()
	}
	if n := lr.SeverityNumber(); n != plog.SeverityNumberUnspecified {
		e.Level = levelFromSeverity(int32(n))
	} else if t := lr.SeverityText(); t != "" {
		e.Level, _ = event.ParseLevel(t)
	}
	if b := lr.Body(); b.Type() == pcommon.ValueTypeStr {
		e.Message = b.Str()
	} else if b.Type() != pcommon.ValueTypeEmpty {
		e.Message = b.AsString()
	}
	if id := lr.TraceID(); !id.IsEmpty() {
		e.TraceID = hex.EncodeToString(id[:])
	}
	if id := lr.SpanID(); !id.IsEmpty() {
		e.SpanID = hex.EncodeToString(id[:])
	}
	a := (*buf)[:0]
	add := func(k string, v pcommon.Value) {
		if len(a) == 0 {
			a = append(a, '{')
		} else {
			a = append(a, ',')
		}
		a = event.AppendString(a, k)
		a = append(a, ':')
		a = appendOTLPValue(a, v)
	}
	lr.Attributes().Range(func(k string, v pcommon.Value) bool { add(k, v); return true })
	res.Range(func(k string, v pcommon.Value) bool {
		if k != "service.name" && k != "host.name" {
			add("resource."+k, v)
		}
		return true
	})
	if n := scope.Name(); n != "" {
		add("otel.scope.name", pcommon.NewValueStr(n))
	}
	if t := lr.SeverityText(); t != "" {
		add("severity_text", pcommon.NewValueStr(t))
	}
	if len(a) > 0 {
		a = append(a, '}')
		e.Attrs = a
	}
	*buf = a
	if e.Time.Before(minOTLPTime) || e.Time.After(maxOTLPTime) {
		return fmt.Errorf("time_unix_nano %d is outside 1970..2200", uint64(lr.Timestamp()))
	}
	return nil
}

// attrLimits bound a decoded OTLP record (the JSON path, which has no
// byte-level scan): its attributes with the resource's, and their nesting.
type attrLimits struct{ maxAttrs, maxDepth int }

func (l attrLimits) check(res pcommon.Map, lr plog.LogRecord) error {
	if l.maxAttrs <= 0 {
		return nil
	}
	n, depth := 0, 0
	var walk func(v pcommon.Value, d int)
	walk = func(v pcommon.Value, d int) {
		depth = max(depth, d)
		if n > l.maxAttrs || d > l.maxDepth {
			return
		}
		switch v.Type() {
		case pcommon.ValueTypeMap:
			v.Map().Range(func(_ string, v pcommon.Value) bool { n++; walk(v, d+1); return n <= l.maxAttrs })
		case pcommon.ValueTypeSlice:
			s := v.Slice()
			for i := 0; i < s.Len() && n <= l.maxAttrs; i++ {
				walk(s.At(i), d+1)
			}
		}
	}
	for _, m := range []pcommon.Map{res, lr.Attributes()} {
		m.Range(func(_ string, v pcommon.Value) bool { n++; walk(v, 1); return n <= l.maxAttrs })
	}
	walk(lr.Body(), 1)
	switch {
	case n > l.maxAttrs:
		return &event.LimitError{What: "attributes (resource attributes included)", Limit: l.maxAttrs, Flag: "--max-attributes"}
	case depth > l.maxDepth:
		return &event.LimitError{What: "levels of nesting", Limit: l.maxDepth, Flag: "--max-depth"}
	}
	return nil
}

var (
	minOTLPTime = time.Unix(0, 1)
	maxOTLPTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

func appendOTLPValue(dst []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return event.AppendString(dst, v.Str())
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(dst, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		f := v.Double()
		if f != f || f > 1.7e308 || f < -1.7e308 { // NaN/Inf are not JSON
			return event.AppendString(dst, strconv.FormatFloat(f, 'g', -1, 64))
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64)
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(dst, v.Bool())
	case pcommon.ValueTypeMap:
		dst = append(dst, '{')
		first := true
		v.Map().Range(func(k string, v pcommon.Value) bool {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = event.AppendString(dst, k)
			dst = append(dst, ':')
			dst = appendOTLPValue(dst, v)
			return true
		})
		return append(dst, '}')
	case pcommon.ValueTypeSlice:
		dst = append(dst, '[')
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendOTLPValue(dst, s.At(i))
		}
		return append(dst, ']')
	case pcommon.ValueTypeBytes:
		return event.AppendString(dst, v.AsString()) // base64, as OTLP JSON writes bytes
	default:
		return append(dst, "null"...)
	}
}

// levelFromSeverity maps OTLP SeverityNumber ranges (1-4 TRACE … 21-24 FATAL).
func levelFromSeverity(n int32) event.Level {
	switch {
	case n <= 0:
		return event.LevelUnknown
	case n <= 4:
		return event.LevelTrace
	case n <= 8:
		return event.LevelDebug
	case n <= 12:
		return event.LevelInfo
	case n <= 16:
		return event.LevelWarn
	case n <= 20:
		return event.LevelError
	default:
		return event.LevelFatal
	}
}
