package event

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unsafe"

	"github.com/valyala/fastjson"
)

// Decoder turns one JSON object sent by a user into an Event. It is the hot
// path of HTTP ingest, so it reuses its parser and buffers: the strings of an
// Event it fills point into the Decoder or into the line decoded, and stay
// valid only until the next call and while the line is unchanged. Callers
// encode the event (AppendJSON) before decoding the next one.
// A Decoder is not safe for concurrent use; pool them.
//
// fastjson was chosen over encoding/json on the numbers in
// docs/BENCHMARKS.md (decode + normalise of a ~250-byte event); a flat
// line of plain values skips even fastjson's tree (flat.go).
type Decoder struct {
	p     fastjson.Parser
	attrs []byte
	// MaxAttributes bounds the keys of one object, nested ones included,
	// and MaxDepth its nesting; 0 means unbounded. Over either, Decode
	// returns an error wrapping ErrLimit.
	MaxAttributes, MaxDepth int
}

// ErrLimit marks a record refused for its size, attribute count or
// nesting rather than its syntax; HTTP ingest answers such a request 413.
var ErrLimit = errors.New("record over a limit")

// LimitError is a record over one of the ingest limits; Flag names the
// setting that bounds it.
type LimitError struct {
	What  string // "attributes", "nesting depth", "bytes"
	Got   int
	Limit int
	Flag  string
}

func (e *LimitError) Error() string {
	if e.Got <= 0 {
		return fmt.Sprintf("record has more than %d %s, the limit (%s)", e.Limit, e.What, e.Flag)
	}
	return fmt.Sprintf("record has %d %s, over the limit of %d (%s)", e.Got, e.What, e.Limit, e.Flag)
}

func (e *LimitError) Unwrap() error { return ErrLimit }

// ControlByte returns the index of the first byte that JSON never allows
// unescaped (a control character other than tab, LF and CR, e.g. a raw
// NUL), or -1. fastjson is lenient about them; DuckDB and other readers of
// the stored attributes are not.
func ControlByte(b []byte) int {
	// Eight bytes at a time (it runs over every byte of every event):
	// only a word holding some byte below 0x20 is looked at byte by byte.
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if hasByteBelow20(binary.LittleEndian.Uint64(b[i:])) {
			if j := controlByte(b[i : i+8]); j >= 0 {
				return i + j
			}
		}
	}
	if j := controlByte(b[i:]); j >= 0 {
		return i + j
	}
	return -1
}

func controlByte(b []byte) int {
	for i, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return i
		}
	}
	return -1
}

// hasByteBelow20 reports whether any byte of x is below 0x20 (the
// has-less-than bit trick, exact for "any byte").
func hasByteBelow20(x uint64) bool {
	const ones, high = 0x0101010101010101, 0x8080808080808080
	return (x-0x20*ones)&^x&high != 0
}

// surelyWithinLimits reports whether line cannot be over the attribute or
// depth limit whatever its structure: every key is followed by a ':' and
// every level of nesting opens with '{' or '[', so counting those bytes
// (inside strings too: an over-estimate) bounds both. Nearly every event is
// far below the limits, and three vectorised counts cost a fraction of
// walking the parsed tree (measure).
func (d *Decoder) surelyWithinLimits(line []byte) bool {
	if d.MaxAttributes > 0 && bytes.Count(line, colon) > d.MaxAttributes {
		return false
	}
	return d.MaxDepth <= 0 || bytes.Count(line, openBrace)+bytes.Count(line, openBracket) <= d.MaxDepth
}

var colon, openBrace, openBracket = []byte{':'}, []byte{'{'}, []byte{'['}

// measure checks v against the attribute and depth limits.
func (d *Decoder) measure(v *fastjson.Value, depth int, keys *int) error {
	if d.MaxDepth > 0 && depth > d.MaxDepth {
		return &LimitError{What: "levels of nesting", Limit: d.MaxDepth, Flag: "--max-depth"}
	}
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		var err error
		o.Visit(func(_ []byte, v *fastjson.Value) {
			if err != nil {
				return
			}
			*keys++
			if d.MaxAttributes > 0 && *keys > d.MaxAttributes {
				err = &LimitError{What: "attributes", Limit: d.MaxAttributes, Flag: "--max-attributes"}
				return
			}
			err = d.measure(v, depth+1, keys)
		})
		return err
	case fastjson.TypeArray:
		a, _ := v.Array()
		for _, e := range a {
			if err := d.measure(e, depth+1, keys); err != nil {
				return err
			}
		}
	}
	return nil
}

// Field names and the aliases accepted when the canonical name is absent, so
// events from common shippers (Vector, Fluent Bit, Logstash, pino, zap) need
// no remapping.
const (
	fieldTS      = "ts"
	fieldService = "service"
	fieldLevel   = "level"
	fieldMessage = "message"
	fieldHost    = "host"
	fieldTraceID = "trace_id"
	fieldSpanID  = "span_id"
	fieldTenant  = "tenant"
)

func canonical(k string) string {
	switch k {
	case "timestamp", "@timestamp", "time":
		return fieldTS
	case "msg":
		return fieldMessage
	case "severity", "lvl":
		return fieldLevel
	case "hostname":
		return fieldHost
	case "traceId", "trace.id":
		return fieldTraceID
	case "spanId", "span.id":
		return fieldSpanID
	case "service.name":
		return fieldService
	}
	return k
}

// Decode parses line (one JSON object) into e. arrival is used when the event
// has no timestamp. The returned error says what is wrong in words a sender
// can act on; e is then undefined. The strings of e point into d or into
// line, and stay valid until the next call or until line changes.
func (d *Decoder) Decode(line []byte, arrival time.Time, e *Event) error {
	// Nearly every line is a flat object of plain values: one pass over
	// its bytes decodes it (flat.go), and it takes no line with a control
	// character. Anything else, and every error, is the tree decoder's, so
	// both give one result for every line.
	if d.decodeFlat(line, arrival, e) {
		return nil
	}
	if i := ControlByte(line); i >= 0 {
		e.Reset()
		return fmt.Errorf("invalid JSON: raw control character 0x%02x at byte %d; escape it (\\u%04x)", line[i], i+1, line[i])
	}
	return d.decodeTree(line, arrival, e)
}

// decodeTree is Decode through fastjson's parse tree: nested values,
// escapes, scalars where strings are wanted, and every error.
func (d *Decoder) decodeTree(line []byte, arrival time.Time, e *Event) error {
	e.Reset()
	v, err := d.p.ParseBytes(line)
	if err != nil {
		return fmt.Errorf("invalid JSON: %s", trimErr(err))
	}
	obj, err := v.Object()
	if err != nil {
		return fmt.Errorf("want a JSON object, got %s", v.Type())
	}
	if (d.MaxAttributes > 0 || d.MaxDepth > 0) && !d.surelyWithinLimits(line) {
		keys := 0
		if err := d.measure(v, 0, &keys); err != nil {
			return err
		}
	}
	d.attrs = d.attrs[:0]
	var seen [8]bool // canonical fields already set, so an alias never overrides the real name
	var ferr error
	obj.Visit(func(key []byte, v *fastjson.Value) {
		if ferr != nil {
			return
		}
		k := b2s(key)
		slot, ck := slotOf(k)
		if slot < 0 || (seen[slot] && ck != k) {
			d.appendAttr(key, v)
			return
		}
		seen[slot] = true
		ferr = d.setField(e, slot, k, v)
	})
	if ferr != nil {
		return ferr
	}
	d.finish(e, arrival, seen[0])
	return nil
}

// slotOf is the field slot key k fills (ts 0, service 1, level 2, message
// 3, host 4, trace_id 5, span_id 6), -1 for an attribute, and k's
// canonical name.
func slotOf(k string) (int, string) {
	ck := canonical(k)
	switch ck {
	case fieldTS:
		return 0, ck
	case fieldService:
		return 1, ck
	case fieldLevel:
		return 2, ck
	case fieldMessage:
		return 3, ck
	case fieldHost:
		return 4, ck
	case fieldTraceID:
		return 5, ck
	case fieldSpanID:
		return 6, ck
	}
	return -1, ck
}

// finish completes a decoded e: the arrival time when the line had no
// timestamp, and the attributes gathered.
func (d *Decoder) finish(e *Event, arrival time.Time, hasTime bool) {
	if !hasTime {
		e.Time = arrival.UTC()
	}
	if len(d.attrs) > 0 {
		d.attrs = append(d.attrs, '}')
		e.Attrs = d.attrs
	}
}

func (d *Decoder) appendAttr(key []byte, v *fastjson.Value) {
	d.appendAttrKey(key)
	d.attrs = appendValue(d.attrs, v)
}

// appendAttrKey opens the attributes object or continues it, and appends
// `"key":`; both decoders (the parse tree's and flat.go's) write through it.
func (d *Decoder) appendAttrKey(key []byte) {
	if len(d.attrs) == 0 {
		d.attrs = append(d.attrs, '{')
	} else {
		d.attrs = append(d.attrs, ',')
	}
	d.attrs = AppendString(d.attrs, b2s(key))
	d.attrs = append(d.attrs, ':')
}

// appendValue re-encodes v rather than copying the sender's bytes: fastjson
// tolerates escapes and numbers that strict JSON readers (DuckDB, Kafka
// consumers) reject, and attributes must stay valid JSON downstream.
func appendValue(dst []byte, v *fastjson.Value) []byte {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		dst = append(dst, '{')
		first := true
		o.Visit(func(k []byte, v *fastjson.Value) {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = AppendString(dst, b2s(k))
			dst = append(dst, ':')
			dst = appendValue(dst, v)
		})
		return append(dst, '}')
	case fastjson.TypeArray:
		a, _ := v.Array()
		dst = append(dst, '[')
		for i, e := range a {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendValue(dst, e)
		}
		return append(dst, ']')
	case fastjson.TypeString:
		return AppendString(dst, b2s(v.GetStringBytes()))
	case fastjson.TypeNumber:
		start := len(dst)
		dst = v.MarshalTo(dst)
		if !validNumber(dst[start:]) {
			// Keep the sender's text rather than guess a value.
			n := AppendString(nil, b2s(dst[start:]))
			dst = append(dst[:start], n...)
		}
		return dst
	case fastjson.TypeTrue:
		return append(dst, "true"...)
	case fastjson.TypeFalse:
		return append(dst, "false"...)
	default:
		return append(dst, "null"...)
	}
}

// validNumber reports whether b follows the JSON number grammar.
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return false
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	} else {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == len(b)
}

func (d *Decoder) setField(e *Event, slot int, name string, v *fastjson.Value) error {
	if slot == 0 { // ts
		switch v.Type() {
		case fastjson.TypeString:
			return setString(e, slot, name, b2s(v.GetStringBytes()))
		case fastjson.TypeNumber:
			t, err := TimeFromEpoch(v.GetFloat64())
			if err != nil {
				return fmt.Errorf("field %q: %v", name, err)
			}
			e.Time = t
		default:
			return fmt.Errorf("field %q: want an RFC 3339 string or an epoch number, got %s", name, v.Type())
		}
		return nil
	}
	if slot == 2 && v.Type() == fastjson.TypeNumber { // numeric level
		l, ok := LevelFromNumber(v.GetFloat64())
		if !ok {
			return fmt.Errorf("field %q: unknown numeric level %s (want 10..60 as pino/bunyan)", name, v.String())
		}
		e.Level = l
		return nil
	}
	if v.Type() != fastjson.TypeString {
		if slot == 3 && (v.Type() == fastjson.TypeNumber || v.Type() == fastjson.TypeTrue || v.Type() == fastjson.TypeFalse) {
			// A scalar message is still a message; keep its text.
			e.Message = string(appendValue(nil, v))
			return nil
		}
		return fmt.Errorf("field %q: want a string, got %s", name, v.Type())
	}
	return setString(e, slot, name, b2s(v.GetStringBytes()))
}

// setString sets field slot (ts, or 1..7) of e from the string s.
func setString(e *Event, slot int, name, s string) error {
	switch slot {
	case 0:
		t, err := ParseTime(s)
		if err != nil {
			return fmt.Errorf("field %q: %v", name, err)
		}
		e.Time = t
	case 1:
		e.Service = s
	case 2:
		l, ok := ParseLevel(s)
		if !ok {
			return fmt.Errorf("field %q: unknown level %q (want trace, debug, info, warn, error or fatal)", name, truncate(s, 32))
		}
		e.Level = l
	case 3:
		e.Message = s
	case 4:
		e.Host = s
	case 5:
		e.TraceID = s
	case 6:
		e.SpanID = s
	case 7:
		e.Tenant = s
	}
	return nil
}

// DecodeRecord decodes the log-record form written by AppendJSON into e,
// copying every string into arena so e outlives data. Records written by
// other producers into the topic are accepted when they follow the same
// field names.
func DecodeRecord(p *fastjson.Parser, data []byte, arena *Arena, e *Event) error {
	e.Reset()
	v, err := p.ParseBytes(data)
	if err != nil {
		return fmt.Errorf("record is not JSON: %s", trimErr(err))
	}
	obj, err := v.Object()
	if err != nil {
		return fmt.Errorf("record is not a JSON object")
	}
	var ferr error
	obj.Visit(func(key []byte, v *fastjson.Value) {
		if ferr != nil {
			return
		}
		switch string(key) {
		case "ts":
			t, err := ParseTime(b2s(v.GetStringBytes()))
			if err != nil {
				ferr = fmt.Errorf("record field ts: %v", err)
			}
			e.Time = t
		case "service":
			e.Service = arena.String(v.GetStringBytes())
		case "level":
			e.Level, _ = ParseLevel(b2s(v.GetStringBytes()))
		case "message":
			e.Message = arena.String(v.GetStringBytes())
		case "host":
			e.Host = arena.String(v.GetStringBytes())
		case "trace_id":
			e.TraceID = arena.String(v.GetStringBytes())
		case "span_id":
			e.SpanID = arena.String(v.GetStringBytes())
		case "tenant":
			e.Tenant = arena.String(v.GetStringBytes())
		case "attrs":
			if v.Type() == fastjson.TypeObject {
				arena.scratch = appendValue(arena.scratch[:0], v)
				e.Attrs = arena.Bytes(arena.scratch)
			}
		}
	})
	if ferr == nil && e.Time.IsZero() {
		ferr = fmt.Errorf("record has no ts")
	}
	return ferr
}

// Arena hands out strings backed by large shared chunks, so decoding a batch
// of records costs a few allocations instead of several per record. Strings
// stay valid as long as anything references them; Reset only starts a new
// chunk, it never reuses memory still referenced.
type Arena struct {
	buf     []byte
	scratch []byte
}

const arenaChunk = 256 << 10

// Reserve makes room for n more bytes in one allocation, for a caller that
// knows about how much it will copy (the processor: its batch's record
// bytes). A fresh arena otherwise starts a 256 KiB chunk, which a batch of
// a hundred small records leaves 90 % unused (allocated and zeroed all the
// same: 2.5 % of the run's CPU with small requests, issue 12).
func (a *Arena) Reserve(n int) {
	if n > 0 && cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, n)
	}
}

// Bytes copies b into the arena and returns the copy.
func (a *Arena) Bytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	if len(b) > arenaChunk/4 {
		return append([]byte(nil), b...)
	}
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, arenaChunk)
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return a.buf[start:len(a.buf):len(a.buf)]
}

// String copies b into the arena and returns it as a string.
func (a *Arena) String(b []byte) string {
	c := a.Bytes(b)
	if len(c) == 0 {
		return ""
	}
	return unsafe.String(&c[0], len(c))
}

func b2s(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// trimErr shortens fastjson's errors, which quote the whole remaining input.
func trimErr(err error) string {
	s := err.Error()
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return strconv.Quote(s)[1 : len(strconv.Quote(s))-1]
}

// AppendValue appends v re-encoded as strict JSON (see appendValue), for
// decoders of other wire formats (the Elasticsearch bulk API) that build
// attributes from fastjson values.
func AppendValue(dst []byte, v *fastjson.Value) []byte { return appendValue(dst, v) }

// Measure checks v against d's attribute and depth limits as Decode does,
// for decoders of other wire formats that parse with fastjson themselves.
func (d *Decoder) Measure(v *fastjson.Value) error {
	keys := 0
	return d.measure(v, 0, &keys)
}
