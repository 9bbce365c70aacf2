package telemetry

import (
	"encoding/hex"

	"go.opentelemetry.io/otel/trace"
)

// parseTraceparent decodes a W3C traceparent header value
// ("00-<32 hex>-<16 hex>-<2 hex>") without allocating.
func parseTraceparent(v []byte) (trace.SpanContext, bool) {
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' || (len(v) > 55 && v[55] != '-') {
		return trace.SpanContext{}, false
	}
	var ver [1]byte
	if _, err := hex.Decode(ver[:], v[:2]); err != nil || ver[0] == 0xff || (ver[0] == 0 && len(v) != 55) {
		// ff is invalid; version 00 has exactly four fields; later
		// versions may append fields after a '-'.
		return trace.SpanContext{}, false
	}
	var tid trace.TraceID
	var sid trace.SpanID
	var flags [1]byte
	if _, err := hex.Decode(tid[:], v[3:35]); err != nil {
		return trace.SpanContext{}, false
	}
	if _, err := hex.Decode(sid[:], v[36:52]); err != nil {
		return trace.SpanContext{}, false
	}
	if _, err := hex.Decode(flags[:], v[53:55]); err != nil {
		return trace.SpanContext{}, false
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(flags[0]), Remote: true})
	return sc, sc.IsValid()
}
