package loki

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/wirelog/wirelog/internal/ingest"
	"github.com/wirelog/wirelog/internal/transport"
)

// recorder is a transport.Producer keeping what it was given, or failing
// with err; the real logs and real clients are in cmd/wirelog's tests.
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

func push(rec *recorder, ct string, body []byte, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	New(ingest.NewHandler(rec, ingest.Options{})).ServeHTTP(w, req)
	return w
}

// Protobuf builders, from push.proto's field numbers.
func pair(name, value string) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendString(b, value)
}

func entry(sec, nanos int64, line string, meta ...[]byte) []byte {
	ts := protowire.AppendTag(nil, 1, protowire.VarintType)
	ts = protowire.AppendVarint(ts, uint64(sec))
	ts = protowire.AppendTag(ts, 2, protowire.VarintType)
	ts = protowire.AppendVarint(ts, uint64(nanos))
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, ts)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, line)
	for _, m := range meta {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, m)
	}
	return b
}

// streamPB writes entries before labels on purpose: protobuf does not
// promise field order.
func streamPB(labels string, entries ...[]byte) []byte {
	var b []byte
	for _, e := range entries {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, e)
	}
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, labels)
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	return protowire.AppendVarint(b, 12345)
}

func pushPB(streams ...[]byte) []byte {
	var b []byte
	for _, s := range streams {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, s)
	}
	return snappy.Encode(nil, b)
}

func TestPushProto(t *testing.T) {
	rec := &recorder{}
	body := pushPB(
		streamPB(`{service_name="checkout", host="node-3", level="error", env="prod", quote="a\"b"}`,
			entry(1767225600, 5, "first", pair("trace_id", "0af7651916cd43dd8448eb211c80319c"), pair("pod", "p-1")),
			entry(1767225601, 0, "second")),
		streamPB(`{job="varlogs", detected_level="warn"}`, entry(0, 0, "no time")),
	)
	w := push(rec, "application/x-protobuf", body, "X-Scope-OrgID", "team-a")
	if w.Code != 204 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if len(rec.vals) != 3 {
		t.Fatalf("%d records", len(rec.vals))
	}
	a := rec.vals[0]
	attrs, _ := a["attrs"].(map[string]any)
	if a["ts"] != "2026-01-01T00:00:00.000000005Z" || a["service"] != "checkout" || a["host"] != "node-3" || a["level"] != "error" ||
		a["message"] != "first" || a["trace_id"] != "0af7651916cd43dd8448eb211c80319c" || attrs["env"] != "prod" || attrs["pod"] != "p-1" || attrs["quote"] != `a"b` {
		t.Errorf("mapped to %v", a)
	}
	if a["tenant"] != "team-a" {
		t.Errorf("X-Scope-OrgID not stored as the tenant: %v", a)
	}
	if _, ok := attrs["service_name"]; ok {
		t.Errorf("service_name both a field and an attribute: %v", attrs)
	}
	if rec.keys[0] != rec.keys[1] || rec.keys[0] == rec.keys[2] {
		t.Errorf("partition keys %q: one per stream", rec.keys)
	}
	c := rec.vals[2]
	if c["service"] != "varlogs" || c["level"] != "warn" || c["ts"] == "" {
		t.Errorf("job as service, detected_level as level, arrival time: %v", c)
	}
	if attrs, _ := c["attrs"].(map[string]any); attrs["job"] != "varlogs" {
		t.Errorf("job label kept as an attribute: %v", c["attrs"])
	}
}

func TestPushJSON(t *testing.T) {
	rec := &recorder{}
	body := `{"streams":[{"stream":{"service_name":"api","host":"h1"},"values":[["1767225600000000001","line one"],["1767225600000000002","line two",{"trace_id":"abc","user":"u1"}]]},` +
		`{"stream":{"app":"web"},"values":[["nope","bad ts"],["1767225600000000003","kept"]]},` +
		`{"stream":{},"values":[["1767225600000000004","no labels"]]}]}`
	w := push(rec, "application/json", []byte(body))
	if w.Code != 400 || !strings.Contains(w.Body.String(), "invalid timestamp") || !strings.Contains(w.Body.String(), "at least one label pair is required") {
		t.Fatalf("want Loki's 400 naming each bad entry, got %d %q", w.Code, w.Body)
	}
	if len(rec.vals) != 3 {
		t.Fatalf("good entries beside bad ones: %d stored, want 3", len(rec.vals))
	}
	b := rec.vals[1]
	if b["message"] != "line two" || b["trace_id"] != "abc" || b["ts"] != "2026-01-01T00:00:00.000000002Z" {
		t.Errorf("mapped to %v", b)
	}
	if attrs, _ := b["attrs"].(map[string]any); attrs["user"] != "u1" {
		t.Errorf("structured metadata kept as attributes: %v", b["attrs"])
	}
	if rec.vals[2]["service"] != "web" {
		t.Errorf("app label as service: %v", rec.vals[2])
	}
}

// TestPushRefusals: Loki's status codes and texts, and nothing stored.
func TestPushRefusals(t *testing.T) {
	for _, c := range []struct {
		name, ct string
		body     []byte
		err      error
		code     int
		text     string
	}{
		{"backpressure", "application/json", []byte(`{"streams":[{"stream":{"a":"b"},"values":[["1","x"]]}]}`), transport.ErrBackpressure, 429, "Ingestion rate limit exceeded"},
		{"unavailable", "application/x-protobuf", pushPB(streamPB(`{a="b"}`, entry(1, 0, "x"))), transport.ErrUnavailable, 503, "cannot take writes"},
		{"not snappy", "application/x-protobuf", []byte("\xff\xff\xff\xff\xff\xff"), nil, 400, "snappy"},
		{"not protobuf", "application/x-protobuf", snappy.Encode(nil, []byte("\x0a\xff\xff")), nil, 400, "error parsing push request"},
		{"not json", "application/json", []byte(`{"streams":`), nil, 400, "error parsing push request"},
		{"empty", "application/json", nil, nil, 400, "empty body"},
		{"content type", "text/plain", []byte("x"), nil, 415, "application/x-protobuf"},
		{"bad labels", "application/x-protobuf", pushPB(streamPB(`{a=b}`, entry(1, 0, "x"))), nil, 400, "error parsing labels"},
	} {
		rec := &recorder{err: c.err}
		w := push(rec, c.ct, c.body)
		if w.Code != c.code || !strings.Contains(w.Body.String(), c.text) || len(rec.vals) != 0 {
			t.Errorf("%s: %d %q (%d stored), want %d %q", c.name, w.Code, w.Body, len(rec.vals), c.code, c.text)
		}
		if (c.code == 429 || c.code == 503) && w.Header().Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", c.name)
		}
	}
}

func TestParseLabels(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
		ok   bool
	}{
		{`{a="b"}`, `a=b`, true},
		{` { job = "x" ,  host="h\"1\\" , } `, `job=x host=h"1\`, true},
		{`{}`, ``, true},
		{`{a="\u00e9\n"}`, "a=é\n", true},
		{`a="b"`, ``, false},
		{`{a=b}`, ``, false},
		{`{1a="b"}`, ``, false},
		{`{a="b" c="d"}`, ``, false},
		{`{a="b}`, ``, false},
		{`{a="\q"}`, ``, false},
	} {
		ls, err := parseLabels(nil, c.in)
		if (err == nil) != c.ok {
			t.Errorf("%q: err %v", c.in, err)
			continue
		}
		var got []string
		for _, l := range ls {
			got = append(got, l.name+"="+l.value)
		}
		if c.ok && strings.Join(got, " ") != c.want {
			t.Errorf("%q: %q, want %q", c.in, strings.Join(got, " "), c.want)
		}
	}
}

// TestPushLimits: --max-attributes bounds labels and metadata of one entry
// (a per-entry 400), --max-records the entries of a request (413).
func TestPushLimits(t *testing.T) {
	rec := &recorder{}
	h := New(ingest.NewHandler(rec, ingest.Options{MaxAttributes: 2, MaxRecords: 3}))
	do := func(body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	w := do(pushPB(streamPB(`{service_name="a", env="x"}`, entry(1, 0, "ok", pair("k1", "v")), entry(1, 0, "too many", pair("k1", "v"), pair("k2", "v")))))
	if w.Code != 400 || !strings.Contains(w.Body.String(), "--max-attributes") || len(rec.vals) != 1 {
		t.Errorf("%d %q, %d stored; want 400 naming --max-attributes and the good entry stored", w.Code, w.Body, len(rec.vals))
	}
	w = do(pushPB(streamPB(`{a="b"}`, entry(1, 0, "1"), entry(1, 0, "2"), entry(1, 0, "3"), entry(1, 0, "4"))))
	if w.Code != 413 || !strings.Contains(w.Body.String(), "--max-records") || len(rec.vals) != 1 {
		t.Errorf("%d %q, %d stored; want 413 naming --max-records and nothing more stored", w.Code, w.Body, len(rec.vals))
	}
}
