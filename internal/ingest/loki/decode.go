package loki

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/wirelog/wirelog/internal/event"
)

// Sink receives what a push body holds: Add for each usable entry (the
// event filled, key its stream's labels), Reject for each entry or stream
// that is not, with a metric reason. Add may still reject the entry (its
// reason in words, already counted); an error from either stops decoding
// and is returned (the request is refused as a whole).
type Sink interface {
	Event() *event.Event
	Add(key []byte) (reject string, err error)
	Reject(reason string) error
}

// Decoder turns push bodies into events. Strings in an added event point
// into the body and the Decoder and are valid only during Add. Not safe for
// concurrent use.
type Decoder struct {
	// Tenant is stored with every entry: Loki's X-Scope-OrgID. With
	// --auth-tokens the token's tenant overrides it (ingest.Batch.Add).
	Tenant string
	// MaxAttributes bounds one entry's labels and structured metadata
	// together (--max-attributes); 0: unbounded.
	MaxAttributes int

	jp     fastjson.Parser
	stop   error // the first error of the sink: decoding ends
	nattrs int   // attributes of the entry being built
	labels []label
	attrs  []byte // the stream's labels as the start of an attrs object
	buf    []byte
	errs   []string // first few rejection messages, Loki-worded
	nerr   int
	ents   [][]byte // a proto stream's entries, decoded after its labels
}

// maxErrs bounds the messages kept for the answer; all are counted.
const maxErrs = 10

// Errors returns the rejection messages of the last body (at most 10) and
// how many there were.
func (d *Decoder) Errors() ([]string, int) { return d.errs, d.nerr }

func (d *Decoder) reject(s Sink, reason, msg string) {
	d.stopOn(s.Reject(reason))
	d.note(msg)
}

// note keeps one rejection message for the answer.
func (d *Decoder) note(msg string) {
	d.nerr++
	if len(d.errs) < maxErrs {
		d.errs = append(d.errs, msg)
	}
}

func (d *Decoder) stopOn(err error) {
	if err != nil && d.stop == nil {
		d.stop = err
	}
}

// stream is the part of every entry of one stream that comes from its
// labels.
type stream struct {
	nattrs        int // labels kept as attributes
	service, host string
	level         event.Level
	key           []byte
	raw           string
}

// ErrBody is a body that is not a push request at all: the whole request
// is refused.
var ErrBody = errors.New("error parsing push request")

// DecodeJSON reads {"streams":[{"stream":{labels},"values":[["<ns>","line",{metadata}]]}]}.
func (d *Decoder) DecodeJSON(body []byte, arrival time.Time, s Sink) error {
	d.errs, d.nerr, d.stop = d.errs[:0], 0, nil
	v, err := d.jp.ParseBytes(body)
	if err != nil {
		return fmt.Errorf("%w: body is not JSON: %s", ErrBody, short(err.Error()))
	}
	streams := v.Get("streams")
	if streams == nil || streams.Type() != fastjson.TypeArray {
		return fmt.Errorf("%w: want {\"streams\":[…]}", ErrBody)
	}
	arr, _ := streams.Array()
	for _, sv := range arr {
		if d.stop != nil {
			return d.stop
		}
		d.labels = d.labels[:0]
		lo := sv.GetObject("stream")
		if lo == nil {
			d.reject(s, "invalid_labels", "error at least one label pair is required per stream")
			continue
		}
		bad := ""
		lo.Visit(func(k []byte, v *fastjson.Value) {
			if v.Type() != fastjson.TypeString {
				bad = fmt.Sprintf("label %q: value must be a string", short(string(k)))
				return
			}
			d.labels = append(d.labels, label{b2s(k), b2s(v.GetStringBytes())})
		})
		vals := sv.GetArray("values")
		if bad != "" {
			d.rejectStream(s, len(vals), "invalid_labels", "error parsing labels: "+bad)
			continue
		}
		st, msg := d.stream(nil)
		if msg != "" {
			d.rejectStream(s, len(vals), "invalid_labels", msg)
			continue
		}
		for _, ev := range vals {
			if d.stop != nil {
				return d.stop
			}
			d.jsonEntry(s, &st, ev, arrival)
		}
	}
	return d.stop
}

func (d *Decoder) rejectStream(s Sink, entries int, reason, msg string) {
	d.reject(s, reason, msg)
	for i := 1; i < entries && d.stop == nil; i++ {
		d.stopOn(s.Reject(reason))
		d.nerr++
	}
}

func (d *Decoder) jsonEntry(s Sink, st *stream, v *fastjson.Value, arrival time.Time) {
	a, err := v.Array()
	if err != nil || len(a) < 2 || len(a) > 3 {
		d.reject(s, "invalid_entry", fmt.Sprintf("entry for stream '%s': want [\"<unix ns>\", \"<line>\"] or [\"<unix ns>\", \"<line>\", {metadata}]", short(st.raw)))
		return
	}
	var ts time.Time
	switch a[0].Type() {
	case fastjson.TypeString:
		ns, err := strconv.ParseInt(b2s(a[0].GetStringBytes()), 10, 64)
		if err != nil {
			d.reject(s, "invalid_timestamp", fmt.Sprintf("entry for stream '%s' has an invalid timestamp %q: want unix nanoseconds as a string", short(st.raw), short(string(a[0].GetStringBytes()))))
			return
		}
		ts = time.Unix(0, ns)
	case fastjson.TypeNumber:
		t, err := event.TimeFromEpoch(a[0].GetFloat64())
		if err != nil {
			d.reject(s, "invalid_timestamp", fmt.Sprintf("entry for stream '%s' has an invalid timestamp: %v", short(st.raw), err))
			return
		}
		ts = t
	default:
		d.reject(s, "invalid_timestamp", fmt.Sprintf("entry for stream '%s' has no timestamp: want unix nanoseconds as a string", short(st.raw)))
		return
	}
	if a[1].Type() != fastjson.TypeString {
		d.reject(s, "invalid_entry", fmt.Sprintf("entry for stream '%s': the line must be a string", short(st.raw)))
		return
	}
	e := s.Event()
	if !d.begin(s, st, e, ts, arrival, b2s(a[1].GetStringBytes())) {
		return
	}
	if len(a) == 3 {
		mo, err := a[2].Object()
		if err != nil {
			d.reject(s, "invalid_entry", fmt.Sprintf("entry for stream '%s': structured metadata must be an object of strings", short(st.raw)))
			return
		}
		bad := false
		mo.Visit(func(k []byte, v *fastjson.Value) {
			if v.Type() != fastjson.TypeString {
				bad = true
				return
			}
			d.meta(e, b2s(k), b2s(v.GetStringBytes()))
		})
		if bad {
			d.reject(s, "invalid_entry", fmt.Sprintf("entry for stream '%s': structured metadata values must be strings", short(st.raw)))
			return
		}
	}
	d.finish(s, st, e)
}

// DecodeProto reads a PushRequest (already snappy-decoded), written as
// Loki's push.proto defines it:
//
//	PushRequest   { repeated StreamAdapter streams = 1; }
//	StreamAdapter { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
//	EntryAdapter  { Timestamp timestamp = 1; string line = 2;
//	                repeated LabelPairAdapter structuredMetadata = 3; repeated LabelPairAdapter parsed = 4; }
//	LabelPairAdapter { string name = 1; string value = 2; }
//	Timestamp     { int64 seconds = 1; int32 nanos = 2; }
//
// The field numbers come from the Apache-2.0 schema (pkg/logproto, now
// pkg/push, of grafana/loki); the decoding is protowire's, no Loki code.
func (d *Decoder) DecodeProto(body []byte, arrival time.Time, s Sink) error {
	d.errs, d.nerr, d.stop = d.errs[:0], 0, nil
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrBody, protowire.ParseError(n))
		}
		body = body[n:]
		if num == 1 && typ == protowire.BytesType {
			sb, n := protowire.ConsumeBytes(body)
			if n < 0 {
				return fmt.Errorf("%w: stream: %v", ErrBody, protowire.ParseError(n))
			}
			body = body[n:]
			if err := d.protoStream(sb, arrival, s); err != nil {
				return err
			}
			if d.stop != nil {
				return d.stop
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, body)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrBody, protowire.ParseError(n))
		}
		body = body[n:]
	}
	return nil
}

func (d *Decoder) protoStream(b []byte, arrival time.Time, s Sink) error {
	var raw string
	d.ents = d.ents[:0]
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: stream: %v", ErrBody, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("%w: stream labels: %v", ErrBody, protowire.ParseError(n))
			}
			raw, b = b2s(v), b[n:]
		case num == 2 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("%w: entry: %v", ErrBody, protowire.ParseError(n))
			}
			d.ents, b = append(d.ents, v), b[n:]
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("%w: stream: %v", ErrBody, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	var err error
	d.labels, err = parseLabels(d.labels[:0], raw)
	if err != nil {
		d.rejectStream(s, len(d.ents), "invalid_labels", fmt.Sprintf("error parsing labels '%s' with error: %v", short(raw), err))
		return nil
	}
	st, msg := d.stream([]byte(raw))
	if msg != "" {
		d.rejectStream(s, len(d.ents), "invalid_labels", msg)
		return nil
	}
	st.raw = raw
	for _, eb := range d.ents {
		if d.stop != nil {
			return nil
		}
		if err := d.protoEntry(s, &st, eb, arrival); err != nil {
			return err
		}
	}
	return nil
}

func (d *Decoder) protoEntry(s Sink, st *stream, b []byte, arrival time.Time) error {
	var ts time.Time
	var line string
	var meta [][]byte
	var metaBuf [8][]byte
	meta = metaBuf[:0]
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: entry: %v", ErrBody, protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType || num < 1 || num > 3 {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("%w: entry: %v", ErrBody, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return fmt.Errorf("%w: entry: %v", ErrBody, protowire.ParseError(n))
		}
		b = b[n:]
		switch num {
		case 1:
			t, err := protoTime(v)
			if err != nil {
				return err
			}
			ts = t
		case 2:
			line = b2s(v)
		case 3:
			meta = append(meta, v)
		}
	}
	e := s.Event()
	if !d.begin(s, st, e, ts, arrival, line) {
		return nil
	}
	for _, m := range meta {
		name, value, err := protoPair(m)
		if err != nil {
			return err
		}
		d.meta(e, name, value)
	}
	d.finish(s, st, e)
	return nil
}

func protoTime(b []byte) (time.Time, error) {
	var sec, nanos int64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return time.Time{}, fmt.Errorf("%w: timestamp: %v", ErrBody, protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.VarintType && (num == 1 || num == 2) {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return time.Time{}, fmt.Errorf("%w: timestamp: %v", ErrBody, protowire.ParseError(n))
			}
			b = b[n:]
			if num == 1 {
				sec = int64(v)
			} else {
				nanos = int64(int32(v))
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return time.Time{}, fmt.Errorf("%w: timestamp: %v", ErrBody, protowire.ParseError(n))
		}
		b = b[n:]
	}
	if sec == 0 && nanos == 0 {
		return time.Time{}, nil
	}
	return time.Unix(sec, nanos), nil
}

func protoPair(b []byte) (name, value string, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", "", fmt.Errorf("%w: metadata: %v", ErrBody, protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.BytesType && (num == 1 || num == 2) {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", "", fmt.Errorf("%w: metadata: %v", ErrBody, protowire.ParseError(n))
			}
			b = b[n:]
			if num == 1 {
				name = b2s(v)
			} else {
				value = b2s(v)
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return "", "", fmt.Errorf("%w: metadata: %v", ErrBody, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return name, value, nil
}

// Loki's bounds on an entry's time are its own reject_old_samples and
// creation_grace_period; wirelog keeps any time the store can hold.
var (
	minTime = time.Unix(0, 0)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// stream maps d.labels onto the fields every entry of the stream shares
// and renders the labels kept as attributes. key is the stream's identity
// (its label string), so one stream stays in order on one partition.
func (d *Decoder) stream(key []byte) (stream, string) {
	var st stream
	if len(d.labels) == 0 {
		return st, "error at least one label pair is required per stream"
	}
	svc, host, lvl := -1, -1, -1
	svcRank, hostRank, lvlRank := 99, 99, 99
	for i, l := range d.labels {
		if r := rank(l.name, "service_name", "service", "app", "application", "job"); r < svcRank {
			svc, svcRank = i, r
		}
		if r := rank(l.name, "host", "hostname", "node_name"); r < hostRank {
			host, hostRank = i, r
		}
		if r := rank(l.name, "level", "detected_level", "severity"); r < lvlRank {
			if _, ok := event.ParseLevel(l.value); ok {
				lvl, lvlRank = i, r
			}
		}
	}
	d.attrs = d.attrs[:0]
	for i, l := range d.labels {
		switch {
		case i == svc:
			st.service = l.value
			if svcRank <= 1 { // service_name, service: the field itself
				continue
			}
		case i == host:
			st.host = l.value
			continue
		case i == lvl:
			st.level, _ = event.ParseLevel(l.value)
			continue
		}
		d.attrs = appendAttr(d.attrs, l.name, l.value)
		st.nattrs++
	}
	if key == nil {
		key = d.renderKey()
	}
	st.key = key
	if st.raw == "" {
		st.raw = b2s(key)
	}
	return st, ""
}

// renderKey writes the labels as Loki's label string, the stream key.
func (d *Decoder) renderKey() []byte {
	k := []byte{'{'}
	for i, l := range d.labels {
		if i > 0 {
			k = append(k, ", "...)
		}
		k = append(k, l.name...)
		k = append(k, '=')
		k = strconv.AppendQuote(k, l.value)
	}
	return append(k, '}')
}

func rank(name string, names ...string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	return 99
}

// begin fills the stream's part of e; false when the entry was rejected.
func (d *Decoder) begin(s Sink, st *stream, e *event.Event, ts, arrival time.Time, line string) bool {
	if ts.IsZero() {
		ts = arrival
	}
	if ts.Before(minTime) || ts.After(maxTime) {
		d.reject(s, "invalid_timestamp", fmt.Sprintf("entry for stream '%s' has timestamp %d outside 1970..2200 (nanoseconds?)", short(st.raw), ts.UnixNano()))
		return false
	}
	e.Time = ts.UTC()
	e.Service, e.Host, e.Level, e.Message, e.Tenant = st.service, st.host, st.level, line, d.Tenant
	d.buf = append(d.buf[:0], d.attrs...)
	d.nattrs = st.nattrs
	return true
}

// meta adds one structured-metadata pair: trace and span ids and a level
// fill their fields, the rest become attributes (after the labels, and
// never a second time under a label's name).
func (d *Decoder) meta(e *event.Event, name, value string) {
	switch name {
	case "trace_id", "traceID", "traceId":
		e.TraceID = value
		return
	case "span_id", "spanID", "spanId":
		e.SpanID = value
		return
	case "level", "detected_level", "severity":
		if l, ok := event.ParseLevel(value); ok {
			e.Level = l
			return
		}
	}
	for _, l := range d.labels {
		if l.name == name {
			return
		}
	}
	d.buf = appendAttr(d.buf, name, value)
	d.nattrs++
}

func (d *Decoder) finish(s Sink, st *stream, e *event.Event) {
	if d.MaxAttributes > 0 && d.nattrs > d.MaxAttributes {
		d.reject(s, "too_large", fmt.Sprintf("entry for stream '%s': %s", short(st.raw),
			(&event.LimitError{What: "labels and structured metadata", Got: d.nattrs, Limit: d.MaxAttributes, Flag: "--max-attributes"}).Error()))
		return
	}
	if len(d.buf) > 0 {
		d.buf = append(d.buf, '}')
		e.Attrs = d.buf
	}
	msg, err := s.Add(st.key)
	d.stopOn(err)
	if msg != "" {
		d.note(fmt.Sprintf("entry for stream '%s': %s", short(st.raw), msg))
	}
}

func appendAttr(dst []byte, k, v string) []byte {
	if len(dst) == 0 {
		dst = append(dst, '{')
	} else {
		dst = append(dst, ',')
	}
	dst = event.AppendString(dst, k)
	dst = append(dst, ':')
	return event.AppendString(dst, v)
}

func short(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func b2s(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
