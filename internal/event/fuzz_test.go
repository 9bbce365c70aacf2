package event

import (
	"encoding/json"
	"testing"

	"github.com/valyala/fastjson"
)

// FuzzDecode feeds arbitrary lines to the ingest decoder: it must never
// panic, and whatever it accepts must encode to valid JSON that decodes back
// to the same event, and its binary record to that event too.
func FuzzDecode(f *testing.F) {
	f.Add(sampleLine)
	f.Add([]byte(`{"ts":1764237600123,"level":50,"msg":"x","a":{"b":[1,"\u0000"]}}`))
	f.Add([]byte(`{"service":"\xff\xfe","message":"\ud800"}`))
	f.Add([]byte(`[{}]`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var d Decoder
		var e Event
		if err := d.Decode(line, arrival, &e); err != nil {
			return
		}
		rec := AppendJSON(nil, &e)
		if !json.Valid(rec) {
			t.Fatalf("accepted %q but encoded invalid JSON %q", line, rec)
		}
		var p fastjson.Parser
		var a Arena
		var out Event
		if err := DecodeRecord(&p, rec, &a, &out); err != nil {
			t.Fatalf("record %q does not decode: %v", rec, err)
		}
		if !out.Time.Equal(e.Time) || out.Level != e.Level {
			t.Fatalf("round trip changed time/level: %q", rec)
		}
		// The binary record of the same event gives the processor the same
		// event as the JSON record.
		var bin Event
		size, err := DecodeBinaryRecord(AppendBinary(nil, &e), &a, &bin)
		if err != nil {
			t.Fatalf("binary record of %q does not decode: %v", line, err)
		}
		if size != len(rec) {
			t.Fatalf("%q: binary record gives the JSON record's size as %d, it is %d", line, size, len(rec))
		}
		if !sameEvent(&out, &bin) {
			t.Fatalf("%q: JSON record gives %+v, binary record %+v", line, out, bin)
		}
	})
}
