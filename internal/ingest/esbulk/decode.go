package esbulk

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/valyala/fastjson"

	"github.com/wirelog/wirelog/internal/event"
)

// Item is one action of a bulk body and its outcome.
type Item struct {
	Op    string // "index", "create", "delete", "update"
	Index string // _index of the action line, else the URL's
	ID    string // _id of the action line; "" when the sender gave none
	// Status is 0 while the item is usable; otherwise the per-item status
	// (400) and ErrType/Reason are what the answer lists.
	Status  int
	ErrType string
	Reason  string
	Reject  string // metric reason label
}

// ErrMalformed is a bulk body that cannot be read as action/source pairs:
// Elasticsearch refuses the whole request then, and so do we, since no
// item after a broken action line can be told apart from its source.
var ErrMalformed = errors.New("malformed bulk body")

// Decoder reads a bulk body action by action. Strings in an Item and in the
// filled event point into the Decoder and the body and stay valid only until
// the next call to Next. Not safe for concurrent use.
type Decoder struct {
	Mapping      Mapping
	DefaultIndex string // the {index} of /{index}/_bulk
	MaxDocBytes  int    // bound on one source line (--max-line-bytes)
	// MaxAttributes and MaxDepth bound one document's keys (nested ones
	// included) and nesting (--max-attributes, --max-depth); 0: unbounded.
	MaxAttributes, MaxDepth int

	body  []byte
	line  int
	ap    fastjson.Parser // action lines
	sp    fastjson.Parser // source lines
	attrs []byte
	path  []byte
	key   []byte
	strs  []byte // kept field names, messages of non-string values
	best  [numSlots]cand
	lim   event.Decoder // only its limits: Measure
	set   uint16        // bit i: best[i] holds this document's field
}

// cand is a document field that may fill a named event field; the best
// ranked wins and the others are kept as attributes.
type cand struct {
	slot, rank int
	key        string
	v          *fastjson.Value
}

// Event slots filled from named fields.
const (
	slotMsg = iota
	slotTime
	slotService
	slotHost
	slotLevel
	slotTrace
	slotSpan
	slotTenant
	numSlots
)

// Reset starts a new body.
func (d *Decoder) Reset(body []byte) {
	d.body, d.line = body, 0
}

// nextLine returns the next non-blank line.
func (d *Decoder) nextLine() ([]byte, bool) {
	for len(d.body) > 0 {
		d.line++
		var l []byte
		if i := bytes.IndexByte(d.body, '\n'); i >= 0 {
			l, d.body = d.body[:i], d.body[i+1:]
		} else {
			l, d.body = d.body, nil
		}
		if l = bytes.TrimSpace(l); len(l) > 0 {
			return l, true
		}
	}
	return nil, false
}

// Next reads the next action. done is true at the end of the body. For an
// index or create action with a usable source, it.Status is 0 and e holds
// the event, key its partition key (nil: the native rule). err is
// ErrMalformed (wrapped with the line) when the body cannot be read on.
func (d *Decoder) Next(arrival time.Time, e *event.Event) (it Item, key []byte, done bool, err error) {
	l, ok := d.nextLine()
	if !ok {
		return it, nil, true, nil
	}
	actLine := d.line
	// The metadata-free actions most shippers send need no parse.
	switch string(l) {
	case `{"create":{}}`:
		it.Op, it.Index = "create", d.DefaultIndex
		return d.source(arrival, e, it, actLine)
	case `{"index":{}}`:
		it.Op, it.Index = "index", d.DefaultIndex
		return d.source(arrival, e, it, actLine)
	}
	v, perr := d.ap.ParseBytes(l)
	if perr != nil {
		return it, nil, false, fmt.Errorf("%w: line %d is not a JSON action line: %s", ErrMalformed, actLine, short(perr.Error()))
	}
	obj, perr := v.Object()
	if perr != nil || obj.Len() != 1 {
		return it, nil, false, fmt.Errorf("%w: line %d: an action line is one object with one key (index, create, delete or update)", ErrMalformed, actLine)
	}
	var meta *fastjson.Value
	obj.Visit(func(k []byte, v *fastjson.Value) {
		it.Op = b2s(k)
		meta = v
	})
	switch it.Op {
	case "index", "create", "delete", "update":
	default:
		return it, nil, false, fmt.Errorf("%w: line %d: unknown action [%.40s]; want index, create, delete or update", ErrMalformed, actLine, it.Op)
	}
	if meta.Type() != fastjson.TypeObject {
		return it, nil, false, fmt.Errorf("%w: line %d: the %s action's metadata must be an object", ErrMalformed, actLine, it.Op)
	}
	it.Index = d.DefaultIndex
	if s := meta.GetStringBytes("_index"); s != nil {
		it.Index = b2s(s)
	}
	if s := meta.GetStringBytes("_id"); s != nil {
		it.ID = b2s(s)
	}
	if it.Op == "delete" { // no source line follows
		it.fail(400, "illegal_argument_exception", "wirelog stores logs append-only: the delete action is not supported", "unsupported_action")
		return it, nil, false, nil
	}
	return d.source(arrival, e, it, actLine)
}

// source reads the source line of an index, create or update action.
func (d *Decoder) source(arrival time.Time, e *event.Event, it Item, actLine int) (Item, []byte, bool, error) {
	src, ok := d.nextLine()
	if !ok {
		return it, nil, false, fmt.Errorf("%w: the %s action on line %d has no source line after it", ErrMalformed, it.Op, actLine)
	}
	if it.Op == "update" {
		it.fail(400, "illegal_argument_exception", "wirelog stores logs append-only: the update action is not supported; use index or create", "unsupported_action")
		return it, nil, false, nil
	}
	if d.MaxDocBytes > 0 && len(src) > d.MaxDocBytes {
		it.fail(400, "illegal_argument_exception", fmt.Sprintf("document of %d bytes is over the limit of %d bytes (--max-line-bytes)", len(src), d.MaxDocBytes), "too_large")
		return it, nil, false, nil
	}
	key, err := d.decodeSource(src, arrival, e, &it)
	return it, key, false, err
}

func (it *Item) fail(status int, typ, reason, metric string) {
	it.Status, it.ErrType, it.Reason, it.Reject = status, typ, reason, metric
}

// decodeSource maps one source document onto e. A document that cannot be
// used fails its item only.
func (d *Decoder) decodeSource(src []byte, arrival time.Time, e *event.Event, it *Item) ([]byte, error) {
	e.Reset()
	v, err := d.sp.ParseBytes(src)
	if err != nil {
		it.fail(400, "document_parsing_exception", "failed to parse: the document is not valid JSON: "+short(err.Error()), "invalid_json")
		return nil, nil
	}
	if v.Type() != fastjson.TypeObject {
		it.fail(400, "document_parsing_exception", "failed to parse: the document must be a JSON object, got "+v.Type().String(), "invalid_document")
		return nil, nil
	}
	if d.MaxAttributes > 0 || d.MaxDepth > 0 {
		d.lim.MaxAttributes, d.lim.MaxDepth = d.MaxAttributes, d.MaxDepth
		if err := d.lim.Measure(v); err != nil {
			it.fail(400, "document_parsing_exception", err.Error(), "too_large")
			return nil, nil
		}
	}
	d.attrs, d.path, d.key, d.strs = d.attrs[:0], d.path[:0], d.key[:0], d.strs[:0]
	d.set = 0 // d.best[i] is valid only when bit i is set: no zeroing per document
	// Stream field values, in the order the mapping lists them, so the key
	// does not depend on the order of the document's fields.
	var streamVals [maxMappingFields]*fastjson.Value
	d.walk(v, func(path string, v *fastjson.Value) {
		for i, f := range d.Mapping.StreamFields {
			if f == path && i < len(streamVals) {
				streamVals[i] = v
			}
		}
		slot, rank := d.classify(path)
		if slot < 0 {
			d.appendAttr(path, v)
			return
		}
		b := &d.best[slot]
		had := d.set&(1<<slot) != 0
		if had && b.rank <= rank {
			d.appendAttr(path, v) // a better-ranked field already names it
			return
		}
		if had {
			d.appendAttr(b.key, b.v)
		}
		d.set |= 1 << slot
		// path lives in d.path, which the walk reuses: keep a copy.
		start := len(d.strs)
		d.strs = append(d.strs, path...)
		*b = cand{slot, rank, b2s(d.strs[start:]), v}
	})
	for i := range d.best {
		if d.set&(1<<i) == 0 {
			continue
		}
		if msg := d.setField(e, d.best[i]); msg != "" {
			it.fail(400, "document_parsing_exception", msg, "invalid_field")
			return nil, nil
		}
	}
	if d.set&(1<<slotTime) == 0 {
		e.Time = arrival.UTC()
	}
	if len(d.attrs) > 0 {
		d.attrs = append(d.attrs, '}')
		e.Attrs = d.attrs
	}
	keyed := false
	for _, sv := range streamVals {
		if sv == nil {
			continue
		}
		if keyed {
			d.key = append(d.key, ',')
		}
		keyed = true
		d.key = appendText(d.key, sv)
	}
	if !keyed {
		return nil, nil
	}
	return d.key, nil
}

// walk calls fn for every leaf of the object v with its dotted path; arrays
// are leaves.
func (d *Decoder) walk(v *fastjson.Value, fn func(string, *fastjson.Value)) {
	o, _ := v.Object()
	o.Visit(func(k []byte, v *fastjson.Value) {
		n := len(d.path)
		if n > 0 {
			d.path = append(d.path, '.')
		}
		d.path = append(d.path, k...)
		if v.Type() == fastjson.TypeObject {
			d.walk(v, fn)
		} else {
			fn(b2s(d.path), v) // valid until the walk moves on
		}
		d.path = d.path[:n]
	})
}

// classify maps a dotted field name onto an event slot and a rank (lower
// wins), or -1.
func (d *Decoder) classify(path string) (slot, rank int) {
	for i, f := range d.Mapping.MsgFields {
		if f == path {
			return slotMsg, i
		}
	}
	for i, f := range d.Mapping.TimeFields {
		if f == path {
			return slotTime, i
		}
	}
	switch path {
	case "service.name":
		return slotService, 0
	case "service":
		return slotService, 1
	case "host.name":
		return slotHost, 0
	case "host.hostname":
		return slotHost, 1
	case "host":
		return slotHost, 2
	case "hostname":
		return slotHost, 3
	case "log.level":
		return slotLevel, 0
	case "level":
		return slotLevel, 1
	case "severity":
		return slotLevel, 2
	case "trace.id":
		return slotTrace, 0
	case "trace_id":
		return slotTrace, 1
	case "traceId":
		return slotTrace, 2
	case "span.id":
		return slotSpan, 0
	case "span_id":
		return slotSpan, 1
	case "spanId":
		return slotSpan, 2
	case "tenant":
		return slotTenant, 0
	}
	return -1, 0
}

// setField fills e from the winning candidate of a slot; it returns why
// the document is unusable, or "".
func (d *Decoder) setField(e *event.Event, c cand) string {
	v := c.v
	switch c.slot {
	case slotTime:
		var t time.Time
		var err error
		switch v.Type() {
		case fastjson.TypeString:
			t, err = event.ParseTime(b2s(v.GetStringBytes()))
		case fastjson.TypeNumber:
			t, err = event.TimeFromEpoch(v.GetFloat64())
		default:
			err = fmt.Errorf("want an RFC 3339 string or an epoch number, got %s", v.Type())
		}
		if err != nil {
			return fmt.Sprintf("failed to parse field [%s] of type [date]: %v", c.key, err)
		}
		e.Time = t
		return ""
	case slotLevel:
		var ok bool
		switch v.Type() {
		case fastjson.TypeString:
			e.Level, ok = event.ParseLevel(b2s(v.GetStringBytes()))
		case fastjson.TypeNumber:
			e.Level, ok = event.LevelFromNumber(v.GetFloat64())
		}
		if !ok {
			// Elasticsearch would index any level text: keep it as an
			// attribute rather than refuse the document.
			e.Level = event.LevelUnknown
			d.appendAttr(c.key, v)
		}
		return ""
	}
	s := d.text(v)
	switch c.slot {
	case slotMsg:
		e.Message = s
	case slotService:
		e.Service = s
	case slotHost:
		e.Host = s
	case slotTrace:
		e.TraceID = s
	case slotSpan:
		e.SpanID = s
	case slotTenant:
		e.Tenant = s
	}
	return ""
}

// text is a leaf's value as a string: strings as they are, anything else
// as its JSON.
func (d *Decoder) text(v *fastjson.Value) string {
	if v.Type() == fastjson.TypeString {
		return b2s(v.GetStringBytes())
	}
	start := len(d.strs)
	d.strs = event.AppendValue(d.strs, v)
	return b2s(d.strs[start:])
}

func appendText(dst []byte, v *fastjson.Value) []byte {
	if v.Type() == fastjson.TypeString {
		return append(dst, v.GetStringBytes()...)
	}
	return event.AppendValue(dst, v)
}

func (d *Decoder) appendAttr(key string, v *fastjson.Value) {
	if len(d.attrs) == 0 {
		d.attrs = append(d.attrs, '{')
	} else {
		d.attrs = append(d.attrs, ',')
	}
	d.attrs = event.AppendString(d.attrs, key)
	d.attrs = append(d.attrs, ':')
	d.attrs = event.AppendValue(d.attrs, v)
}

func short(s string) string {
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func b2s(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
