package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// sink is an httptest server that decodes bodies the way wirelog's ingest
// contract describes and keeps every event it accepted.
type sink struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	requests int
	events   []map[string]any
	bodies   []string // Content-Type + Content-Encoding per request
	acked    map[string]bool
	times    []time.Time

	// answer decides the reply to request i (0-based); nil accepts all.
	answer func(i int, w http.ResponseWriter) (accept bool)
}

func newSink(t *testing.T, answer func(i int, w http.ResponseWriter) bool) *sink {
	t.Helper()
	s := &sink{t: t, acked: make(map[string]bool), answer: answer}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != IngestPath {
		http.Error(w, "wrong endpoint "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		// The client gave up (a cancelled run): not a format error.
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	events, err := decodeBody(r.Header, raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.requests
	s.requests++
	s.times = append(s.times, time.Now())
	s.bodies = append(s.bodies, r.Header.Get("Content-Type")+"|"+r.Header.Get("Content-Encoding"))
	if err != nil {
		s.t.Errorf("request %d: %v", i, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if s.answer != nil && !s.answer(i, w) {
		return
	}
	for _, e := range events {
		s.events = append(s.events, e)
		if id, ok := e["event_id"].(string); ok {
			s.acked[id] = true
		}
	}
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"accepted":%d,"rejected":0,"errors":[]}`, len(events))
}

// decodeBody undoes Content-Encoding and parses NDJSON or JSON (object or
// array), strictly: any line that is not a JSON object is an error.
func decodeBody(h http.Header, raw []byte) ([]map[string]any, error) {
	var body io.Reader = bytes.NewReader(raw)
	switch enc := h.Get("Content-Encoding"); enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		body = zr
	case "zstd":
		zr, err := zstd.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		body = zr
	default:
		return nil, fmt.Errorf("unknown Content-Encoding %q", enc)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	var events []map[string]any
	switch ct := h.Get("Content-Type"); ct {
	case "application/x-ndjson":
		for i, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
			var e map[string]any
			if err := json.Unmarshal(line, &e); err != nil {
				return nil, fmt.Errorf("line %d %q: %w", i, line, err)
			}
			events = append(events, e)
		}
	case "application/json":
		if bytes.HasPrefix(data, []byte("[")) {
			if err := json.Unmarshal(data, &events); err != nil {
				return nil, fmt.Errorf("array: %w", err)
			}
		} else {
			var e map[string]any
			if err := json.Unmarshal(data, &e); err != nil {
				return nil, fmt.Errorf("object: %w", err)
			}
			events = append(events, e)
		}
	default:
		return nil, fmt.Errorf("unexpected Content-Type %q", ct)
	}
	return events, nil
}

func (s *sink) snapshot() (events []map[string]any, acked map[string]bool, requests int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acked = make(map[string]bool, len(s.acked))
	for k := range s.acked {
		acked[k] = true
	}
	return append([]map[string]any(nil), s.events...), acked, s.requests
}

var (
	hex32   = regexp.MustCompile(`^[0-9a-f]{32}$`)
	hex16   = regexp.MustCompile(`^[0-9a-f]{16}$`)
	levels  = map[string]bool{"debug": true, "info": true, "warn": true, "error": true, "fatal": true}
	idShape = regexp.MustCompile(`^[0-9a-z]+-[0-9]+$`)
)

// checkEvent asserts the fields a user of the generated data relies on.
func checkEvent(t *testing.T, e map[string]any) {
	t.Helper()
	str := func(k string) string {
		v, ok := e[k].(string)
		if !ok || v == "" {
			t.Fatalf("event %v: %q missing or not a non-empty string", e, k)
		}
		return v
	}
	ts := str("ts")
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || len(ts) != len("2006-01-02T15:04:05.000000000Z") {
		t.Fatalf("ts %q is not RFC 3339 with nanoseconds: %v", ts, err)
	}
	str("service")
	str("message")
	str("host")
	if l := str("level"); !levels[l] {
		t.Fatalf("level %q is not a normalised level", l)
	}
	if id := str("event_id"); !idShape.MatchString(id) {
		t.Fatalf("event_id %q is not <run-id>-<seq>", id)
	}
	if d, ok := e["duration_ms"].(float64); !ok || d <= 0 {
		t.Fatalf("duration_ms %v is not a positive number", e["duration_ms"])
	}
	if _, traced := e["trace_id"]; traced {
		if !hex32.MatchString(str("trace_id")) || !hex16.MatchString(str("span_id")) {
			t.Fatalf("trace_id %v / span_id %v are not W3C hex ids", e["trace_id"], e["span_id"])
		}
	}
}

func TestRunEventsParseWithRequiredFieldsAndUniqueIDs(t *testing.T) {
	s := newSink(t, nil)
	const count = 5000
	rep, err := Run(t.Context(), Config{Target: s.srv.URL, Count: count, Batch: 64, Concurrency: 3, Duration: time.Minute})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	events, _, _ := s.snapshot()
	if len(events) != count || rep.EventsAcked != count || rep.EventsSent != count {
		t.Fatalf("server got %d events, report sent %d acked %d; want %d each", len(events), rep.EventsSent, rep.EventsAcked, count)
	}
	ids := make(map[string]bool, count)
	services := map[string]bool{}
	levelCount := map[string]int{}
	traced := 0
	for _, e := range events {
		checkEvent(t, e)
		id := e["event_id"].(string)
		if ids[id] {
			t.Fatalf("event_id %s sent twice", id)
		}
		ids[id] = true
		if !strings.HasPrefix(id, rep.RunID+"-") {
			t.Fatalf("event_id %s does not start with the run id %s", id, rep.RunID)
		}
		services[e["service"].(string)] = true
		levelCount[e["level"].(string)]++
		if _, ok := e["trace_id"]; ok {
			traced++
		}
	}
	// A realistic mix, not one repeated event: many services, mostly
	// info, some errors, a share of traced events.
	if len(services) < 24 {
		t.Errorf("only %d services in %d events; want a few dozen", len(services), count)
	}
	if info := levelCount["info"]; info < count/2 || levelCount["error"] == 0 || levelCount["debug"] == 0 || levelCount["warn"] == 0 {
		t.Errorf("level mix %v: want mostly info with some debug, warn and error", levelCount)
	}
	if want := tracedShare(DefaultSize) * count; float64(traced) < want/2 || float64(traced) > want*2 {
		t.Errorf("%d of %d events carry trace ids; want about %.0f", traced, count, want)
	}
	if rep.Requests != int64((count+63)/64) {
		t.Errorf("report says %d requests; want %d batches of 64", rep.Requests, (count+63)/64)
	}
}

func TestRunJSONFormats(t *testing.T) {
	for _, batch := range []int{1, 50} {
		t.Run(fmt.Sprintf("batch%d", batch), func(t *testing.T) {
			s := newSink(t, nil)
			rep, err := Run(t.Context(), Config{Target: s.srv.URL, Count: 200, Batch: batch, Format: FormatJSON, Duration: time.Minute})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			events, acked, _ := s.snapshot()
			if len(events) != 200 || len(acked) != 200 || rep.EventsAcked != 200 {
				t.Fatalf("server stored %d events (%d ids), report acked %d; want 200", len(events), len(acked), rep.EventsAcked)
			}
			for _, e := range events {
				checkEvent(t, e)
			}
			if ct := s.bodies[0]; ct != "application/json|" {
				t.Errorf("Content-Type|Encoding = %q; want application/json without encoding", ct)
			}
		})
	}
}

func TestRunCompressedBodiesDecode(t *testing.T) {
	for _, enc := range []Encoding{EncodingGzip, EncodingZstd} {
		t.Run(string(enc), func(t *testing.T) {
			s := newSink(t, nil)
			rep, err := Run(t.Context(), Config{Target: s.srv.URL, Count: 1000, Batch: 100, Encoding: enc, Duration: time.Minute})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			events, acked, _ := s.snapshot()
			if len(events) != 1000 || len(acked) != 1000 {
				t.Fatalf("server decoded %d events with %d unique ids; want 1000", len(events), len(acked))
			}
			for _, e := range events {
				checkEvent(t, e)
			}
			if want := "application/x-ndjson|" + string(enc); s.bodies[0] != want {
				t.Errorf("headers %q; want %q", s.bodies[0], want)
			}
			// Synthetic logs compress like real ones: well, not perfectly.
			if ratio := rep.MBPerSecond / rep.WireMBPerSecond; ratio < 2 {
				t.Errorf("compression ratio %.2f; the %s body does not look compressed", ratio, enc)
			}
		})
	}
}

func TestRunHonoursRate(t *testing.T) {
	s := newSink(t, nil)
	// 2000 events/s for 1.5 s is 3000 events offered; a loaded CI machine
	// may fall behind, a broken pacer sends far more or stalls.
	rep, err := Run(t.Context(), Config{Target: s.srv.URL, Rate: 2000, Duration: 1500 * time.Millisecond, Batch: 20, Concurrency: 2})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	events, _, _ := s.snapshot()
	if rep.EventsSent < 1500 || rep.EventsSent > 3020 || int64(len(events)) != rep.EventsAcked {
		t.Fatalf("sent %d events (server stored %d, acked %d); want about 3000 and never more than offered", rep.EventsSent, len(events), rep.EventsAcked)
	}
}

func TestRunSlowRateWithBigBatchStillSends(t *testing.T) {
	s := newSink(t, nil)
	// 5 events/s for 1 s offers 5 events; a batch of 100 would never be
	// due within the run, so it is cut to the offer.
	rep, err := Run(t.Context(), Config{Target: s.srv.URL, Rate: 5, Duration: time.Second, Batch: 100})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.EventsSent != 5 || rep.EventsAcked != 5 {
		t.Fatalf("sent %d acked %d; want the 5 offered events", rep.EventsSent, rep.EventsAcked)
	}
}

func TestRunCountCapsAndDurationBounds(t *testing.T) {
	s := newSink(t, nil)
	rep, err := Run(t.Context(), Config{Target: s.srv.URL, Count: 777, Batch: 100, Duration: time.Minute})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.EventsSent != 777 || rep.Requests != 8 {
		t.Fatalf("--count 777 --batch 100 sent %d events in %d requests; want 777 in 8", rep.EventsSent, rep.Requests)
	}
	// Duration alone, as fast as possible, ends by itself.
	rep, err = Run(t.Context(), Config{Target: s.srv.URL, Duration: 300 * time.Millisecond, Batch: 10})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.EventsAcked == 0 || rep.DurationS > 30 {
		t.Fatalf("a 300 ms run acked %d events in %.1f s", rep.EventsAcked, rep.DurationS)
	}
}

func TestRunRespectsRetryAfterOn429(t *testing.T) {
	const refused = 3
	s := newSink(t, func(i int, w http.ResponseWriter) bool {
		if i < refused {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "log behind its bound", http.StatusTooManyRequests)
			return false
		}
		return true
	})
	rep, err := Run(t.Context(), Config{Target: s.srv.URL, Count: 500, Batch: 100, Concurrency: 1, Duration: time.Minute})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Errors["429"] != refused || len(rep.Errors) != 1 {
		t.Fatalf("errors %v; want exactly %d × 429", rep.Errors, refused)
	}
	// The refused batches are not retried: 500 sent, 200 acknowledged.
	if rep.EventsSent != 500 || rep.EventsAcked != 200 {
		t.Fatalf("sent %d acked %d; want 500 sent and 200 acked", rep.EventsSent, rep.EventsAcked)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 1; i <= refused; i++ {
		if gap := s.times[i].Sub(s.times[i-1]); gap < 900*time.Millisecond {
			t.Errorf("request %d came %v after a 429 with Retry-After: 1", i, gap)
		}
	}
}

func TestRunSleepsDefaultWithoutRetryAfterAndCountsStatuses(t *testing.T) {
	s := newSink(t, func(i int, w http.ResponseWriter) bool {
		switch i {
		case 0:
			http.Error(w, "no header", http.StatusServiceUnavailable)
		case 1:
			http.Error(w, "too big", http.StatusRequestEntityTooLarge)
		default:
			return true
		}
		return false
	})
	rep, err := Run(t.Context(), Config{Target: s.srv.URL, Count: 300, Batch: 100, Concurrency: 1, Duration: time.Minute})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Errors["503"] != 1 || rep.Errors["413"] != 1 || rep.EventsAcked != 100 {
		t.Fatalf("errors %v acked %d; want one 503, one 413, 100 acked", rep.Errors, rep.EventsAcked)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if gap := s.times[1].Sub(s.times[0]); gap < DefaultRetryAfter*9/10 {
		t.Errorf("a 503 without Retry-After was followed %v later; want the default %v pause", gap, DefaultRetryAfter)
	}
}

func TestAckLogHoldsExactlyTheAcknowledgedIDs(t *testing.T) {
	s := newSink(t, func(i int, w http.ResponseWriter) bool {
		if i%3 == 1 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "processor behind", http.StatusServiceUnavailable)
			return false
		}
		return true
	})
	path := filepath.Join(t.TempDir(), "acked.txt")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(t.Context(), Config{Target: s.srv.URL, Count: 3000, Batch: 50, Concurrency: 4, AckLog: f, Duration: time.Minute})
	f.Close()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	_, stored, _ := s.snapshot()
	logged := readLines(t, path)
	if len(logged) != len(stored) || int64(len(logged)) != rep.EventsAcked {
		t.Fatalf("ack log has %d ids, server stored %d, report acked %d; want all equal", len(logged), len(stored), rep.EventsAcked)
	}
	seen := map[string]bool{}
	for _, id := range logged {
		if !stored[id] {
			t.Fatalf("ack log lists %s, which the server refused", id)
		}
		if seen[id] {
			t.Fatalf("ack log lists %s twice", id)
		}
		seen[id] = true
	}
	if rep.Errors["503"] == 0 || rep.EventsAcked == 3000 {
		t.Fatalf("the server refused every third request, yet errors = %v and acked = %d", rep.Errors, rep.EventsAcked)
	}
}

func TestRunSurvivesServerRestartAndAcksOnlyStoredEvents(t *testing.T) {
	// What the crash test relies on: the server dies mid-run (connections
	// cut), comes back on the same port, and every id in the ack log was
	// stored by one of its lives.
	s := newSink(t, nil) // only its handler and its record of stored ids
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	first := &http.Server{Handler: http.HandlerFunc(s.handle)}
	go first.Serve(ln)

	var ackLog syncBuffer
	done := make(chan struct{})
	var rep Report
	var runErr error
	go func() {
		defer close(done)
		rep, runErr = Run(t.Context(), Config{Target: "http://" + addr, Rate: 3000, Duration: 3 * time.Second, Batch: 30, AckLog: &ackLog})
	}()
	time.Sleep(800 * time.Millisecond)
	first.Close() // cuts every connection, like kill -9
	time.Sleep(400 * time.Millisecond)
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	_, storedBefore, _ := s.snapshot()
	second := &http.Server{Handler: http.HandlerFunc(s.handle)}
	go second.Serve(ln2)
	t.Cleanup(func() { second.Close() })
	<-done
	if runErr != nil {
		t.Fatalf("Run: %v", runErr)
	}
	_, stored, _ := s.snapshot()
	logged := strings.Fields(ackLog.String())
	for _, id := range logged {
		if !stored[id] {
			t.Fatalf("ack log lists %s, which no server life stored", id)
		}
	}
	if int64(len(logged)) != rep.EventsAcked || rep.Errors["transport"] == 0 {
		t.Fatalf("ack log %d ids, acked %d, errors %v; want equal counts and transport errors while the server was down", len(logged), rep.EventsAcked, rep.Errors)
	}
	if len(stored) <= len(storedBefore) {
		t.Fatalf("the restarted server stored nothing new (%d ids before, %d after)", len(storedBefore), len(stored))
	}
}

func TestAckLogLeavesOutRejectedLines(t *testing.T) {
	// A 202 that rejected line 3 of 5 (lines count from 1): the ack log
	// holds the other four ids.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"accepted":4,"rejected":1,"errors":[{"line":3,"error":"bad ts"}]}`)
	}))
	t.Cleanup(srv.Close)
	var buf syncBuffer
	rep, err := Run(t.Context(), Config{Target: srv.URL, Count: 5, Batch: 5, AckLog: &buf, RunID: "r", Duration: time.Minute})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.EventsAcked != 4 || rep.EventsRejected != 1 {
		t.Fatalf("acked %d rejected %d; want 4 and 1", rep.EventsAcked, rep.EventsRejected)
	}
	if got, want := buf.String(), "r-0\nr-1\nr-3\nr-4\n"; got != want {
		t.Fatalf("ack log %q; want %q (line 3 is the third event, r-2)", got, want)
	}
}

func TestRunNothingAcknowledgedIsAnError(t *testing.T) {
	t.Run("server error", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "broken", http.StatusInternalServerError)
		}))
		t.Cleanup(srv.Close)
		rep, err := Run(t.Context(), Config{Target: srv.URL, Count: 300, Batch: 100, Concurrency: 1, Duration: time.Minute})
		if !errors.Is(err, ErrNoneAcknowledged) || rep.Errors["500"] != 3 {
			t.Fatalf("err %v errors %v; want ErrNoneAcknowledged and three 500s", err, rep.Errors)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // a port that refuses connections
		rep, err := Run(t.Context(), Config{Target: "http://" + addr, Count: 200, Batch: 100, Concurrency: 1, Duration: time.Minute})
		if !errors.Is(err, ErrNoneAcknowledged) || rep.Errors["transport"] != 2 {
			t.Fatalf("err %v errors %v; want ErrNoneAcknowledged and two transport errors", err, rep.Errors)
		}
	})
}

func TestRunStopsOnCancelAndStillReports(t *testing.T) {
	s := newSink(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	var progress syncBuffer
	done := make(chan struct{})
	var rep Report
	var err error
	go func() {
		defer close(done)
		rep, err = Run(ctx, Config{Target: s.srv.URL, Rate: 5000, Duration: time.Minute, Batch: 50, Progress: &progress})
	}()
	// Cancel once the run is under way and a progress line was due.
	time.Sleep(1200 * time.Millisecond)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, acked, _ := s.snapshot(); len(acked) > 0 && strings.Contains(progress.String(), "ev/s") {
			break
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20 s of the cancel")
	}
	if err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if !rep.Interrupted || rep.EventsAcked == 0 || rep.DurationS > 30 {
		t.Fatalf("report after cancel: interrupted=%v acked=%d duration=%.1fs", rep.Interrupted, rep.EventsAcked, rep.DurationS)
	}
	if !strings.Contains(progress.String(), "ev/s") {
		t.Fatalf("no progress line: %q", progress.String())
	}
}

func TestReportJSONHasTheDocumentedKeys(t *testing.T) {
	s := newSink(t, func(i int, w http.ResponseWriter) bool {
		if i == 0 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return false
		}
		return true
	})
	rep, err := Run(t.Context(), Config{Target: s.srv.URL, Count: 1000, Batch: 100, Concurrency: 1, Duration: time.Minute})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"events_per_second", "mb_per_second", "events_sent", "events_acked", "requests", "duration_s"} {
		if v, ok := m[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v; want a positive number", k, m[k])
		}
	}
	lat, _ := m["latency_ms"].(map[string]any)
	for _, k := range []string{"p50", "p99", "p999"} {
		if v, ok := lat[k].(float64); !ok || v <= 0 {
			t.Errorf("latency_ms.%s = %v; want a positive number", k, lat[k])
		}
	}
	if p50, p999 := lat["p50"].(float64), lat["p999"].(float64); p50 > p999 {
		t.Errorf("p50 %v > p999 %v", p50, p999)
	}
	if errs, _ := m["errors"].(map[string]any); errs["429"] != float64(1) {
		t.Errorf("errors = %v; want {\"429\": 1}", m["errors"])
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"events/s acked", "MB/s", "p50", "p99", "p999", "429: 1"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

func TestConfigErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		flag string
	}{
		{Config{Target: "127.0.0.1:8080", Count: 1}, "--target"},
		{Config{Target: "ftp://x", Count: 1}, "--target"},
		{Config{Rate: -1, Count: 1}, "--rate"},
		{Config{}, "--duration or --count"},
		{Config{Count: 1, Concurrency: -2}, "--concurrency"},
		{Config{Count: 1, Batch: 1 << 20, Size: 1 << 10}, "--batch"},
		{Config{Count: 1, Format: "xml"}, "--format"},
		{Config{Count: 1, RunID: "a b"}, "--run-id"},
	} {
		_, err := Run(t.Context(), tc.cfg)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("Config %+v: error %v; want ErrInvalidConfig naming %s", tc.cfg, err, tc.flag)
		}
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// syncBuffer is a bytes.Buffer safe for the progress goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
