package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"go.opentelemetry.io/otel/attribute"

	"github.com/wirelog/wirelog/internal/transport"
)

// flaky fails the first n Produce calls with backpressure, then records.
type flaky struct {
	recorder
	failures atomic.Int32
}

func (f *flaky) Produce(ctx context.Context, recs []transport.Record) error {
	if f.failures.Add(-1) >= 0 {
		return fmt.Errorf("backlog full: %w", transport.ErrBackpressure)
	}
	return f.recorder.Produce(ctx, recs)
}

// emitWithSDK sends records through the OpenTelemetry Go SDK's OTLP/HTTP log
// exporter, a client no one here wrote.
func emitWithSDK(t *testing.T, url string, n int) {
	t.Helper()
	ctx := context.Background()
	exp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL(url+"/v1/logs"),
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: true, InitialInterval: 50 * time.Millisecond, MaxInterval: 200 * time.Millisecond, MaxElapsedTime: 20 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", "otel-svc"), attribute.String("host.name", "otel-host"), attribute.String("deployment.environment", "test"))
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewSimpleProcessor(exp)))
	logger := lp.Logger("wirelog-test")
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sctx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	for i := 0; i < n; i++ {
		var r otellog.Record
		r.SetTimestamp(time.Date(2026, 11, 27, 10, 0, 0, i, time.UTC))
		r.SetSeverity(otellog.SeverityWarn)
		r.SetBody(attribute.StringValue(fmt.Sprintf("otel message %d", i)))
		r.AddAttributes(attribute.Int("attempt", i))
		logger.Emit(sctx, r)
	}
	if err := lp.Shutdown(ctx); err != nil {
		t.Fatalf("sdk shutdown: %v", err)
	}
}

func TestOTLPFromTheGoSDK(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(NewHandler(rec, Options{}).OTLP())
	defer srv.Close()
	emitWithSDK(t, srv.URL, 3)
	if len(rec.vals) != 3 {
		t.Fatalf("stored %d records, want 3", len(rec.vals))
	}
	var ev map[string]any
	json.Unmarshal([]byte(rec.vals[2]), &ev)
	attrs, _ := ev["attrs"].(map[string]any)
	if ev["service"] != "otel-svc" || ev["host"] != "otel-host" || ev["level"] != "warn" || ev["message"] != "otel message 2" ||
		ev["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || ev["span_id"] != "00f067aa0ba902b7" ||
		ev["ts"] != "2026-11-27T10:00:00.000000002Z" || attrs["attempt"] != float64(2) || attrs["resource.deployment.environment"] != "test" {
		t.Fatalf("record %s", rec.vals[2])
	}
}

func TestOTLPRetriedAfter429(t *testing.T) {
	f := &flaky{}
	f.failures.Store(2)
	srv := httptest.NewServer(NewHandler(f, Options{RetryAfter: 100 * time.Millisecond}).OTLP())
	defer srv.Close()
	emitWithSDK(t, srv.URL, 1)
	if len(f.vals) != 1 || f.failures.Load() >= 0 {
		t.Fatalf("after two 429s the SDK's retry stored %d records", len(f.vals))
	}
}

func otlpRequest(t *testing.T) plogotlp.ExportRequest {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "json-svc")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	good := lrs.AppendEmpty()
	good.SetTimestamp(pcommon.NewTimestampFromTime(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)))
	good.SetSeverityNumber(plog.SeverityNumberError)
	good.Body().SetStr("from json")
	good.SetTraceID(pcommon.TraceID{0x4b, 0xf9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14})
	bad := lrs.AppendEmpty()
	bad.SetTimestamp(pcommon.Timestamp(1 << 63)) // year 2262
	bad.Body().SetStr("from the future")
	return plogotlp.NewExportRequestFromLogs(ld)
}

func TestOTLPJSONAndPartialSuccess(t *testing.T) {
	rec := &recorder{}
	h := NewHandler(rec, Options{}).OTLP()
	body, _ := otlpRequest(t).MarshalJSON()
	req := httptest.NewRequest(http.MethodPost, "/v1/logs", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %s", w.Code, w.Body)
	}
	resp := plogotlp.NewExportResponse()
	if err := resp.UnmarshalJSON(w.Body.Bytes()); err != nil {
		t.Fatal(err)
	}
	if resp.PartialSuccess().RejectedLogRecords() != 1 || !strings.Contains(resp.PartialSuccess().ErrorMessage(), "2200") {
		t.Fatalf("partial success %d %q", resp.PartialSuccess().RejectedLogRecords(), resp.PartialSuccess().ErrorMessage())
	}
	if len(rec.vals) != 1 || !strings.Contains(rec.vals[0], `"trace_id":"4bf90102030405060708090a0b0c0d0e"`) || !strings.Contains(rec.vals[0], `"level":"error"`) {
		t.Fatalf("records %q", rec.vals)
	}
}

func TestOTLPErrors(t *testing.T) {
	h := NewHandler(&recorder{}, Options{}).OTLP()
	for _, c := range []struct {
		ct   string
		body string
		code int
	}{
		{"application/x-protobuf", "\xff\xff\xff garbage", 400},
		{"application/json", "{not json", 400},
		{"text/plain", "x", 415},
	} {
		req := httptest.NewRequest(http.MethodPost, "/v1/logs", strings.NewReader(c.body))
		req.Header.Set("Content-Type", c.ct)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != c.code {
			t.Errorf("%s %q: status %d, want %d", c.ct, c.body, w.Code, c.code)
		}
	}
	rec := &recorder{err: fmt.Errorf("x: %w", transport.ErrUnavailable)}
	body, _ := otlpRequest(t).MarshalProto()
	req := httptest.NewRequest(http.MethodPost, "/v1/logs", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-protobuf")
	w := httptest.NewRecorder()
	NewHandler(rec, Options{}).OTLP().ServeHTTP(w, req)
	if w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("unavailable log: status %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
}

// FuzzOTLP feeds arbitrary protobuf bodies to the OTLP decoder: never a
// panic, never a 5xx, and only valid JSON records.
func FuzzOTLP(f *testing.F) {
	b, _ := otlpRequest(nil).MarshalProto()
	f.Add(b)
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := &recorder{}
		req := httptest.NewRequest(http.MethodPost, "/v1/logs", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		w := httptest.NewRecorder()
		NewHandler(rec, Options{}).OTLP().ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d", w.Code)
		}
		for _, v := range rec.vals {
			if !json.Valid([]byte(v)) {
				t.Fatalf("invalid record %q", v)
			}
		}
	})
}
