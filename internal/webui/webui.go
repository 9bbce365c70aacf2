// Package webui serves the dashboard: the React app in web/, built by Vite
// into dist/ (`make ui`) and embedded in the binary.
//
// Vite names every asset by its content hash (assets/index-3f9a1c.js), so
// assets are cached for a year as immutable; index.html, which names the
// current hashes, is revalidated on every load (no-cache + ETag). Text
// assets are gzipped once, in memory, the first time they are asked for;
// their brotli form is made at build time (`make ui` writes NAME.br next to
// each, with Node's own zlib: no Go brotli dependency) and preferred when
// the browser accepts br. A .br file is never served under its own name.
//
// Built assets are not committed: dist/ holds only a placeholder, so a
// plain `go build` compiles and the dashboard answers with a page that says
// to run `make ui`. Paths under /api/ are never answered with the app, so a
// mistyped API path is a JSON 404, not HTML.
package webui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
)

// Cache lifetimes.
const (
	// assetCacheControl is for hashed file names: the content of a name never
	// changes, so browsers and proxies may keep it for a year.
	assetCacheControl = "public, max-age=31536000, immutable"
	// pageCacheControl is for index.html and unhashed files: revalidate
	// every time so a new build is picked up on the next load.
	pageCacheControl = "no-cache"
	// minGzipSize is the smallest body worth compressing.
	minGzipSize = 1024
)

//go:embed all:dist
var dist embed.FS

// notBuilt is served instead of the app when dist/ has no index.html.
const notBuilt = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wirelog: dashboard not built</title></head>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;line-height:1.5">
<h1>dashboard not built: run make ui</h1>
<p>This wirelog binary was built without the dashboard's assets. Run <code>make ui</code>
(or <code>make run</code>, which builds it when web/ changed) and rebuild the binary.</p>
<p>The JSON API is served as usual: <a href="/api/v1/stats">/api/v1/stats</a>,
<a href="/metrics">/metrics</a>, <a href="/healthz">/healthz</a>.</p>
</body></html>
`

// Handler serves the embedded dashboard.
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded; Sub of an existing directory cannot fail
	}
	return New(sub)
}

// Built reports whether the embedded dashboard was built (`make ui`).
func Built() bool {
	_, err := fs.Stat(dist, "dist/index.html")
	return err == nil
}

// New serves the app in fsys (index.html at its root, hashed files under
// assets/).
func New(fsys fs.FS) http.Handler {
	return &server{fsys: fsys, files: map[string]*file{}}
}

type server struct {
	fsys  fs.FS
	mu    sync.Mutex
	files map[string]*file
}

// file is one asset read into memory, with its gzip and brotli forms when
// those are smaller.
type file struct {
	body, gz, br []byte
	ctype        string
	etag         string
}

func (s *server) load(name string) *file {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.files[name]; ok {
		return f
	}
	body, err := fs.ReadFile(s.fsys, name)
	if err != nil {
		s.files[name] = nil
		return nil
	}
	sum := sha256.Sum256(body)
	f := &file{body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	f.ctype = mime.TypeByExtension(path.Ext(name))
	if f.ctype == "" {
		f.ctype = http.DetectContentType(body)
	}
	if len(body) >= minGzipSize && compressible(f.ctype) {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		zw.Write(body)
		zw.Close()
		if b.Len() < len(body) {
			f.gz = b.Bytes()
		}
		if br, err := fs.ReadFile(s.fsys, name+".br"); err == nil && len(br) < len(body) {
			f.br = br
		}
	}
	s.files[name] = f
	return f
}

func compressible(ctype string) bool {
	for _, p := range []string{"text/", "application/javascript", "application/json", "image/svg+xml", "application/manifest+json"} {
		if strings.HasPrefix(ctype, p) {
			return true
		}
	}
	return false
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/v1/") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":"no such API route; see docs/openapi.yaml"}` + "\n"))
		return
	}
	name := strings.TrimPrefix(path.Clean(p), "/")
	if strings.HasSuffix(name, ".br") {
		http.NotFound(w, r) // a compressed form, served only as Content-Encoding
		return
	}
	if name != "" && name != "index.html" {
		if f := s.load(name); f != nil {
			cc := pageCacheControl
			if strings.HasPrefix(name, "assets/") {
				cc = assetCacheControl
			}
			s.write(w, r, f, cc)
			return
		}
		if strings.HasPrefix(name, "assets/") || path.Ext(name) != "" {
			// A missing hashed asset is an old page asking for a previous
			// build's file: a 404 lets it fail fast instead of parsing HTML.
			http.NotFound(w, r)
			return
		}
	}
	// Every other path is a page of the app (/explore, /tail?...): the app
	// routes it in the browser.
	f := s.load("index.html")
	if f == nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", pageCacheControl)
		w.Header().Set("X-Wirelog-Dashboard", "not-built")
		w.Write([]byte(notBuilt))
		return
	}
	s.write(w, r, f, pageCacheControl)
}

func (s *server) write(w http.ResponseWriter, r *http.Request, f *file, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", f.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if f.gz != nil || f.br != nil {
		h.Add("Vary", "Accept-Encoding")
	}
	if match := r.Header.Get("If-None-Match"); match != "" && match == f.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := f.body
	ae := r.Header.Get("Accept-Encoding")
	switch {
	case f.br != nil && accepts(ae, "br"):
		h.Set("Content-Encoding", "br")
		body = f.br
	case f.gz != nil && accepts(ae, "gzip"):
		h.Set("Content-Encoding", "gzip")
		body = f.gz
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

// accepts reports whether an Accept-Encoding header allows the coding enc.
func accepts(ae, enc string) bool {
	for _, part := range strings.Split(ae, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.TrimSpace(name)
		if !strings.EqualFold(name, enc) && name != "*" {
			continue
		}
		if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				return false
			}
		}
		return true
	}
	return false
}
