package telemetry

import (
	"context"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/wirelog/wirelog/internal/transport"
)

// MaxLinks bounds the links of one batch span (the SDK's default span
// link limit). A batch links once per producer trace, so a batch of up
// to 128 sampled requests links to all of them.
const MaxLinks = 128

// Phase is one child span of a processor batch.
type Phase uint8

// The phases of a stored batch, in order.
const (
	PhaseDecode Phase = iota // records → events
	PhaseStore               // the DuckDB transaction: rows, rollups and offsets
	PhaseCommit              // the advisory offset commit to the log
)

type consumerKey struct{}

type consumer struct{ system, group string }

// WithConsumer tells the batch spans started under ctx which messaging
// system and consumer group the processor reads.
func WithConsumer(ctx context.Context, system, group string) context.Context {
	return context.WithValue(ctx, consumerKey{}, consumer{system, group})
}

// Batch is the processor's span for one stored batch. A nil *Batch (what
// StartBatch returns while tracing is off) does nothing, except Observe,
// which observes without an exemplar.
type Batch struct {
	ctx   context.Context
	span  trace.Span
	phase trace.Span
	cons  consumer
	// exemplars left per histogram for this batch: a sampled batch
	// exemplifies its first observations, not all of its records.
	ex []exemplarBudget
	lb prometheus.Labels
}

type exemplarBudget struct {
	h    prometheus.Observer
	left int
}

const exemplarsPerBatch = 4

// StartBatch starts the span of one batch ("process <topic>", a root span
// of kind consumer), linked to the sampled producer span of each trace
// whose records it holds, as the OTel messaging conventions have a batch
// consumer do; then it starts the decode phase.
func StartBatch(ctx context.Context, recs []transport.Record) *Batch {
	if !Enabled() || len(recs) == 0 {
		return nil
	}
	b := &Batch{}
	b.cons, _ = ctx.Value(consumerKey{}).(consumer)
	links := batchLinks(recs)
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemKey.String(b.cons.system),
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingOperationName("process"),
		semconv.MessagingDestinationName(recs[0].Topic),
		semconv.MessagingBatchMessageCount(len(recs)),
		attribute.Int("wirelog.batch.links", len(links)),
	}
	if b.cons.group != "" {
		attrs = append(attrs, semconv.MessagingConsumerGroupName(b.cons.group))
	}
	if p := recs[0].Partition; recs[len(recs)-1].Partition == p {
		attrs = append(attrs, semconv.MessagingDestinationPartitionID(strconv.Itoa(int(p))),
			attribute.Int64("wirelog.batch.first_offset", recs[0].Offset),
			attribute.Int64("wirelog.batch.last_offset", recs[len(recs)-1].Offset))
	}
	// A root span: the batch belongs to many requests' traces at once.
	b.ctx, b.span = tracer.Start(context.WithoutCancel(ctx), "process "+recs[0].Topic,
		trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...), trace.WithAttributes(attrs...))
	if !b.span.SpanContext().IsSampled() {
		b.span.End()
		return nil
	}
	b.Phase(PhaseDecode)
	return b
}

// batchLinks returns one link per producer trace found in the records'
// traceparent headers (sampled ones only: an unsampled span is nowhere to
// be found), at most MaxLinks.
func batchLinks(recs []transport.Record) []trace.Link {
	var links []trace.Link
	var last trace.TraceID
	seen := map[trace.TraceID]struct{}{}
	for i := range recs {
		for _, h := range recs[i].Headers {
			if h.Key != TraceparentHeader {
				continue
			}
			sc, ok := parseTraceparent(h.Value)
			if !ok || !sc.IsSampled() || sc.TraceID() == last {
				break
			}
			last = sc.TraceID()
			if _, dup := seen[last]; dup {
				break
			}
			seen[last] = struct{}{}
			if len(links) == MaxLinks {
				return links
			}
			links = append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{
				semconv.MessagingKafkaOffset(int(recs[i].Offset)),
				semconv.MessagingDestinationPartitionID(strconv.Itoa(int(recs[i].Partition))),
			}})
			break
		}
	}
	return links
}

// Context is the batch span's context (context.Background for nil).
func (b *Batch) Context() context.Context {
	if b == nil {
		return context.Background()
	}
	return b.ctx
}

// Phase ends the running phase span and starts p's.
func (b *Batch) Phase(p Phase) {
	if b == nil {
		return
	}
	if b.phase != nil {
		b.phase.End()
	}
	switch p {
	case PhaseDecode:
		_, b.phase = tracer.Start(b.ctx, "decode")
	case PhaseStore:
		_, b.phase = tracer.Start(b.ctx, "INSERT events", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
			semconv.DBSystemNameKey.String("duckdb"),
			semconv.DBOperationName("INSERT"),
			semconv.DBCollectionName("events"),
		))
	case PhaseCommit:
		_, b.phase = tracer.Start(b.ctx, "commit offsets", trace.WithAttributes(
			semconv.MessagingSystemKey.String(b.cons.system),
			semconv.MessagingOperationName("commit"),
			semconv.MessagingOperationTypeKey.String("settle"),
		))
	}
}

// Error marks the running phase and the batch as failed (a retry follows).
func (b *Batch) Error(err error) {
	if b == nil || err == nil {
		return
	}
	if b.phase != nil {
		b.phase.RecordError(err)
		b.phase.SetStatus(codes.Error, "failed; retried")
	}
	b.span.AddEvent("retry", trace.WithAttributes(attribute.String("error", err.Error())))
}

// End ends the batch span, recording the rows handed to the store
// transaction (replays the store skips included).
func (b *Batch) End(rows int) {
	if b == nil {
		return
	}
	if b.phase != nil {
		b.phase.End()
	}
	b.span.SetAttributes(attribute.Int("wirelog.batch.rows", rows))
	b.span.End()
}

// Observe observes v into h, with the batch's trace id as an exemplar for
// the first few observations of a sampled batch.
func (b *Batch) Observe(h prometheus.Observer, v float64) {
	if b == nil { // inlined: the per-record cost when off
		h.Observe(v)
		return
	}
	b.observe(h, v)
}

//go:noinline // keeps Observe inlinable
func (b *Batch) observe(h prometheus.Observer, v float64) {
	for i := range b.ex {
		if b.ex[i].h == h {
			if b.ex[i].left == 0 {
				h.Observe(v)
				return
			}
			b.ex[i].left--
			ObserveExemplar(h, v, b.labels())
			return
		}
	}
	b.ex = append(b.ex, exemplarBudget{h: h, left: exemplarsPerBatch - 1})
	ObserveExemplar(h, v, b.labels())
}

// Exemplar is the exemplar labels of the batch's trace, nil when the batch
// is not traced: for an observation made after the batch ended, such as
// its records' freshness when their segment is registered.
func (b *Batch) Exemplar() prometheus.Labels {
	if b == nil {
		return nil
	}
	return b.labels()
}

func (b *Batch) labels() prometheus.Labels {
	if b.lb == nil {
		b.lb = prometheus.Labels{ExemplarLabel: b.span.SpanContext().TraceID().String()}
	}
	return b.lb
}
