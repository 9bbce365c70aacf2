package loki

import (
	"bytes"
	"context"
	"encoding/json"
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

// BenchmarkPush is the push API's own cost per request of 100 entries
// whose lines are the events of ingest's BenchmarkHandleNDJSON, in one
// stream, without the log. Compare in one run:
//
//	go test -run '^$' -bench 'HandleNDJSON|Push' -count 6 ./internal/ingest/ ./internal/ingest/loki/
func BenchmarkPush(b *testing.B) {
	var entries [][]byte
	var js bytes.Buffer
	js.WriteString(`{"streams":[{"stream":{"service_name":"payments-api","host":"web-7","level":"info"},"values":[`)
	for i := 0; i < 100; i++ {
		line := fmt.Sprintf(`{"ts":"2026-11-27T10:00:00.%09dZ","service":"payments-api","level":"info","message":"charge captured for order %d in 42ms","host":"web-7","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","duration_ms":42}`, i, i)
		entries = append(entries, entry(1764237600, int64(i), line))
		if i > 0 {
			js.WriteByte(',')
		}
		q, _ := json.Marshal(line)
		fmt.Fprintf(&js, `["%d",%s]`, 1764237600000000000+i, q)
	}
	js.WriteString(`]}]}`)
	for _, c := range []struct {
		name, ct string
		body     []byte
	}{
		{"proto", "application/x-protobuf", pushPB(streamPB(`{service_name="payments-api", host="web-7", level="info"}`, entries...))},
		{"json", "application/json", js.Bytes()},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := New(ingest.NewHandler(discard{}, ingest.Options{}))
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(c.body))
				req.Header.Set("Content-Type", c.ct)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 204 {
					b.Fatal(w.Code, w.Body)
				}
			}
		})
	}
}
