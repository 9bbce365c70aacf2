package esbulk

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wirelog/wirelog/internal/ingest"
	"github.com/wirelog/wirelog/internal/transport"
)

type discard struct{}

func (discard) Produce(context.Context, []transport.Record) error { return nil }
func (discard) Ready(context.Context) error                       { return nil }
func (discard) Close() error                                      { return nil }

// sink is a ResponseWriter that keeps only the status, as a socket would:
// httptest.ResponseRecorder would grow a buffer for every 19 kB answer and
// make the benchmark measure the recorder.
type sink struct {
	h    http.Header
	code int
}

func (s *sink) Header() http.Header         { return s.h }
func (s *sink) Write(b []byte) (int, error) { return len(b), nil }
func (s *sink) WriteHeader(c int)           { s.code = c }

func ndjsonEvents(n int, action string) []byte {
	var body bytes.Buffer
	for i := 0; i < n; i++ {
		body.WriteString(action)
		fmt.Fprintf(&body, `{"ts":"2026-11-27T10:00:00.%09dZ","service":"payments-api","level":"info","message":"charge captured for order %d in 42ms","host":"web-7","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","duration_ms":42}`+"\n", i, i)
	}
	return body.Bytes()
}

// BenchmarkNative is ingest's BenchmarkHandleNDJSON in this package, so
// the two are measured in one process with the same writer.
func BenchmarkNative(b *testing.B) {
	body := ndjsonEvents(100, "")
	h := ingest.NewHandler(discard{}, ingest.Options{})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	w := &sink{h: http.Header{}}
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/logs", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-ndjson")
		w.code = 0
		h.ServeHTTP(w, req)
		if w.code != 202 {
			b.Fatal(w.code)
		}
	}
}

// BenchmarkBulk is the bulk API's own cost per request of the 100 events
// of BenchmarkNative, as create actions, without the log: read, split,
// decode, map, encode, answer (the body is 14 bytes an event longer).
func BenchmarkBulk(b *testing.B) {
	body := ndjsonEvents(100, "{\"create\":{}}\n")
	h := New(ingest.NewHandler(discard{}, ingest.Options{}), nil)
	mux := http.NewServeMux()
	for _, rt := range h.Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	w := &sink{h: http.Header{}}
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/_bulk?_time_field=ts", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-ndjson")
		w.code = 0
		mux.ServeHTTP(w, req)
		if w.code != 200 {
			b.Fatal(w.code)
		}
	}
}
