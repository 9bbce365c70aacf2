package event

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

// sampleLine is a ~250-byte event shaped like loadgen's.
var sampleLine = []byte(`{"ts":"2026-11-27T10:00:00.123456789Z","service":"payments-api","level":"info","message":"charge captured for order 81723 in 42ms","host":"web-7","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","duration_ms":42,"status":200}`)

// BenchmarkDecodeNormalize is the ingest hot path: parse a user's line,
// normalise it and encode the log record.
func BenchmarkDecodeNormalize(b *testing.B) {
	var d Decoder
	var e Event
	var out []byte
	b.SetBytes(int64(len(sampleLine)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Decode(sampleLine, time.Now(), &e); err != nil {
			b.Fatal(err)
		}
		out = AppendJSON(out[:0], &e)
	}
}

// BenchmarkDecodeNormalizeStdlib is the same work with encoding/json into a
// map, the baseline the fastjson decoder was chosen against.
func BenchmarkDecodeNormalizeStdlib(b *testing.B) {
	var out []byte
	b.SetBytes(int64(len(sampleLine)))
	b.ReportAllocs()
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(sampleLine, &m); err != nil {
			b.Fatal(err)
		}
		var e Event
		e.Time, _ = ParseTime(m["ts"].(string))
		e.Service, _ = m["service"].(string)
		e.Level, _ = ParseLevel(m["level"].(string))
		e.Message, _ = m["message"].(string)
		e.Host, _ = m["host"].(string)
		e.TraceID, _ = m["trace_id"].(string)
		e.SpanID, _ = m["span_id"].(string)
		for _, k := range []string{"ts", "service", "level", "message", "host", "trace_id", "span_id"} {
			delete(m, k)
		}
		e.Attrs, _ = json.Marshal(m)
		out = AppendJSON(out[:0], &e)
	}
}

// BenchmarkDecodeRecord is the processor's side: log record → Event.
func BenchmarkDecodeRecord(b *testing.B) {
	var d Decoder
	var e Event
	if err := d.Decode(sampleLine, time.Now(), &e); err != nil {
		b.Fatal(err)
	}
	rec := AppendJSON(nil, &e)
	var p fastjson.Parser
	var a Arena
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		if err := DecodeRecord(&p, rec, &a, &e); err != nil {
			b.Fatal(err)
		}
	}
}
