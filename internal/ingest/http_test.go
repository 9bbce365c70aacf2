package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/valyala/fastjson"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/transport"
)

// recorder is a transport.Producer that keeps what it was given, or fails
// with err. The real logs are exercised in the end-to-end tests of
// cmd/wirelog; here the subject is the HTTP contract.
type recorder struct {
	mu   sync.Mutex
	vals []string
	keys []string
	err  error
}

func (r *recorder) Produce(_ context.Context, recs []transport.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	for _, rec := range recs {
		r.vals = append(r.vals, string(rec.Value))
		r.keys = append(r.keys, string(rec.Key))
	}
	return nil
}
func (r *recorder) Ready(context.Context) error { return nil }
func (r *recorder) Close() error                { return nil }

func post(t *testing.T, h http.Handler, ct, enc string, body []byte) (int, Response, http.Header) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/logs", bytes.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var resp Response
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("status %d: body is not the JSON answer: %q", w.Code, w.Body.String())
	}
	return w.Code, resp, w.Header()
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zst(b []byte) []byte {
	e, _ := zstd.NewWriter(nil)
	return e.EncodeAll(b, nil)
}

func TestAcceptsEveryEncoding(t *testing.T) {
	nd := []byte("{\"message\":\"a\",\"level\":\"info\"}\n\n{\"message\":\"b\"}\n")
	arr := []byte(`[{"message":"a"},{"message":"b"}]`)
	cases := []struct {
		name, ct, enc string
		body          []byte
	}{
		{"ndjson", "application/x-ndjson", "", nd},
		{"ndjson-gzip", "application/x-ndjson", "gzip", gz(nd)},
		{"ndjson-zstd", "application/x-ndjson", "zstd", zst(nd)},
		{"json-array", "application/json", "", arr},
		{"json-array-gzip", "application/json; charset=utf-8", "gzip", gz(arr)},
		{"json-object", "application/json", "", []byte(`{"message":"a"} `)},
		{"sniffed-array", "", "", arr},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{}
			code, resp, _ := post(t, NewHandler(rec, Options{}), c.ct, c.enc, c.body)
			want := 2
			if c.name == "json-object" {
				want = 1
			}
			if code != http.StatusAccepted || resp.Accepted != want || resp.Rejected != 0 || len(rec.vals) != want {
				t.Fatalf("code %d resp %+v produced %d", code, resp, len(rec.vals))
			}
			for _, v := range rec.vals {
				if !json.Valid([]byte(v)) || !strings.Contains(v, `"message":"`) {
					t.Fatalf("produced record %q", v)
				}
			}
		})
	}
}

func TestMixedBodyKeepsGoodLines(t *testing.T) {
	body := "{\"message\":\"good1\"}\n{\"message\":\n[1]\n{\"service\":5}\n{\"message\":\"good2\",\"level\":\"warn\"}\n"
	rec := &recorder{}
	code, resp, _ := post(t, NewHandler(rec, Options{}), "application/x-ndjson", "", []byte(body))
	if code != http.StatusAccepted || resp.Accepted != 2 || resp.Rejected != 3 {
		t.Fatalf("code %d resp %+v", code, resp)
	}
	lines := []int{}
	for _, e := range resp.Errors {
		lines = append(lines, e.Line)
	}
	if fmt.Sprint(lines) != "[2 3 4]" {
		t.Fatalf("error lines %v, want [2 3 4]: %+v", lines, resp.Errors)
	}
	if !strings.Contains(resp.Errors[2].Error, `"service"`) {
		t.Fatalf("error for wrong type does not name the field: %q", resp.Errors[2].Error)
	}
	if len(rec.vals) != 2 || !strings.Contains(rec.vals[1], `"level":"warn"`) {
		t.Fatalf("produced %q", rec.vals)
	}
}

func TestRefusals(t *testing.T) {
	huge := []byte(`{"message":"` + strings.Repeat("x", 2048) + `"}`)
	cases := []struct {
		name, ct, enc string
		body          []byte
		opts          Options
		code          int
		msg           string
	}{
		{"empty", "application/x-ndjson", "", nil, Options{}, 400, "empty body"},
		{"whitespace", "application/x-ndjson", "", []byte(" \n\n "), Options{}, 400, "empty body"},
		{"all-bad", "application/x-ndjson", "", []byte("nope\n{]"), Options{}, 400, "no usable event"},
		{"wrong-type", "text/csv", "", []byte("a,b"), Options{}, 415, "application/x-ndjson"},
		{"form", "application/x-www-form-urlencoded", "", []byte("a=b"), Options{}, 415, "Content-Type"},
		{"bad-encoding", "application/json", "br", []byte("x"), Options{}, 415, "Content-Encoding"},
		{"broken-gzip", "application/json", "gzip", []byte("not gzip at all"), Options{}, 400, "gzip"},
		{"broken-zstd", "application/json", "zstd", []byte("not zstd at all"), Options{}, 400, "zstd"},
		{"truncated-gzip", "application/x-ndjson", "gzip", gz(huge)[:20], Options{}, 400, "gzip"},
		{"over-limit", "application/x-ndjson", "", huge, Options{MaxBodyBytes: 1024}, 413, "--max-body-bytes"},
		{"gzip-bomb", "application/x-ndjson", "gzip", gz(bytes.Repeat(huge, 64)), Options{MaxBodyBytes: 4096}, 413, "limit"},
		{"huge-line", "application/x-ndjson", "", huge, Options{MaxLineBytes: 100}, 413, "--max-line-bytes"},
		{"bad-array", "application/json", "", []byte(`[{"a":1},`), Options{}, 400, "no usable event"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{}
			code, resp, _ := post(t, NewHandler(rec, c.opts), c.ct, c.enc, c.body)
			text := resp.Message
			for _, e := range resp.Errors {
				text += " " + e.Error
			}
			if code != c.code || !strings.Contains(text, c.msg) {
				t.Fatalf("code %d (want %d), message %q (want it to mention %q)", code, c.code, text, c.msg)
			}
			if len(rec.vals) != 0 {
				t.Fatalf("refused request produced %d records", len(rec.vals))
			}
		})
	}
}

func TestPushBackCarriesRetryAfter(t *testing.T) {
	for _, c := range []struct {
		err  error
		code int
	}{
		{fmt.Errorf("disklog: backlog 2 GiB: %w", transport.ErrBackpressure), 429},
		{fmt.Errorf("kafka: %w", transport.ErrUnavailable), 503},
		{fmt.Errorf("fsync: input/output error"), 503},
	} {
		rec := &recorder{err: c.err}
		code, resp, hdr := post(t, NewHandler(rec, Options{}), "application/x-ndjson", "", []byte(`{"message":"x"}`))
		if code != c.code || hdr.Get("Retry-After") == "" || resp.Accepted != 0 {
			t.Fatalf("%v: code %d Retry-After %q resp %+v", c.err, code, hdr.Get("Retry-After"), resp)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	w := httptest.NewRecorder()
	NewHandler(&recorder{}, Options{}).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/logs", nil))
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
		t.Fatalf("GET answered %d", w.Code)
	}
}

func TestErrorListIsBounded(t *testing.T) {
	body := strings.Repeat("bad\n", 500) + `{"message":"ok"}`
	code, resp, _ := post(t, NewHandler(&recorder{}, Options{}), "application/x-ndjson", "", []byte(body))
	if code != 202 || resp.Rejected != 500 || len(resp.Errors) != 100 || resp.Accepted != 1 {
		t.Fatalf("code %d rejected %d errors listed %d", code, resp.Rejected, len(resp.Errors))
	}
}

// TestRecordKeyKeepsPerSourceOrder: the partition key is the host, or the
// service when there is no host, so one source's events stay on one Kafka
// partition in order.
func TestRecordKeyKeepsPerSourceOrder(t *testing.T) {
	rec := &recorder{}
	body := "{\"host\":\"web-1\",\"service\":\"api\"}\n{\"service\":\"batch\"}\n{\"message\":\"anonymous\"}\n"
	if code, _, _ := post(t, NewHandler(rec, Options{}), "application/x-ndjson", "", []byte(body)); code != 202 {
		t.Fatal(code)
	}
	if fmt.Sprint(rec.keys) != "[web-1 batch ]" {
		t.Fatalf("keys %q", rec.keys)
	}
}

// TestBinaryRecords: with Options.Record binary (--ingest-record-format,
// the default on the embedded log) every accepted event goes into the log
// as a binary record that decodes to the event its JSON record gives, with
// the same partition key.
func TestBinaryRecords(t *testing.T) {
	body := []byte("{\"ts\":\"2026-11-27T10:00:00Z\",\"service\":\"checkout\",\"level\":\"warn\",\"message\":\"a\",\"host\":\"web-1\",\"status\":402}\n" +
		"{\"message\":\"b\",\"service\":\"cart\"}\n")
	binRec, jsonRec := &recorder{}, &recorder{}
	now := func() time.Time { return time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) }
	if code, _, _ := post(t, NewHandler(binRec, Options{Record: event.RecordBinary, Now: now}), "application/x-ndjson", "", body); code != http.StatusAccepted {
		t.Fatalf("binary: %d", code)
	}
	if code, _, _ := post(t, NewHandler(jsonRec, Options{Now: now}), "application/x-ndjson", "", body); code != http.StatusAccepted {
		t.Fatalf("json: %d", code)
	}
	if len(binRec.vals) != 2 || len(jsonRec.vals) != 2 {
		t.Fatalf("produced %d and %d records", len(binRec.vals), len(jsonRec.vals))
	}
	var p fastjson.Parser
	var a event.Arena
	for i := range binRec.vals {
		if !event.IsBinaryRecord([]byte(binRec.vals[i])) {
			t.Fatalf("record %d is %q, not binary", i, binRec.vals[i])
		}
		var b, j event.Event
		if _, err := event.DecodeBinaryRecord([]byte(binRec.vals[i]), &a, &b); err != nil {
			t.Fatal(err)
		}
		if err := event.DecodeRecord(&p, []byte(jsonRec.vals[i]), &a, &j); err != nil {
			t.Fatal(err)
		}
		if !b.Time.Equal(j.Time) || b.Service != j.Service || b.Level != j.Level || b.Message != j.Message ||
			b.Host != j.Host || !bytes.Equal(b.Attrs, j.Attrs) || binRec.keys[i] != jsonRec.keys[i] {
			t.Errorf("record %d: binary %+v key %q, json %+v key %q", i, b, binRec.keys[i], j, jsonRec.keys[i])
		}
	}
}

func TestResolveRecordFormat(t *testing.T) {
	for _, c := range []struct {
		name  string
		kafka bool
		want  event.RecordFormat
	}{{"", false, event.RecordBinary}, {"auto", false, event.RecordBinary}, {"auto", true, event.RecordJSON},
		{"binary", true, event.RecordBinary}, {"json", false, event.RecordJSON}} {
		got, err := ResolveRecordFormat(c.name, c.kafka)
		if err != nil || got != c.want {
			t.Errorf("%q kafka=%v: %v %v, want %v", c.name, c.kafka, got, err, c.want)
		}
	}
	if _, err := ResolveRecordFormat("protobuf", false); err == nil || !strings.Contains(err.Error(), "--ingest-record-format") {
		t.Errorf("unknown format: %v", err)
	}
}

// TestRespondMatchesMarshal: the hand-written answer of a request with
// every line accepted is byte for byte what encoding/json writes.
func TestRespondMatchesMarshal(t *testing.T) {
	h := NewHandler(&recorder{}, Options{})
	for _, resp := range []Response{{}, {Accepted: 100}, {Accepted: 1 << 40, Rejected: 3}} {
		w := httptest.NewRecorder()
		h.respond(w, http.StatusAccepted, &resp)
		want, _ := json.Marshal(Response{Accepted: resp.Accepted, Rejected: resp.Rejected, Errors: []LineError{}})
		if got := w.Body.String(); got != string(want)+"\n" {
			t.Errorf("answer %q, encoding/json writes %q", got, want)
		}
		if ct, cl := w.Header().Get("Content-Type"), w.Header().Get("Content-Length"); ct != "application/json" || cl != fmt.Sprint(len(want)+1) {
			t.Errorf("Content-Type %q, Content-Length %q for %d bytes", ct, cl, len(want)+1)
		}
	}
}
