package webui

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

var app = fstest.MapFS{
	"index.html":             {Data: []byte(`<!doctype html><script type="module" src="/assets/index-abc123.js"></script>`)},
	"assets/index-abc123.js": {Data: []byte(strings.Repeat("console.log('wirelog');\n", 200))},
	// What `make ui` writes beside each text asset (the bytes are opaque
	// to the server; the browser test checks real ones decode).
	"assets/index-abc123.js.br": {Data: []byte("BROTLI")},
}

func serve(h http.Handler, path string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestCacheHeadersAndGzip(t *testing.T) {
	h := New(app)
	page := serve(h, "/explore?from=-1h", nil)
	if page.Code != 200 || page.Header().Get("Cache-Control") != "no-cache" || !strings.Contains(page.Body.String(), "index-abc123.js") {
		t.Fatalf("page route: %d %q %q", page.Code, page.Header().Get("Cache-Control"), page.Body)
	}
	if again := serve(h, "/", map[string]string{"If-None-Match": page.Header().Get("ETag")}); again.Code != http.StatusNotModified {
		t.Errorf("revalidating index.html with its ETag: %d, want 304", again.Code)
	}
	br := serve(h, "/assets/index-abc123.js", map[string]string{"Accept-Encoding": "gzip, deflate, br"})
	if br.Header().Get("Content-Encoding") != "br" || br.Body.String() != "BROTLI" || !strings.Contains(br.Header().Get("Vary"), "Accept-Encoding") {
		t.Fatalf("asset for a brotli client: %v %q, want the build's .br", br.Header(), br.Body)
	}
	if raw := serve(h, "/assets/index-abc123.js.br", nil); raw.Code != 404 {
		t.Errorf("the .br file under its own name: %d, want 404", raw.Code)
	}
	js := serve(h, "/assets/index-abc123.js", map[string]string{"Accept-Encoding": "br;q=0, gzip"})
	if js.Code != 200 || !strings.Contains(js.Header().Get("Cache-Control"), "immutable") || js.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("asset: %d %v", js.Code, js.Header())
	}
	zr, err := gzip.NewReader(js.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(zr)
	if string(body) != string(app["assets/index-abc123.js"].Data) {
		t.Error("gzipped asset does not decompress to the file")
	}
	if plain := serve(h, "/assets/index-abc123.js", map[string]string{"Accept-Encoding": "gzip;q=0"}); plain.Header().Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 still got gzip")
	}
	if miss := serve(h, "/assets/index-old999.js", nil); miss.Code != 404 {
		t.Errorf("a previous build's asset: %d, want 404 (not index.html)", miss.Code)
	}
	if api := serve(h, "/api/v1/nope", nil); api.Code != 404 || !strings.HasPrefix(api.Header().Get("Content-Type"), "application/json") {
		t.Errorf("unknown API path: %d %s, want a JSON 404", api.Code, api.Header().Get("Content-Type"))
	}
}

func TestNotBuiltPage(t *testing.T) {
	w := serve(New(fstest.MapFS{".gitkeep": {}}), "/", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "dashboard not built: run make ui") || w.Header().Get("X-Wirelog-Dashboard") != "not-built" {
		t.Errorf("without a build: %d %q", w.Code, w.Body)
	}
	// The embedded one compiles either way and answers something useful.
	if w := serve(Handler(), "/", nil); w.Code != 200 {
		t.Errorf("embedded dashboard: %d", w.Code)
	}
}
