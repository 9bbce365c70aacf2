// Package api serves wirelog's HTTP query API over the store: stats,
// rollups, search, the live tail, health and readiness, and the built-in
// status page. The ingest endpoints and /metrics are mounted by the caller on
// the mux New returns.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wirelog/wirelog/internal/store"
)

// Options configure the API.
type Options struct {
	Store *store.Store
	// Tail, when set, serves GET /api/v1/tail.
	Tail *TailHub
	// Ready reports readiness for /readyz; nil means always ready.
	Ready func(context.Context) error
	// Now is the clock relative times ("-15m") are resolved against.
	Now func() time.Time
}

// New returns a mux serving the query API. Callers add their own routes.
func New(opts Options) *http.ServeMux {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &api{opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/stats", a.stats)
	mux.HandleFunc("GET /api/v1/rollups", a.rollups)
	mux.HandleFunc("GET /api/v1/logs/search", a.search)
	if opts.Tail != nil {
		mux.Handle("GET /api/v1/tail", opts.Tail)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("GET /{$}", statusPage)
	return mux
}

type api struct{ opts Options }

func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	if a.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.opts.Ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unready", "reason": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (a *api) stats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var req store.StatsRequest
	var err error
	if req.From, err = parseTime(q.Get("from"), a.opts.Now()); err != nil {
		badParam(w, "from", err)
		return
	}
	if req.To, err = parseTime(q.Get("to"), a.opts.Now()); err != nil {
		badParam(w, "to", err)
		return
	}
	res, err := a.opts.Store.Stats(r.Context(), req)
	if err != nil {
		storeFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *api) rollups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := a.opts.Now()
	req := store.RollupsRequest{Service: q.Get("service"), Level: q.Get("level")}
	var err error
	if req.From, err = parseTime(q.Get("from"), now); err != nil {
		badParam(w, "from", err)
		return
	}
	if req.To, err = parseTime(q.Get("to"), now); err != nil {
		badParam(w, "to", err)
		return
	}
	if req.From.IsZero() {
		req.From = now.Add(-15 * time.Minute)
	}
	if req.To.IsZero() {
		req.To = now
	}
	if s := q.Get("step"); s != "" {
		if req.Step, err = parseStep(s); err != nil {
			badParam(w, "step", err)
			return
		}
	}
	if b := q.Get("by"); b != "" {
		req.By = strings.Split(b, ",")
	}
	res, err := a.opts.Store.Rollups(r.Context(), req)
	if err != nil {
		storeFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *api) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := a.opts.Now()
	req := store.SearchRequest{
		Service: q.Get("service"), Level: q.Get("level"), Query: q.Get("q"),
		TraceID: q.Get("trace_id"), Tenant: q.Get("tenant"),
	}
	var err error
	if req.From, err = parseTime(q.Get("from"), now); err != nil {
		badParam(w, "from", err)
		return
	}
	if req.To, err = parseTime(q.Get("to"), now); err != nil {
		badParam(w, "to", err)
		return
	}
	if l := q.Get("limit"); l != "" {
		if req.Limit, err = strconv.Atoi(l); err != nil {
			badParam(w, "limit", errors.New("want an integer"))
			return
		}
	}
	res, err := a.opts.Store.Search(r.Context(), req)
	if err != nil {
		storeFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// parseTime accepts RFC 3339, epoch seconds or milliseconds, and times
// relative to now ("-15m", "-2h", "now"). Empty means unset.
func parseTime(s string, now time.Time) (time.Time, error) {
	switch {
	case s == "":
		return time.Time{}, nil
	case s == "now":
		return now, nil
	case s[0] == '-':
		d, err := time.ParseDuration(s[1:])
		if err != nil {
			return time.Time{}, fmt.Errorf("relative time %q: want e.g. -15m or -2h", s)
		}
		return now.Add(-d), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > 1e11 {
			return time.UnixMilli(n).UTC(), nil
		}
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not RFC 3339, epoch seconds/ms, or relative like -15m", s)
	}
	return t, nil
}

// parseStep accepts a Go duration ("10s", "1m") or plain seconds ("60").
func parseStep(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration like 10s or 1m", s)
	}
	return d, nil
}

type apiError struct {
	Error string `json:"error"`
	Param string `json:"param,omitempty"`
}

func badParam(w http.ResponseWriter, param string, err error) {
	writeJSON(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("parameter %s: %v", param, err), Param: param})
}

// storeFailed answers a store error: 400 for a request the store refused,
// 503 when the store timed out or is closed, 500 otherwise.
func storeFailed(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrInvalidRequest):
		var re *store.RequestError
		param := ""
		if errors.As(err, &re) {
			param = re.Field
		}
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error(), Param: param})
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, store.ErrClosed), errors.Is(err, context.Canceled):
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "store busy or closing: " + err.Error()})
	default:
		slog.Error("api: store query failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, apiError{Error: "store query failed: " + err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
