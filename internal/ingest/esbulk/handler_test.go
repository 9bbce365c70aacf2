package esbulk

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

	"github.com/wirelog/wirelog/internal/ingest"
	"github.com/wirelog/wirelog/internal/transport"
)

// recorder is a transport.Producer keeping what it was given, or failing
// with err; the real logs and real shippers are in cmd/wirelog's tests.
type recorder struct {
	mu   sync.Mutex
	vals []map[string]any
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
		var m map[string]any
		if err := json.Unmarshal(rec.Value, &m); err != nil {
			return fmt.Errorf("record is not JSON: %q", rec.Value)
		}
		r.vals = append(r.vals, m)
		r.keys = append(r.keys, string(rec.Key))
	}
	return nil
}
func (r *recorder) Ready(context.Context) error { return nil }
func (r *recorder) Close() error                { return nil }

func newMux(rec *recorder) *http.ServeMux {
	gw := ingest.NewHandler(rec, ingest.Options{})
	mux := http.NewServeMux()
	for _, rt := range New(gw, nil).Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	mux.Handle("GET /{$}", Root(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) })))
	return mux
}

type bulkResp struct {
	Took   int  `json:"took"`
	Errors bool `json:"errors"`
	Items  []map[string]struct {
		Status int
		ID     string `json:"_id"`
		Index  string `json:"_index"`
		Error  *struct{ Type, Reason string }
	}
}

func post(t *testing.T, mux http.Handler, path string, body []byte, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	return w
}

const mixed = `{"index":{"_index":"logs-a","_id":"x1"}}
{"@timestamp":"2026-03-01T12:00:00.5Z","message":"ok one","host":{"name":"web-1"},"service":{"name":"shop"},"log":{"level":"WARN"},"trace":{"id":"abc"},"kubernetes":{"pod":{"name":"p-1"}},"tags":["a","b"]}
{"create":{}}
{"message":"broken"
{"delete":{"_index":"logs-a","_id":"x1"}}
{"update":{"_id":"x1"}}
{"doc":{"message":"changed"}}
{"create":{"_index":"logs-b"}}
{"@timestamp":"last tuesday","message":"bad time"}
{"index":{}}
["not","an","object"]
{"create":{}}
{"timestamp":1767225600123,"msg":"ok two","level":"notice-ish","hostname":"db-2"}
`

// TestBulkMixed: good documents stored, each bad one answered per item
// with Elasticsearch's shape, errors:true, items in request order.
func TestBulkMixed(t *testing.T) {
	rec := &recorder{}
	w := post(t, newMux(rec), "/logs-default/_bulk", []byte(mixed))
	if w.Code != 200 || w.Header().Get("X-Elastic-Product") != "Elasticsearch" {
		t.Fatalf("status %d headers %v: %s", w.Code, w.Header(), w.Body)
	}
	var r bulkResp
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Fatalf("answer is not JSON: %v\n%s", err, w.Body)
	}
	want := []struct {
		op     string
		status int
		typ    string
	}{{"index", 201, ""}, {"create", 400, "document_parsing_exception"}, {"delete", 400, "illegal_argument_exception"},
		{"update", 400, "illegal_argument_exception"}, {"create", 400, "document_parsing_exception"}, {"index", 400, "document_parsing_exception"}, {"create", 201, ""}}
	if !r.Errors || len(r.Items) != len(want) {
		t.Fatalf("errors=%v, %d items: %s", r.Errors, len(r.Items), w.Body)
	}
	for i, wi := range want {
		it, ok := r.Items[i][wi.op]
		if !ok || it.Status != wi.status || (wi.typ != "" && (it.Error == nil || it.Error.Type != wi.typ || it.Error.Reason == "")) || (wi.typ == "" && it.Error != nil) {
			t.Errorf("item %d = %+v, want %s %d %s", i, r.Items[i], wi.op, wi.status, wi.typ)
		}
	}
	if it := r.Items[0]["index"]; it.ID != "x1" || it.Index != "logs-a" {
		t.Errorf("first item id/index %+v", it)
	}
	if it := r.Items[6]["create"]; it.ID == "" || it.Index != "logs-default" {
		t.Errorf("last item: want a generated id and the URL's index, got %+v", it)
	}
	if len(rec.vals) != 2 {
		t.Fatalf("produced %d records, want 2", len(rec.vals))
	}
	a, b := rec.vals[0], rec.vals[1]
	if a["ts"] != "2026-03-01T12:00:00.5Z" || a["message"] != "ok one" || a["host"] != "web-1" || a["service"] != "shop" || a["level"] != "warn" || a["trace_id"] != "abc" {
		t.Errorf("ECS document mapped to %v", a)
	}
	attrs, _ := a["attrs"].(map[string]any)
	if attrs["kubernetes.pod.name"] != "p-1" || fmt.Sprint(attrs["tags"]) != "[a b]" {
		t.Errorf("attributes %v: want nested objects flattened to dotted names, arrays kept", attrs)
	}
	if rec.keys[0] != "shop,web-1" {
		t.Errorf("partition key %q, want the stream fields service.name,host.name", rec.keys[0])
	}
	if b["ts"] != "2026-01-01T00:00:00.123Z" || b["message"] != "ok two" || b["host"] != "db-2" || b["level"] != "unknown" {
		t.Errorf("native-named document mapped to %v", b)
	}
	if attrs, _ := b["attrs"].(map[string]any); attrs["level"] != "notice-ish" {
		t.Errorf("an unknown level is kept as an attribute, got %v", b["attrs"])
	}
}

// TestBulkMappingArgs: _msg_field, _time_field and _stream_fields from the
// query string or headers, as VictoriaLogs takes them.
func TestBulkMappingArgs(t *testing.T) {
	body := []byte("{\"index\":{}}\n{\"text\":\"hi\",\"when\":\"2026-02-02T02:02:02Z\",\"app\":\"x\",\"message\":\"not me\"}\n")
	for _, c := range []struct {
		path string
		hdr  []string
	}{
		{"/_bulk?_msg_field=body,text&_time_field=when&_stream_fields=app", nil},
		{"/insert/elasticsearch/_bulk", []string{"_msg_field", "text", "_time_field", "when", "_stream_fields", "app"}},
	} {
		rec := &recorder{}
		w := post(t, newMux(rec), c.path, body, c.hdr...)
		if w.Code != 200 || len(rec.vals) != 1 {
			t.Fatalf("%s: %d %s", c.path, w.Code, w.Body)
		}
		v := rec.vals[0]
		attrs, _ := v["attrs"].(map[string]any)
		if v["message"] != "hi" || v["ts"] != "2026-02-02T02:02:02Z" || rec.keys[0] != "x" || attrs["message"] != "not me" {
			t.Errorf("%s: mapped %v key %q", c.path, v, rec.keys[0])
		}
	}
}

func TestBulkGzip(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(strings.Repeat("{\"create\":{}}\n{\"message\":\"z\"}\n", 100)))
	zw.Close()
	rec := &recorder{}
	w := post(t, newMux(rec), "/_bulk", buf.Bytes(), "Content-Encoding", "gzip")
	if w.Code != 200 || len(rec.vals) != 100 || strings.Contains(w.Body.String(), `"errors":true`) {
		t.Fatalf("%d, %d records: %.300s", w.Code, len(rec.vals), w.Body)
	}
}

// TestBulkPushBack: a log behind its bound is a 429 in Elasticsearch's
// error shape with Retry-After, which every ES shipper backs off on; an
// unavailable log a 503; nothing is acknowledged either way.
func TestBulkPushBack(t *testing.T) {
	for _, c := range []struct {
		err  error
		code int
		typ  string
	}{{transport.ErrBackpressure, 429, "es_rejected_execution_exception"}, {transport.ErrUnavailable, 503, "unavailable_shards_exception"}} {
		rec := &recorder{err: c.err}
		w := post(t, newMux(rec), "/_bulk", []byte("{\"index\":{}}\n{\"message\":\"m\"}\n"))
		var e struct {
			Error struct {
				RootCause []struct{ Type string } `json:"root_cause"`
				Type      string
				Reason    string
			}
			Status int
		}
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
			t.Fatal(err, w.Body)
		}
		if w.Code != c.code || e.Status != c.code || e.Error.Type != c.typ || len(e.Error.RootCause) != 1 || w.Header().Get("Retry-After") == "" {
			t.Errorf("%v: %d %v %s", c.err, w.Code, w.Header(), w.Body)
		}
	}
}

// TestBulkWholeRequestErrors: what Elasticsearch refuses as a whole (a
// broken action line, an empty body) is a 400 with nothing stored.
func TestBulkWholeRequestErrors(t *testing.T) {
	for _, body := range []string{"{\"index\":{}}\n{\"message\":\"ok\"}\n{\"frobnicate\":{}}\n{}\n", "{\"index\":{}}\n{\"message\":\"ok\"}\n{\"index\":{}}\n", "not json\n", "", "\n\n"} {
		rec := &recorder{}
		w := post(t, newMux(rec), "/_bulk", []byte(body))
		if w.Code != 400 || len(rec.vals) != 0 || !strings.Contains(w.Body.String(), `"status":400`) {
			t.Errorf("%q: %d, %d stored: %s", body, w.Code, len(rec.vals), w.Body)
		}
	}
}

// TestHandshake: the requests shippers make before sending.
func TestHandshake(t *testing.T) {
	mux := newMux(&recorder{})
	for _, c := range []struct {
		method, path, accept, want string
	}{
		{"GET", "/", "application/json", `"number":"8.19.0"`},
		{"GET", "/", "*/*", `"tagline":"You Know, for Search"`},
		{"HEAD", "/", "", ""},
		{"GET", "/", "text/html,application/xhtml+xml", "<html>"},
		{"GET", "/insert/elasticsearch/", "", `"number":"8.19.0"`},
		{"GET", "/_license", "", `"status":"active"`},
		{"GET", "/insert/elasticsearch/_license", "", `"type":"basic"`},
		{"GET", "/_xpack", "", `"ilm"`},
		{"GET", "/_nodes/http", "", `"publish_address":"example.com"`},
		{"GET", "/_cluster/health", "", `"status":"green"`},
		{"GET", "/_cat/health", "", " green "},
		{"HEAD", "/_index_template/filebeat-8.19.0", "", ""},
		{"PUT", "/_index_template/filebeat-8.19.0", "", `"acknowledged":true`},
		{"PUT", "/_ilm/policy/logstash-policy", "", `"acknowledged":true`},
		{"GET", "/_ilm/policy/filebeat", "", `{}`},
		{"PUT", "/_ingest/pipeline/p", "", `"acknowledged":true`},
		{"PUT", "/insert/elasticsearch/_template/logstash", "", `"acknowledged":true`},
	} {
		req := httptest.NewRequest(c.method, "http://example.com"+c.path, strings.NewReader("{}"))
		if c.accept != "" {
			req.Header.Set("Accept", c.accept)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != 200 || !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("%s %s: %d %q, want %q", c.method, c.path, w.Code, w.Body, c.want)
		}
		if c.want != "<html>" && w.Header().Get("X-Elastic-Product") != "Elasticsearch" {
			t.Errorf("%s %s: no X-Elastic-Product header", c.method, c.path)
		}
	}
}

// TestBulkLimits: the native route's record limits apply per document
// (attributes, nesting: a per-item error) and per request (records: 413).
func TestBulkLimits(t *testing.T) {
	rec := &recorder{}
	gw := ingest.NewHandler(rec, ingest.Options{MaxAttributes: 3, MaxDepth: 2, MaxRecords: 3})
	mux := http.NewServeMux()
	for _, rt := range New(gw, nil).Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	body := "{\"create\":{}}\n{\"message\":\"ok\"}\n" +
		"{\"create\":{}}\n{\"a\":1,\"b\":2,\"c\":3,\"d\":4}\n" +
		"{\"create\":{}}\n{\"a\":{\"b\":{\"c\":{}}}}\n"
	w := post(t, mux, "/_bulk", []byte(body))
	var r bulkResp
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil || w.Code != 200 || len(r.Items) != 3 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	for i, want := range []int{201, 400, 400} {
		if it := r.Items[i]["create"]; it.Status != want || (want == 400 && !strings.Contains(it.Error.Reason, "--max-")) {
			t.Errorf("item %d: %+v, want %d naming the flag", i, it, want)
		}
	}
	if len(rec.vals) != 1 {
		t.Errorf("%d stored, want 1", len(rec.vals))
	}
	w = post(t, mux, "/_bulk", []byte(strings.Repeat("{\"create\":{}}\n{\"message\":\"m\"}\n", 4)))
	if w.Code != 413 || !strings.Contains(w.Body.String(), "--max-records") || len(rec.vals) != 1 {
		t.Errorf("4 documents over --max-records 3: %d %s (%d stored)", w.Code, w.Body, len(rec.vals))
	}
}
