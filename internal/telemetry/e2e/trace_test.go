package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/telemetry/jaegertest"
	"github.com/wirelog/wirelog/internal/testproc"
)

// TestRunTraceInJaeger sends one request with a known traceparent to
// `wirelog run` exporting to a real Jaeger, and follows it as an operator
// would: in Jaeger the request's trace holds the ingest span (child of the
// client's span), the durable append under it and the fsync under that;
// a processor batch span links to the durable append; the stored events
// carry the trace id (inherited, and marked so, when the line had none);
// and /metrics shows the trace id as an exemplar of the ack latency.
func TestRunTraceInJaeger(t *testing.T) {
	j := jaegertest.Start(t)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "200") // export within 200ms instead of 5s
	n := testproc.Start(t, wirelogBin, "run", "run", "--http", "127.0.0.1:0", "--data", t.TempDir(),
		"--syslog-udp", "", "--syslog-tcp", "", "--otlp-traces", j.OTLP)
	if !strings.Contains(n.Logs(), "tracing on") {
		t.Fatalf("no 'tracing on' line:\n%s", n.Logs())
	}
	tp, traceID, clientSpan := newTraceparent()
	const own = "0123456789abcdef0123456789abcdef"
	body := `{"message":"traced one","service":"checkout"}` + "\n" +
		`{"message":"traced two","service":"checkout","attr":1}` + "\n" +
		`{"message":"has its own","service":"checkout","trace_id":"` + own + `"}` + "\n"
	if code := post(t, n.URL, body, map[string]string{"traceparent": tp}); code != 202 {
		t.Fatalf("post: %d", code)
	}

	var spans []jaegertest.Span
	testproc.Eventually(t, 30*time.Second, func() (err error) {
		spans, err = j.Trace(traceID)
		if err == nil && len(spans) < 4 {
			err = fmt.Errorf("%d spans so far", len(spans))
		}
		return err
	})
	ingest := only(t, spans, "POST /api/v1/logs")
	if !ingest.ChildOf(clientSpan) || ingest.Tag("http.response.status_code") != "202" || ingest.Tag("http.route") != "/api/v1/logs" {
		t.Errorf("ingest span %+v: want a child of the client's span %s with status 202 and route", ingest, clientSpan)
	}
	send := only(t, spans, "send wirelog.logs")
	if !send.ChildOf(ingest.SpanID) || send.Tag("messaging.batch.message_count") != "3" || send.Tag("messaging.system") != "wirelog_disklog" {
		t.Errorf("durable append span %+v: want a child of the ingest span with 3 messages", send)
	}
	if fs := only(t, spans, "fsync"); !fs.ChildOf(send.SpanID) {
		t.Errorf("fsync span is not a child of the durable append")
	}

	// The processor's batch is its own trace, linked to the append.
	var batch jaegertest.Span
	testproc.Eventually(t, 30*time.Second, func() error {
		found, err := j.Find("wirelog", "process wirelog.logs", 50)
		if err != nil {
			return err
		}
		for _, s := range found {
			if s.LinksTo(traceID, send.SpanID) {
				batch = s
				return nil
			}
		}
		return fmt.Errorf("none of %d batch spans links to %s/%s", len(found), traceID, send.SpanID)
	})
	bt, err := j.Trace(batch.TraceID)
	if err != nil {
		t.Fatal(err)
	}
	for _, child := range []string{"decode", "INSERT events", "commit offsets"} {
		if s := only(t, bt, child); !s.ChildOf(batch.SpanID) {
			t.Errorf("%s is not a child of the batch span", child)
		}
	}
	if s := only(t, bt, "INSERT events"); s.Tag("db.system.name") != "duckdb" {
		t.Errorf("store span tags %+v", s.Tags)
	}

	// The stored events: inherited trace id, marked; an own one kept.
	var evs []storedEvent
	testproc.Eventually(t, 30*time.Second, func() (err error) {
		evs, err = searchTrace(n.URL, traceID)
		if err == nil && len(evs) != 2 {
			err = fmt.Errorf("%d events with trace_id %s, want 2", len(evs), traceID)
		}
		return err
	})
	for _, e := range evs {
		if e.SpanID != ingest.SpanID || !strings.Contains(string(e.Attrs), `"trace_id_source":"request"`) {
			t.Errorf("inherited event %+v: want span_id %s and attrs.trace_id_source=request", e, ingest.SpanID)
		}
	}
	if mine, err := searchTrace(n.URL, own); err != nil || len(mine) != 1 || strings.Contains(string(mine[0].Attrs), "trace_id_source") {
		t.Errorf("event with its own trace id: %+v %v", mine, err)
	}

	// Query API requests have server spans of their own.
	testproc.Eventually(t, 30*time.Second, func() error {
		found, err := j.Find("wirelog", "GET /api/v1/logs/search", 5)
		if err == nil && len(found) == 0 {
			err = fmt.Errorf("no query API span")
		}
		return err
	})

	// The ack latency carries the trace as an exemplar.
	req, _ := http.NewRequest("GET", n.URL+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), `wirelog_ingest_http_request_duration_seconds_bucket`) ||
		!strings.Contains(string(m), `# {trace_id="`+traceID+`"}`) {
		t.Errorf("no exemplar with trace_id %s in the OpenMetrics exposition", traceID)
	}
	if err := n.Term(30 * time.Second); err != nil {
		t.Errorf("SIGTERM: %v\n%s", err, n.Logs())
	}
}

// only returns the one span named op, failing the test otherwise.
func only(t *testing.T, spans []jaegertest.Span, op string) jaegertest.Span {
	t.Helper()
	var found []jaegertest.Span
	var names []string
	for _, s := range spans {
		names = append(names, s.OperationName)
		if s.OperationName == op {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans %q among %v", len(found), op, names)
	}
	return found[0]
}
