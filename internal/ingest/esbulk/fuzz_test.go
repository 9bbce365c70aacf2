package esbulk

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// FuzzBulk posts arbitrary bulk bodies: the answer is 200 with one item per
// action or a whole-request 400, always Elasticsearch-shaped JSON, never a
// panic or a 5xx; every record produced is valid JSON (the recorder refuses
// others, which would surface as a 503), and exactly the 201 items were
// stored. Seeds: testdata/fuzz/FuzzBulk plus the ones below.
func FuzzBulk(f *testing.F) {
	f.Add([]byte(mixed), "")
	f.Add([]byte("{\"index\":{}}\n{\"a\":{\"b\":{\"c\":[1,{\"d\":null}]}},\"message\":3}\n"), "_stream_fields=a.b.c,message")
	f.Add([]byte("{\"create\":{\"_id\":\"\\ud800\"}}\n{\"@timestamp\":1e300,\"host\":{\"name\":\"\\u0000\"}}\n"), "_time_field=x")
	f.Add([]byte("{\"delete\":{}}\n{\"update\":{}}\n"), "")
	f.Fuzz(func(t *testing.T, body []byte, query string) {
		q, _ := url.ParseQuery(query)
		rec := &recorder{}
		w := post(t, newMux(rec), "/_bulk?"+q.Encode(), body)
		switch w.Code {
		case 200:
			var r bulkResp
			if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
				t.Fatalf("200 answer is not JSON: %v\n%q", err, w.Body)
			}
			created := 0
			for _, it := range r.Items {
				for _, v := range it {
					if v.Status == 201 {
						created++
					}
				}
			}
			if created != len(rec.vals) {
				t.Fatalf("%d items created but %d records produced", created, len(rec.vals))
			}
			if r.Errors != (created != len(r.Items)) {
				t.Fatalf("errors=%v with %d of %d created", r.Errors, created, len(r.Items))
			}
		case 400:
			if len(rec.vals) != 0 {
				t.Fatalf("400 but %d records produced", len(rec.vals))
			}
			if !json.Valid(w.Body.Bytes()) || !strings.Contains(w.Body.String(), `"status":400`) {
				t.Fatalf("400 answer not Elasticsearch-shaped: %q", w.Body)
			}
		default:
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
	})
}
