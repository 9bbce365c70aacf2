package api

import (
	_ "embed"
	"net/http"
)

// statusHTML is the built-in status page: totals, per-service and per-level
// counts, a rate sparkline and the live tail, drawn from the JSON API with no
// external assets. The React dashboard replaces it later.
//
//go:embed status.html
var statusHTML []byte

func statusPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(statusHTML)
}
