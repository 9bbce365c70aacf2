package ingest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzBody posts arbitrary bodies as NDJSON and JSON: the gateway must answer
// one of the documented statuses with the documented JSON, never panic or
// 500, and produce only valid JSON records.
func FuzzBody(f *testing.F) {
	f.Add([]byte("{\"message\":\"a\"}\n{\"ts\":1}\n"), false)
	f.Add([]byte(`[{"message":"a"},{"level":"x"},3]`), true)
	f.Add([]byte("{\"a\":\"\\ud800\"}\n\xff"), false)
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		ct := "application/x-ndjson"
		if asJSON {
			ct = "application/json"
		}
		rec := &recorder{}
		req := httptest.NewRequest(http.MethodPost, "/api/v1/logs", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		w := httptest.NewRecorder()
		NewHandler(rec, Options{}).ServeHTTP(w, req)
		if w.Code != 202 && w.Code != 400 && w.Code != 413 {
			t.Fatalf("status %d for %q", w.Code, body)
		}
		var resp Response
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatalf("answer is not JSON: %q", w.Body.String())
		}
		if resp.Accepted != len(rec.vals) {
			t.Fatalf("accepted %d but produced %d", resp.Accepted, len(rec.vals))
		}
		for _, v := range rec.vals {
			if !json.Valid([]byte(v)) {
				t.Fatalf("produced invalid JSON %q from %q", v, body)
			}
		}
	})
}
