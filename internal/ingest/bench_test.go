package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/transport"
)

type discard struct{}

func (discard) Produce(context.Context, []transport.Record) error { return nil }
func (discard) Ready(context.Context) error                       { return nil }
func (discard) Close() error                                      { return nil }

// BenchmarkHandleNDJSON measures the gateway's own cost per request of 100
// ~250-byte events, without the log: read, split, decode, normalise, encode.
func BenchmarkHandleNDJSON(b *testing.B) {
	var body bytes.Buffer
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&body, `{"ts":"2026-11-27T10:00:00.%09dZ","service":"payments-api","level":"info","message":"charge captured for order %d in 42ms","host":"web-7","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","duration_ms":42}`+"\n", i, i)
	}
	for _, f := range []struct {
		name   string
		format event.RecordFormat
	}{{"json", event.RecordJSON}, {"binary", event.RecordBinary}} {
		b.Run("record="+f.name, func(b *testing.B) {
			h := NewHandler(discard{}, Options{Record: f.format})
			b.SetBytes(int64(body.Len()))
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/api/v1/logs", bytes.NewReader(body.Bytes()))
				req.Header.Set("Content-Type", "application/x-ndjson")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 202 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
