package event

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// recordLines are senders' lines whose binary and JSON records must give
// the processor the same event.
var recordLines = []string{
	string(sampleLine),
	`{"message":"no time, no level"}`,
	`{}`,
	`{"ts":1764237600123,"level":50,"msg":"x","a":{"b":[1,"\u0000",true,null,-1.5e3]}}`,
	"{\"service\":\"\xff\xfe\",\"message\":\"\\ud800 lone surrogate\",\"host\":\"h\\u00e9\",\"x\xffy\":\"\xc3\",\"n\":{\"\xd4\":[\"\xe2\x82\"]}}", // invalid UTF-8 bytes
	`{"k\\ufffd":"a literal backslash-u-fffd, not the escape","\ufffd":"the escape itself"}`,
	`{"ts":"2199-12-31T23:59:59.999999999Z","level":"FATAL","message":"line\nbreak \"quoted\" \\ tab\t"}`,
	`{"ts":"1970-01-01T00:00:00Z","level":"trace","trace_id":"t","span_id":"s","tenant":"not the tenant field"}`,
	`{"timestamp":"2026-11-27T10:00:00+05:30","severity":"warning","hostname":"db-1","traceId":"abc","spanId":"def","service.name":"svc"}`,
	`{"message":12.5,"level":"unknown-level-is-an-error"}`,
	`{"message":true,"attrs":{"nested":{"deep":[{"k":"v"}]}},"empty":{}}`,
}

// recordPair decodes line as ingest does and returns the event the
// processor gets from its JSON record and from its binary record.
func recordPair(t testing.TB, line []byte) (fromJSON, fromBinary Event, ok bool) {
	var d Decoder
	var e Event
	if err := d.Decode(line, arrival, &e); err != nil {
		return fromJSON, fromBinary, false
	}
	e.Tenant = "tenant-a" // set by auth at ingest
	var p fastjson.Parser
	var a Arena
	jrec := AppendJSON(nil, &e)
	if err := DecodeRecord(&p, jrec, &a, &fromJSON); err != nil {
		t.Fatalf("JSON record %q: %v", jrec, err)
	}
	if !BinaryFits(&e) {
		t.Fatalf("event of %q does not fit a binary record", line)
	}
	brec := AppendRecord(nil, &e, RecordBinary)
	if !IsBinaryRecord(brec) {
		t.Fatalf("AppendRecord wrote %q, not a binary record", brec)
	}
	size, err := DecodeBinaryRecord(brec, &a, &fromBinary)
	if err != nil {
		t.Fatalf("binary record %q: %v", brec, err)
	}
	if size != len(jrec) {
		t.Fatalf("%q: binary record reports the JSON record's size as %d, it is %d (%s)", line, size, len(jrec), jrec)
	}
	return fromJSON, fromBinary, true
}

func sameEvent(a, b *Event) bool {
	return a.Time.Equal(b.Time) && a.Service == b.Service && a.Level == b.Level && a.Message == b.Message &&
		a.Host == b.Host && a.TraceID == b.TraceID && a.SpanID == b.SpanID && a.Tenant == b.Tenant &&
		bytes.Equal(a.Attrs, b.Attrs)
}

func TestBinaryRecordMatchesJSON(t *testing.T) {
	decoded := 0
	for _, line := range recordLines {
		j, b, ok := recordPair(t, []byte(line))
		if !ok {
			continue
		}
		decoded++
		if !sameEvent(&j, &b) {
			t.Errorf("%s:\n JSON record gives   %+v attrs %s\n binary record gives %+v attrs %s", line, j, j.Attrs, b, b.Attrs)
		}
		for _, s := range []string{b.Service, b.Message, b.Host, b.TraceID, b.SpanID, b.Tenant} {
			if !utf8.ValidString(s) {
				t.Errorf("%s: binary record gave invalid UTF-8 %q", line, s)
			}
		}
	}
	if decoded < len(recordLines)-1 {
		t.Fatalf("only %d of %d lines decoded; the corpus no longer tests the records", decoded, len(recordLines))
	}
}

// TestBinaryRecordIsSmaller: the point of the format is less work; a
// binary record must not be larger than the JSON one for a typical event.
func TestBinaryRecordIsSmaller(t *testing.T) {
	var d Decoder
	var e Event
	if err := d.Decode(sampleLine, arrival, &e); err != nil {
		t.Fatal(err)
	}
	j, b := AppendJSON(nil, &e), AppendBinary(nil, &e)
	if len(b) >= len(j) {
		t.Fatalf("binary record %d bytes, JSON %d", len(b), len(j))
	}
}

func TestAppendRecordFallsBackToJSON(t *testing.T) {
	e := Event{Time: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), Message: "far future"}
	rec := AppendRecord(nil, &e, RecordBinary)
	if rec[0] != '{' {
		t.Fatalf("an event past 2262 was written as %q, want a JSON record", rec)
	}
	e.Time = time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	if rec := AppendRecord(nil, &e, RecordBinary); rec[0] != '{' {
		t.Fatalf("an event before 1970 was written as %q, want a JSON record", rec)
	}
	e.Time = arrival
	if rec := AppendRecord(nil, &e, RecordJSON); rec[0] != '{' {
		t.Fatalf("RecordJSON wrote %q", rec)
	}
}

func TestBinaryRecordRefusesDamage(t *testing.T) {
	var d Decoder
	var e Event
	if err := d.Decode(sampleLine, arrival, &e); err != nil {
		t.Fatal(err)
	}
	good := AppendBinary(nil, &e)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := map[string][]byte{
		"empty":          {},
		"magic only":     {0, 'E'},
		"header cut":     good[:10],
		"field cut":      good[:len(good)-5],
		"version 2":      mut(func(b []byte) []byte { b[2] = 2; return b }),
		"unknown flag":   mut(func(b []byte) []byte { b[3] = 0x80; return b }),
		"level 7":        mut(func(b []byte) []byte { b[12] = 7; return b }),
		"negative time":  mut(func(b []byte) []byte { binary.BigEndian.PutUint64(b[4:], 1<<63); return b }),
		"trailing bytes": mut(func(b []byte) []byte { return append(b, 'x') }),
		"huge length":    append(append([]byte(nil), good[:13]...), 0xff, 0xff, 0xff, 0xff, 0x0f),
		"attrs not JSON": AppendBinary(nil, &Event{Time: arrival, Attrs: []byte(`[1,2]`)}),
	}
	var a Arena
	for name, rec := range cases {
		var out Event
		_, err := DecodeBinaryRecord(rec, &a, &out)
		if err == nil {
			t.Errorf("%s: decoded %+v, want an error", name, out)
		} else if !errors.Is(err, ErrBinaryRecord) {
			t.Errorf("%s: error %v does not wrap ErrBinaryRecord", name, err)
		}
	}
}

// TestBinaryRecordOutlivesInput: the event's strings are the arena's, not
// the record's, so the consumer may reuse its buffer.
func TestBinaryRecordOutlivesInput(t *testing.T) {
	var d Decoder
	var e Event
	if err := d.Decode(sampleLine, arrival, &e); err != nil {
		t.Fatal(err)
	}
	rec := AppendBinary(nil, &e)
	var a Arena
	var out Event
	if _, err := DecodeBinaryRecord(rec, &a, &out); err != nil {
		t.Fatal(err)
	}
	want := out.Message + string(out.Attrs)
	for i := range rec {
		rec[i] = 'X'
	}
	if got := out.Message + string(out.Attrs); got != want {
		t.Fatalf("overwriting the record changed the event: %q", got)
	}
}

// FuzzBinaryRecord feeds arbitrary bytes to the processor's binary record
// decoder: it must never panic, and what it accepts has valid UTF-8 text,
// an attrs object or none, and re-encodes to a record that decodes to the
// same event.
func FuzzBinaryRecord(f *testing.F) {
	var d Decoder
	for _, l := range recordLines {
		var e Event
		if d.Decode([]byte(l), arrival, &e) == nil {
			f.Add(AppendBinary(nil, &e))
		}
	}
	f.Add([]byte{0, 'E', 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 'E', 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 1, 0xff, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, rec []byte) {
		var a Arena
		var e Event
		if _, err := DecodeBinaryRecord(rec, &a, &e); err != nil {
			return
		}
		for _, s := range []string{e.Service, e.Message, e.Host, e.TraceID, e.SpanID, e.Tenant} {
			if !utf8.ValidString(s) {
				t.Fatalf("accepted %q with invalid UTF-8 text %q", rec, s)
			}
		}
		if len(e.Attrs) > 0 && (e.Attrs[0] != '{' || e.Attrs[len(e.Attrs)-1] != '}') {
			t.Fatalf("accepted %q with attrs %q", rec, e.Attrs)
		}
		again := AppendBinary(nil, &e)
		var e2 Event
		if _, err := DecodeBinaryRecord(again, &a, &e2); err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", again, err)
		}
		if !sameEvent(&e, &e2) {
			t.Fatalf("round trip changed %+v into %+v", e, e2)
		}
	})
}

func BenchmarkDecodeBinaryRecord(b *testing.B) {
	var d Decoder
	var e Event
	if err := d.Decode(sampleLine, time.Now(), &e); err != nil {
		b.Fatal(err)
	}
	rec := AppendBinary(nil, &e)
	var a Arena
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBinaryRecord(rec, &a, &e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeNormalizeBinary is BenchmarkDecodeNormalize writing the
// binary record instead of the JSON one.
func BenchmarkDecodeNormalizeBinary(b *testing.B) {
	var d Decoder
	var e Event
	var out []byte
	b.SetBytes(int64(len(sampleLine)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Decode(sampleLine, time.Now(), &e); err != nil {
			b.Fatal(err)
		}
		out = AppendRecord(out[:0], &e, RecordBinary)
	}
}
