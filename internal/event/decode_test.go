package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

var arrival = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func TestDecodeFieldsAndAttributes(t *testing.T) {
	var d Decoder
	var e Event
	line := `{"ts":"2026-11-27T10:00:00.123456789+01:00","service":"checkout","level":"WARNING","message":"card declined","host":"web-1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","status":402,"route":"/pay","nested":{"a":[1,2]}}`
	if err := d.Decode([]byte(line), arrival, &e); err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 11, 27, 9, 0, 0, 123456789, time.UTC)
	if !e.Time.Equal(want) || e.Service != "checkout" || e.Level != LevelWarn || e.Message != "card declined" ||
		e.Host != "web-1" || e.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || e.SpanID != "00f067aa0ba902b7" {
		t.Fatalf("decoded %+v", e)
	}
	var attrs map[string]any
	if err := json.Unmarshal(e.Attrs, &attrs); err != nil {
		t.Fatalf("attrs %s: %v", e.Attrs, err)
	}
	if attrs["status"] != float64(402) || attrs["route"] != "/pay" || len(attrs) != 3 {
		t.Fatalf("attrs = %v", attrs)
	}
}

func TestDecodeTimestamps(t *testing.T) {
	cases := map[string]time.Time{
		`{"ts":1764237600}`:                    time.Unix(1764237600, 0),
		`{"ts":1764237600.5}`:                  time.Unix(1764237600, 5e8),
		`{"ts":1764237600123}`:                 time.UnixMilli(1764237600123),
		`{"ts":1764237600123456}`:              time.UnixMicro(1764237600123456),
		`{"ts":1764237600123456789}`:           time.Unix(0, 1764237600123456789),
		`{"ts":"1764237600123"}`:               time.UnixMilli(1764237600123),
		`{"ts":"2026-11-27 10:00:00Z"}`:        time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
		`{"timestamp":"2026-11-27T10:00:00Z"}`: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
		`{"message":"no time"}`:                arrival,
	}
	var d Decoder
	for in, want := range cases {
		var e Event
		if err := d.Decode([]byte(in), arrival, &e); err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		// Epoch floats lose sub-microsecond precision; senders using ns send integers.
		if diff := e.Time.Sub(want); diff > time.Microsecond || diff < -time.Microsecond {
			t.Errorf("%s: time %v, want %v", in, e.Time, want)
		}
	}
}

func TestDecodeLevels(t *testing.T) {
	cases := map[string]Level{
		"trace": LevelTrace, "DEBUG": LevelDebug, "info": LevelInfo, "Notice": LevelInfo,
		"warning": LevelWarn, "err": LevelError, "crit": LevelFatal, "emerg": LevelFatal, "30": LevelInfo,
	}
	var d Decoder
	for in, want := range cases {
		var e Event
		if err := d.Decode([]byte(`{"level":"`+in+`"}`), arrival, &e); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if e.Level != want {
			t.Errorf("level %q = %v, want %v", in, e.Level, want)
		}
	}
	var e Event
	if err := d.Decode([]byte(`{"level":50}`), arrival, &e); err != nil || e.Level != LevelError {
		t.Errorf("pino 50 = %v, %v", e.Level, err)
	}
}

func TestDecodeRejectsWithReasons(t *testing.T) {
	cases := map[string]string{
		`{"service":`:         "invalid JSON",
		`[1,2]`:               "want a JSON object",
		`"just a string"`:     "want a JSON object",
		`{"service":42}`:      `field "service": want a string`,
		`{"level":"loud"}`:    `unknown level`,
		`{"ts":"yesterday"}`:  `field "ts"`,
		`{"ts":-5}`:           `field "ts"`,
		`{"ts":true}`:         `field "ts"`,
		`{"message":{"a":1}}`: `field "message": want a string`,
	}
	var d Decoder
	for in, want := range cases {
		var e Event
		err := d.Decode([]byte(in), arrival, &e)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to mention %q", in, err, want)
		}
	}
}

func TestAliasNeverOverridesCanonical(t *testing.T) {
	var d Decoder
	var e Event
	if err := d.Decode([]byte(`{"message":"real","msg":"alias"}`), arrival, &e); err != nil {
		t.Fatal(err)
	}
	if e.Message != "real" || !strings.Contains(string(e.Attrs), `"msg":"alias"`) {
		t.Fatalf("message %q attrs %s", e.Message, e.Attrs)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	var d Decoder
	var in Event
	line := `{"ts":"2026-11-27T10:00:00.5Z","service":"a\"b","level":"error","message":"line1\nline2 \u00e9 \u2028","host":"h","trace_id":"t","span_id":"s","tenant":"acme","k":[1,{"x":null}]}`
	if err := d.Decode([]byte(line), arrival, &in); err != nil {
		t.Fatal(err)
	}
	rec := AppendJSON(nil, &in)
	if !json.Valid(rec) {
		t.Fatalf("record is not valid JSON: %s", rec)
	}
	var p fastjson.Parser
	var a Arena
	var out Event
	if err := DecodeRecord(&p, rec, &a, &out); err != nil {
		t.Fatal(err)
	}
	if !out.Time.Equal(in.Time) || out.Service != in.Service || out.Level != in.Level || out.Message != in.Message ||
		out.Host != in.Host || out.TraceID != in.TraceID || out.SpanID != in.SpanID || out.Tenant != in.Tenant ||
		string(out.Attrs) != string(in.Attrs) {
		t.Fatalf("round trip:\n in  %+v\n out %+v", in, out)
	}
}

func TestAppendStringEscapesInvalidUTF8(t *testing.T) {
	got := AppendString(nil, "a\xffb\x01\"")
	if !json.Valid(got) {
		t.Fatalf("invalid JSON %q", got)
	}
	var s string
	_ = json.Unmarshal(got, &s)
	if s != "a\ufffdb\x01\"" {
		t.Fatalf("got %q", s)
	}
}

func TestArenaStringsSurviveReuse(t *testing.T) {
	var a Arena
	var strs []string
	for i := 0; i < 10000; i++ {
		strs = append(strs, a.String([]byte(strings.Repeat("x", i%100)+"|")))
	}
	for i, s := range strs {
		if s != strings.Repeat("x", i%100)+"|" {
			t.Fatalf("string %d corrupted: %q", i, s)
		}
	}
}

// TestNeedsEscape8MatchesBytewise checks the word-at-a-time test against the
// byte-by-byte rule for every byte value in every lane.
func TestNeedsEscape8MatchesBytewise(t *testing.T) {
	for lane := 0; lane < 8; lane++ {
		for c := 0; c < 256; c++ {
			b := []byte("abcdefgh")
			b[lane] = byte(c)
			want := c < 0x20 || c == '"' || c == '\\' || c >= 0x80
			x := uint64(0)
			for i := 7; i >= 0; i-- {
				x = x<<8 | uint64(b[i])
			}
			if got := needsEscape8(x); got != want {
				t.Fatalf("lane %d byte %#x: needsEscape8 = %v, want %v", lane, c, got, want)
			}
		}
	}
}

// TestControlByte checks the word-at-a-time scan against the plain one at
// every position and length.
func TestControlByte(t *testing.T) {
	plain := func(b []byte) int {
		for i, c := range b {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return i
			}
		}
		return -1
	}
	base := []byte(`{"message":"tab	and é and \n escaped","x":1}`)
	for n := 0; n <= len(base); n++ {
		for pos := -1; pos < n; pos++ {
			for _, c := range []byte{0, 0x1f, '\t', '\n', '\r', 0x20, 0x7f, 0x80, 0xff} {
				b := append([]byte(nil), base[:n]...)
				if pos >= 0 {
					b[pos] = c
				}
				if got, want := ControlByte(b), plain(b); got != want {
					t.Fatalf("ControlByte(%q) = %d, want %d", b, got, want)
				}
			}
		}
	}
}

// TestDecodeLimitsAtTheBound: the attribute and depth limits hold exactly
// at their bounds, with and without the byte-count shortcut (lines whose
// strings hold ':' and '{' make the count over-estimate and the tree walk
// decide).
func TestDecodeLimitsAtTheBound(t *testing.T) {
	nest := func(levels int, pad string) string {
		return `{"message":"` + pad + `","a":` + strings.Repeat(`[`, levels-1) + `1` + strings.Repeat(`]`, levels-1) + `}`
	}
	keys := func(n int, pad string) string {
		var b strings.Builder
		b.WriteString(`{"message":"` + pad + `"`)
		for i := 1; i < n; i++ {
			fmt.Fprintf(&b, `,"k%d":1`, i)
		}
		return b.String() + "}"
	}
	for _, pad := range []string{"", strings.Repeat(":{[", 50)} {
		cases := []struct {
			line string
			ok   bool
		}{
			{nest(4, pad), true}, // the value 1 is at depth 4
			{nest(5, pad), false},
			{keys(6, pad), true}, // message + 5 keys
			{keys(7, pad), false},
		}
		for _, c := range cases {
			d := Decoder{MaxDepth: 4, MaxAttributes: 6}
			var e Event
			err := d.Decode([]byte(c.line), arrival, &e)
			if c.ok != (err == nil) || (err != nil && !errors.Is(err, ErrLimit)) {
				t.Errorf("%s: error %v, want ok=%v", c.line, err, c.ok)
			}
		}
	}
}

// TestArenaReserve: a reserved arena holds exactly what was reserved in
// one chunk, keeps every copy intact when it grows past it, and a
// reservation never moves strings already handed out.
func TestArenaReserve(t *testing.T) {
	var a Arena
	a.Reserve(100)
	if cap(a.buf) != 100 {
		t.Fatalf("reserved chunk of %d bytes, want 100", cap(a.buf))
	}
	s1 := a.String([]byte(strings.Repeat("a", 60)))
	s2 := a.String([]byte(strings.Repeat("b", 40)))
	if cap(a.buf) != 100 {
		t.Fatalf("100 bytes in a 100-byte reservation started a new chunk (cap %d)", cap(a.buf))
	}
	a.Reserve(10)
	s3 := a.String([]byte("c"))
	if s1 != strings.Repeat("a", 60) || s2 != strings.Repeat("b", 40) || s3 != "c" {
		t.Fatalf("arena strings changed: %q %q %q", s1, s2, s3)
	}
}
