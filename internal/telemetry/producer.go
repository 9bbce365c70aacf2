package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/wirelog/wirelog/internal/transport"
)

// Messaging systems, for messaging.system.
const (
	SystemKafka   = "kafka"
	SystemDisklog = "wirelog_disklog" // the embedded log: not a standard system name
)

// TraceparentHeader is the W3C header carried in record headers.
const TraceparentHeader = "traceparent"

// WrapProducer returns prod with a "send <topic>" producer span around each
// Produce: the durable append, from hand-over to fsync or acks=all. With
// inject it writes the span's traceparent into the headers of every record
// of a sampled call, so the processor can link its batch span to it; Kafka
// does not need it (kotel writes each record's publish span there). While
// tracing is off it returns prod itself.
func WrapProducer(prod transport.Producer, system, topic string, inject bool) transport.Producer {
	if !Enabled() {
		return prod
	}
	return &producer{Producer: prod, system: system, topic: topic, inject: inject}
}

type producer struct {
	transport.Producer
	system, topic string
	inject        bool
}

func (p *producer) Produce(ctx context.Context, recs []transport.Record) error {
	ctx, span := tracer.Start(ctx, "send "+p.topic, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		semconv.MessagingSystemKey.String(p.system),
		semconv.MessagingOperationTypeSend,
		semconv.MessagingOperationName("send"),
		semconv.MessagingDestinationName(p.topic),
		semconv.MessagingBatchMessageCount(len(recs)),
	))
	defer span.End()
	if p.inject && span.SpanContext().IsSampled() {
		// One header slice shared read-only by the records of the call.
		hdr := []transport.Header{{Key: TraceparentHeader, Value: []byte(traceparent(span.SpanContext()))}}
		for i := range recs {
			if len(recs[i].Headers) == 0 {
				recs[i].Headers = hdr
			} else {
				recs[i].Headers = append(recs[i].Headers[:len(recs[i].Headers):len(recs[i].Headers)], hdr[0])
			}
		}
	}
	err := p.Producer.Produce(ctx, recs)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "not durable: the records were not acknowledged")
	}
	return err
}

// traceparent formats sc as a W3C traceparent header value.
func traceparent(sc trace.SpanContext) string {
	tid, sid := sc.TraceID(), sc.SpanID()
	return "00-" + tid.String() + "-" + sid.String() + "-" + sc.TraceFlags().String()
}

// CommitTimes is when one group commit of the embedded log wrote and
// fsynced; the log fills it for every caller the commit covered.
type CommitTimes struct {
	Write, Sync, Synced time.Time
	Calls, Records      int // Produce calls and records in the group commit
}

// DiskCommit adds the group commit that made the caller's records durable
// as two child spans of the durable append in ctx: the write of the group's
// batches, and the fdatasync wait. It does nothing for an unsampled call.
func DiskCommit(ctx context.Context, c *CommitTimes) {
	if !Enabled() || c.Synced.IsZero() {
		return
	}
	if !trace.SpanFromContext(ctx).IsRecording() {
		return
	}
	group := []attribute.KeyValue{
		attribute.Int("wirelog.disklog.group_calls", c.Calls),
		attribute.Int("wirelog.disklog.group_records", c.Records),
	}
	_, w := tracer.Start(ctx, "disklog write", trace.WithTimestamp(c.Write), trace.WithAttributes(group...))
	w.End(trace.WithTimestamp(c.Sync))
	_, s := tracer.Start(ctx, "fsync", trace.WithTimestamp(c.Sync), trace.WithAttributes(group...))
	s.End(trace.WithTimestamp(c.Synced))
}
