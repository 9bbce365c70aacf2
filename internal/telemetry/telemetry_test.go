package telemetry

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/transport"
)

// recorder turns tracing on for one test with an in-memory exporter.
func recorder(t *testing.T) *tracetest.InMemoryExporter {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(linkSampler{sdktrace.ParentBased(sdktrace.NeverSample())}))
	install(tp)
	t.Cleanup(func() { enabled.Store(false); tp.Shutdown(context.Background()) })
	return exp
}

type memLog struct{ got []transport.Record }

func (m *memLog) Produce(_ context.Context, recs []transport.Record) error {
	m.got = append(m.got, recs...)
	return nil
}
func (m *memLog) Ready(context.Context) error { return nil }
func (m *memLog) Close() error                { return nil }

const clientTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// TestRequestToBatch follows one sampled request: the HTTP server span
// continues the client's traceparent, the durable append is its child and
// writes its traceparent into the records, and the processor's batch span
// is a new root linked to it, with decode/store/commit children; an
// unsampled request's records give no link, and a batch of only those is
// not sampled (the base sampler here never samples roots).
func TestRequestToBatch(t *testing.T) {
	exp := recorder(t)
	log := &memLog{}
	prod := WrapProducer(log, SystemDisklog, "wirelog.logs", true)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		recs := []transport.Record{{Topic: "wirelog.logs", Value: []byte(`{}`)}, {Topic: "wirelog.logs", Value: []byte(`{}`)}}
		if err := prod.Produce(r.Context(), recs); err != nil {
			t.Error(err)
		}
		w.WriteHeader(http.StatusAccepted)
	})
	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/logs", h)
	srv := httptest.NewServer(Handler(mux))
	defer srv.Close()
	for _, tp := range []string{clientTP, "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-00"} {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/logs", strings.NewReader("{}"))
		req.Header.Set("traceparent", tp)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if len(log.got) != 4 {
		t.Fatalf("%d records produced", len(log.got))
	}
	if len(log.got[0].Headers) != 1 || len(log.got[2].Headers) != 0 {
		t.Fatalf("headers: sampled %v, unsampled %v", log.got[0].Headers, log.got[2].Headers)
	}
	spans := exp.GetSpans()
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	server, ok := byName["POST /api/v1/logs"]
	if !ok || server.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || server.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("server span %+v not continuing the client's trace; spans %v", server, names(spans))
	}
	send := byName["send wirelog.logs"]
	if send.Parent.SpanID() != server.SpanContext.SpanID() {
		t.Fatalf("durable append not a child of the request span")
	}
	if got, want := string(log.got[0].Headers[0].Value), traceparent(send.SpanContext); got != want {
		t.Fatalf("record traceparent %s, want %s", got, want)
	}

	exp.Reset()
	b := StartBatch(WithConsumer(context.Background(), SystemDisklog, "g"), log.got)
	if b == nil {
		t.Fatal("a batch linking to a sampled producer span was not sampled")
	}
	b.Phase(PhaseStore)
	b.Phase(PhaseCommit)
	b.End(4)
	spans = exp.GetSpans()
	if len(spans) != 4 {
		t.Fatalf("batch spans %v, want decode, store, commit, batch", names(spans))
	}
	batch := spans[3]
	if batch.Name != "process wirelog.logs" || batch.Parent.IsValid() || len(batch.Links) != 1 ||
		batch.Links[0].SpanContext.SpanID() != send.SpanContext.SpanID() {
		t.Fatalf("batch span %s parent %v links %v", batch.Name, batch.Parent, batch.Links)
	}
	for _, s := range spans[:3] {
		if s.Parent.SpanID() != batch.SpanContext.SpanID() {
			t.Errorf("%s is not a child of the batch span", s.Name)
		}
	}
	if StartBatch(context.Background(), log.got[2:]) != nil {
		t.Error("a batch with no sampled producer was sampled by a never-sampling base")
	}
}

func names(spans tracetest.SpanStubs) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name)
	}
	return n
}

func TestExemplarInExposition(t *testing.T) {
	recorder(t)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x_seconds", Help: "x", Buckets: []float64{1}})
	reg := prometheus.NewRegistry()
	reg.MustRegister(h)
	ctx, span := tracer.Start(trace.ContextWithRemoteSpanContext(context.Background(), mustSC(t, clientTP)), "req")
	Observe(ctx, h, 0.5)
	span.End()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}).ServeHTTP(rec, req)
	if !bytes.Contains(rec.Body.Bytes(), []byte(`# {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 0.5`)) {
		t.Fatalf("no exemplar in\n%s", rec.Body)
	}
}

func mustSC(t *testing.T, tp string) trace.SpanContext {
	sc, ok := parseTraceparent([]byte(tp))
	if !ok {
		t.Fatalf("parse %s", tp)
	}
	return sc
}

func TestParseTraceparent(t *testing.T) {
	sc := mustSC(t, clientTP)
	if traceparent(sc) != clientTP || !sc.IsSampled() {
		t.Fatalf("round trip %s", traceparent(sc))
	}
	for _, bad := range []string{"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e473x-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
		"zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"} {
		if _, ok := parseTraceparent([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParseTraceparent(f *testing.F) {
	f.Add([]byte(clientTP))
	f.Add([]byte("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"))
	f.Add([]byte("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if sc, ok := parseTraceparent(b); ok && !strings.EqualFold(traceparent(sc)[2:], string(b[2:55])) {
			t.Fatalf("%q parsed as %s", b, traceparent(sc))
		}
	})
}

func TestInherit(t *testing.T) {
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), mustSC(t, clientTP))
	in := RequestTrace(ctx)
	for _, tc := range []struct{ attrs, want string }{
		{"", `{"trace_id_source":"request"}`},
		{"{}", `{"trace_id_source":"request"}`},
		{`{"a":1}`, `{"a":1,"trace_id_source":"request"}`},
	} {
		buf := []byte(tc.attrs + "SENTINEL")
		e := event.Event{Attrs: buf[:len(tc.attrs)]}
		if tc.attrs == "" {
			e.Attrs = nil
		}
		in.Apply(&e)
		if e.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || e.SpanID != "00f067aa0ba902b7" || string(e.Attrs) != tc.want {
			t.Errorf("%q: %+v attrs %s", tc.attrs, e, e.Attrs)
		}
		if !bytes.HasSuffix(buf, []byte("SENTINEL")) {
			t.Errorf("%q: Apply wrote past the attrs into the buffer they share", tc.attrs)
		}
	}
	own := event.Event{TraceID: "abc"}
	in.Apply(&own)
	if own.TraceID != "abc" || own.Attrs != nil {
		t.Errorf("an event's own trace id was replaced: %+v", own)
	}
	unsampled := trace.ContextWithRemoteSpanContext(context.Background(), mustSC(t, clientTP[:53]+"00"))
	var none Inherit
	e := event.Event{}
	RequestTrace(unsampled).Apply(&e)
	RequestTrace(context.Background()).Apply(&e)
	none.Apply(&e)
	if e.TraceID != "" {
		t.Error("inherited from a request without a sampled trace")
	}
}

func TestWantedFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		flag string
		want bool
	}{
		{nil, "", false},
		{nil, "http://127.0.0.1:4318", true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "", true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, "", true},
		{map[string]string{"OTEL_SDK_DISABLED": "true"}, "http://127.0.0.1:4318", false},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "", false},
	} {
		for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER"} {
			t.Setenv(k, tc.env[k])
		}
		if got, why := wanted(Config{Endpoint: tc.flag}); got != tc.want {
			t.Errorf("env %v flag %q: on=%v (%s), want %v", tc.env, tc.flag, got, why, tc.want)
		}
	}
}

func TestSamplerFromEnvErrors(t *testing.T) {
	t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
	t.Setenv("OTEL_TRACES_SAMPLER_ARG", "1.5")
	if _, err := samplerFromEnv(); err == nil || !strings.Contains(err.Error(), "OTEL_TRACES_SAMPLER_ARG") {
		t.Errorf("ratio 1.5: %v", err)
	}
	t.Setenv("OTEL_TRACES_SAMPLER", "jaeger_remote")
	if _, err := samplerFromEnv(); err == nil || !strings.Contains(err.Error(), "OTEL_TRACES_SAMPLER") {
		t.Errorf("jaeger_remote: %v", err)
	}
	t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
	t.Setenv("OTEL_TRACES_SAMPLER_ARG", "0.01")
	if s, err := samplerFromEnv(); err != nil || !strings.Contains(s.Description(), "0.01") {
		t.Errorf("0.01: %v %v", s, err)
	}
}

func TestSetupRejectsBadFlag(t *testing.T) {
	t.Setenv("OTEL_SDK_DISABLED", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	_, err := Setup(context.Background(), Config{Endpoint: "127.0.0.1:4318"}, discard())
	if err == nil || !strings.Contains(err.Error(), "--otlp-traces") {
		t.Fatalf("endpoint without scheme: %v", err)
	}
}

// TestHandlerSkipsProbes: scrapes and probes get no span; the live tail's
// streaming still flushes through the wrapped writer.
func TestHandlerSkipsProbes(t *testing.T) {
	exp := recorder(t)
	flushed := false
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /api/v1/tail", func(w http.ResponseWriter, r *http.Request) {
		_, flushed = w.(http.Flusher)
		http.NewResponseController(w).Flush()
	})
	srv := httptest.NewServer(Handler(mux))
	defer srv.Close()
	for _, p := range []string{"/metrics", "/api/v1/tail"} {
		req, _ := http.NewRequest("GET", srv.URL+p, nil)
		req.Header.Set("traceparent", clientTP)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// The tail flushed its answer before its span ended: wait for the end.
	for i := 0; i < 200 && len(exp.GetSpans()) == 0; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if n := names(exp.GetSpans()); len(n) != 1 || n[0] != "GET /api/v1/tail" {
		t.Fatalf("spans %v, want only GET /api/v1/tail", n)
	}
	if !flushed {
		t.Error("the wrapped ResponseWriter lost http.Flusher")
	}
}

// TestSetupProtocols: each OTLP protocol the spec names builds its
// exporter (nothing is sent: no span is recorded), and an unknown one is
// refused naming the variable.
func TestSetupProtocols(t *testing.T) {
	t.Setenv("OTEL_SDK_DISABLED", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	for _, proto := range []string{"", "http/protobuf", "http/json", "grpc"} {
		t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", proto)
		shutdown, err := Setup(context.Background(), Config{Endpoint: "http://127.0.0.1:1", ServiceName: "test"}, discard())
		if err != nil {
			t.Fatalf("protocol %q: %v", proto, err)
		}
		if !Enabled() {
			t.Errorf("protocol %q: tracing not on", proto)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		shutdown(ctx)
		cancel()
	}
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift")
	if _, err := Setup(context.Background(), Config{Endpoint: "http://127.0.0.1:1"}, discard()); err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_PROTOCOL") {
		t.Errorf("thrift: %v", err)
	}
}
