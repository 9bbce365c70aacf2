package telemetry

import (
	"context"
	"net"

	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

func nothing() {}

// SyslogConn starts the span of one syslog TCP connection, the ingest
// "request" of a stream: the durable appends of its batches are its
// children. The returned func ends it. While tracing is off it returns
// (nil, a no-op).
func SyslogConn(ctx context.Context, c net.Conn) (context.Context, func()) {
	if !Enabled() {
		return nil, nothing
	}
	attrs := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		semconv.NetworkTransportTCP, semconv.NetworkProtocolName("syslog"))}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		attrs = append(attrs, trace.WithAttributes(semconv.ClientAddress(a.IP.String()), semconv.ClientPort(a.Port)))
	}
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		attrs = append(attrs, trace.WithAttributes(semconv.ServerPort(a.Port)))
	}
	ctx, span := tracer.Start(ctx, "syslog tcp connection", attrs...)
	return ctx, func() { span.End() }
}

// SyslogBatch returns the context a syslog batch is made durable under:
// its connection's (conn, from SyslogConn) for TCP, or, for UDP (conn nil),
// a new span for this one flushed batch of datagrams.
func SyslogBatch(ctx, conn context.Context, records int) (context.Context, func()) {
	if conn != nil {
		return conn, nothing
	}
	if !Enabled() {
		return ctx, nothing
	}
	ctx, span := tracer.Start(ctx, "syslog udp batch", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		semconv.NetworkTransportUDP, semconv.NetworkProtocolName("syslog"),
		semconv.MessagingBatchMessageCount(records)))
	return ctx, func() { span.End() }
}
