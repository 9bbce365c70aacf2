package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/wirelog/wirelog/internal/event"
)

// InheritedAttr is the attribute an event gets when its trace_id and
// span_id were not sent with it but taken from the request that carried it.
const InheritedAttr = "trace_id_source"

// Inherit is the trace of one ingest request, ready to be given to the
// events of the request that came without one.
type Inherit struct{ traceID, spanID string }

// RequestTrace returns the trace of the request in ctx — the ingest span
// while tracing is on, or the sender's traceparent while it is off — when
// that trace is sampled. An unsampled trace is recorded nowhere, so its id
// would lead nowhere, and adding it to every event of 99% of requests (at 1%
// sampling) would cost more bytes per event than tracing costs in all.
// The zero Inherit changes nothing.
func RequestTrace(ctx context.Context) Inherit {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsSampled() {
		return Inherit{}
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	return Inherit{traceID: tid.String(), spanID: sid.String()}
}

// Apply gives e the request's trace id and span id when e has no trace id
// of its own, and marks it with attrs.trace_id_source = "request", so a
// reader can tell an inherited id from one the application logged.
func (in Inherit) Apply(e *event.Event) {
	if in.traceID != "" && e.TraceID == "" { // inlined: the per-event cost when off
		in.apply(e)
	}
}

//go:noinline // keeps Apply inlinable
func (in Inherit) apply(e *event.Event) {
	e.TraceID = in.traceID
	if e.SpanID == "" {
		e.SpanID = in.spanID
	}
	const kv = `"` + InheritedAttr + `":"request"`
	// The capacity is capped so append copies: Attrs may share its array
	// with the decoder's buffers.
	a := e.Attrs
	if n := len(a); n >= 2 && a[n-1] == '}' {
		if n == 2 {
			e.Attrs = append(a[:1:1], kv+"}"...)
		} else {
			e.Attrs = append(a[:n-1:n-1], ","+kv+"}"...)
		}
		return
	}
	e.Attrs = []byte("{" + kv + "}")
}
