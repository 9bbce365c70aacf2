package event

import (
	"fmt"
	"testing"
	"time"
)

// flatLines are lines the flat decoder must decode (flat objects of plain
// values) or hand to the tree decoder, each with the same result.
var flatLines = []string{
	string(sampleLine),
	`{}`,
	` { } `,
	`{"a":1}`,
	"{\t\"ts\" :\r\n\"2026-11-27T10:00:00Z\" , \"msg\":\"x\"}",
	`{"message":"m","msg":"alias after the canonical name: an attribute"}`,
	`{"msg":"alias first","message":"the canonical name overrides"}`,
	`{"message":"first","message":"second wins"}`,
	`{"level":"WARNING","severity":"error","lvl":"debug"}`,
	`{"level":"nope"}`,
	`{"ts":"yesterday"}`,
	`{"ts":1764237600123,"level":50}`,
	`{"ts":"1764237600.5","level":"30"}`,
	`{"message":42}`,
	`{"message":true,"service":null}`,
	`{"n":-0.5e+3,"m":0,"o":01,"p":1.5.3,"q":-,"r":1e,"s":.5,"t":+1}`,
	`{"n":1x}`,
	`{"b":true,"c":false,"d":null,"e":nul,"f":truex}`,
	`{"nan":NaN,"inf":-Inf}`,
	`{"esc":"a\"b","k\u0041":"v"}`,
	`{"nested":{"a":[1,2]},"x":"y"}`,
	`{"arr":[]}`,
	`{"a":"x",}`,
	`{"a":"x"}trailing`,
	`{"a":"x"} `,
	`{"a" "x"}`,
	`{"a":}`,
	`{"a":"unterminated}`,
	`{"a":"x"`,
	`["not","an","object"]`,
	`"just a string"`,
	"{\"tab\":\"a\tb\",\"nl\":\"a\nb\"}",
	"{\"bad-utf8\":\"\xff\xfe\",\"\xc3\":\"k\"}",
	"{\"ctl\":\"\x01\"}",
	"{\"\x1f\":1}",
	"{\"a\":1,\x00\"b\":2}",
	"{\"long\":\"0123456789abcdef\x7f\x19tail\"}",
	`{"":"empty key","tenant":"t1","trace.id":"abc","service.name":"svc"}`,
	`{"hostname":"h","host":"H","timestamp":"2026-11-27T10:00:00+02:00","@timestamp":"2026-11-27 10:00:00Z"}`,
}

// TestDecodeFlatMatchesTree: every line decodes (or fails) the same through
// Decode as through the tree decoder alone, and the flat path takes the
// lines it is meant for.
func TestDecodeFlatMatchesTree(t *testing.T) {
	for _, l := range flatLines {
		sameAsTree(t, []byte(l), 0, 0)
		sameAsTree(t, []byte(l), 3, 2)
	}
	var d Decoder
	var e Event
	for _, l := range []string{string(sampleLine), `{}`, `{"a":1,"b":"c","d":null}`} {
		if !d.decodeFlat([]byte(l), arrival, &e) {
			t.Errorf("%s: the flat decoder handed a flat line to the tree decoder", l)
		}
	}
	for _, l := range []string{`{"a":{"b":1}}`, `{"a":"\n"}`, `{"level":50}`, `{"ts":"x"}`} {
		if d.decodeFlat([]byte(l), arrival, &e) {
			t.Errorf("%s: the flat decoder took a line it must leave to the tree decoder", l)
		}
	}
}

// FuzzDecodeFlat: for any line and limits, Decode (flat path first) and
// the tree decoder give the same event or the same error.
func FuzzDecodeFlat(f *testing.F) {
	for _, l := range flatLines {
		f.Add([]byte(l), uint8(0))
	}
	f.Fuzz(func(t *testing.T, line []byte, limits uint8) {
		sameAsTree(t, line, int(limits&7), int(limits>>3&3))
	})
}

func sameAsTree(t *testing.T, line []byte, maxAttrs, maxDepth int) {
	t.Helper()
	d := Decoder{MaxAttributes: maxAttrs, MaxDepth: maxDepth}
	ref := Decoder{MaxAttributes: maxAttrs, MaxDepth: maxDepth}
	var got, want Event
	err := d.Decode(line, arrival, &got)
	var werr error
	if i := ControlByte(line); i >= 0 {
		// Decode refuses it before the tree decoder: the flat one must not take it.
		var flat Decoder
		if flat.decodeFlat(line, arrival, &want) {
			t.Fatalf("%q: the flat decoder took a line with a raw control character", line)
		}
		werr = fmt.Errorf("invalid JSON: raw control character 0x%02x at byte %d; escape it (\\u%04x)", line[i], i+1, line[i])
	} else {
		werr = ref.decodeTree(line, arrival, &want)
	}
	switch {
	case (err == nil) != (werr == nil):
		t.Fatalf("%q (limits %d/%d): Decode gives error %v, the tree decoder %v", line, maxAttrs, maxDepth, err, werr)
	case err != nil:
		if err.Error() != werr.Error() {
			t.Fatalf("%q: Decode says %q, the tree decoder %q", line, err, werr)
		}
	case !sameEvent(&got, &want) || (got.Attrs == nil) != (want.Attrs == nil):
		t.Fatalf("%q (limits %d/%d):\nDecode       %+v attrs %s\ntree decoder %+v attrs %s", line, maxAttrs, maxDepth, got, got.Attrs, want, want.Attrs)
	}
}

// BenchmarkDecodePath compares the two decoders on a loadgen-shaped line.
func BenchmarkDecodePath(b *testing.B) {
	now := time.Now()
	for _, c := range []struct {
		name   string
		decode func(*Decoder, []byte, *Event) error
	}{
		{"flat", func(d *Decoder, l []byte, e *Event) error { return d.Decode(l, now, e) }},
		{"tree", func(d *Decoder, l []byte, e *Event) error { return d.decodeTree(l, now, e) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			d := Decoder{MaxAttributes: 128, MaxDepth: 16}
			var e Event
			b.SetBytes(int64(len(sampleLine)))
			b.ReportAllocs()
			for b.Loop() {
				if err := c.decode(&d, sampleLine, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzParseTime: whatever parseUTC accepts, time.Parse reads as the same
// instant, and ParseTime's answer does not depend on which one read it.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-11-27T10:00:00.123456789Z", "2026-11-27T10:00:00Z", "2024-02-29T23:59:59.5Z",
		"2026-02-29T00:00:00Z", "2026-11-27T24:00:00Z", "2026-11-27T10:00:00.1234567891Z", "2026-11-27T10:00:00,5Z",
		"1969-12-31T23:59:59Z", "2200-01-01T00:00:00.000000001Z", "2026-11-27 10:00:00Z", "2026-11-27T10:00:00+02:00", "1764237600"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseUTC(s)
		if !ok {
			return
		}
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("%q: parseUTC gives %v, time.Parse refuses it: %v", s, got, err)
		}
		if got != want.UTC() {
			t.Fatalf("%q: parseUTC gives %v, time.Parse %v", s, got, want.UTC())
		}
	})
}
