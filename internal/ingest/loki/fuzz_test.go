package loki

import (
	"testing"

	"github.com/klauspost/compress/snappy"
)

// FuzzPush posts arbitrary push bodies: JSON as they are, protobuf
// snappy-encoded by the harness (so the fuzzer reaches the protobuf decoder)
// or raw (so it reaches snappy). The answer is 204, 400 or 413 in Loki's
// text, never a panic or a 5xx; every record produced is valid JSON (the
// recorder refuses others, which would surface as a 503). Seeds:
// testdata/fuzz/FuzzPush plus the ones below.
func FuzzPush(f *testing.F) {
	f.Add([]byte(`{"streams":[{"stream":{"service_name":"a","level":"x"},"values":[["1","l",{"trace_id":"t","k":"v"}],[1e18,"n"]]}]}`), uint8(0))
	raw, _ := snappy.Decode(nil, pushPB(streamPB(`{a="b", host="h"}`, entry(1, 2, "x", pair("pod", "p"), pair("level", "warn")))))
	f.Add(raw, uint8(1))
	f.Add([]byte("\x0a\x05\x0a\x03{}"), uint8(1))
	f.Add([]byte{0xff, 0x01}, uint8(2))
	f.Fuzz(func(t *testing.T, body []byte, mode uint8) {
		ct, b := "application/json", body
		switch mode % 3 {
		case 1:
			ct, b = "application/x-protobuf", snappy.Encode(nil, body)
		case 2:
			ct = "application/x-protobuf"
		}
		rec := &recorder{}
		w := push(rec, ct, b)
		switch w.Code {
		case 204:
		case 400, 413:
			if w.Body.Len() == 0 {
				t.Fatalf("%d without a reason", w.Code)
			}
		default:
			t.Fatalf("status %d for %q (%s): %s", w.Code, body, ct, w.Body)
		}
	})
}
