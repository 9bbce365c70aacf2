// Package api serves wirelog's HTTP query API over the store: stats,
// rollups, search, the Explore queries (histogram, fields, context, export),
// patterns, the live tail (server-sent events), health and readiness, and the
// dashboard (Options.UI) at every other GET path.
//
// New returns an *http.ServeMux with these routes; the caller adds its own
// (POST /api/v1/logs, POST /v1/logs, GET /metrics) to the same mux. Every
// route is documented in docs/openapi.yaml, and a test keeps the two in step.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/wirelog/wirelog/internal/storage"
	"github.com/wirelog/wirelog/internal/store"
)

// Defaults.
const (
	// DefaultRollupWindow is the rollups window when from is not given.
	DefaultRollupWindow = time.Hour
	// maxAutoBuckets is how many buckets the automatic rollup step aims at.
	maxAutoBuckets = 360
	// readyTimeout bounds one readiness check.
	readyTimeout = 2 * time.Second
	// tailKeepalive is how often an idle tail stream gets a comment line, so
	// proxies and browsers keep the connection open.
	tailKeepalive = 15 * time.Second
)

// Querier is what the API reads from: the store contract, implemented by
// the DuckDB store and the VictoriaLogs store.
type Querier = storage.Querier

// Options configures the API.
type Options struct {
	// Store answers stats, rollups and search. Required.
	Store Querier
	// Tail serves GET /api/v1/tail; nil makes an empty hub (nothing
	// publishes to it, so clients only get keepalives).
	Tail *TailHub
	// Ready reports readiness for /readyz; nil means always ready.
	Ready func(context.Context) error
	// Now is the clock relative times ("-15m") resolve against; nil = time.Now.
	Now func() time.Time
	// Logger receives store failures; nil = slog.Default().
	Logger *slog.Logger
	// Root, when set, serves GET / and HEAD / in place of the dashboard at exactly /;
	// it is given the page to hand browsers (the Elasticsearch handshake
	// answers the other clients: esbulk.Root).
	Root func(page http.Handler) http.Handler

	// Dashboard and Explore (explore.go).
	DashboardOptions
}

// route is one route New mounts; routes is the list the OpenAPI test checks.
type route struct {
	pattern string
	handler func(*server) http.HandlerFunc
}

var routes = []route{
	{"GET /api/v1/stats", func(s *server) http.HandlerFunc { return s.stats }},
	{"GET /api/v1/rollups", func(s *server) http.HandlerFunc { return s.rollups }},
	{"GET /api/v1/logs/search", func(s *server) http.HandlerFunc { return s.search }},
	{"GET /api/v1/tail", func(s *server) http.HandlerFunc { return s.tail }},
	{"GET /healthz", func(s *server) http.HandlerFunc { return s.healthz }},
	{"GET /readyz", func(s *server) http.HandlerFunc { return s.readyz }},
	{"GET /api/v1/logs/histogram", func(s *server) http.HandlerFunc { return s.histogram }},
	{"GET /api/v1/logs/fields", func(s *server) http.HandlerFunc { return s.fields }},
	{"GET /api/v1/logs/context", func(s *server) http.HandlerFunc { return s.logContext }},
	{"GET /api/v1/logs/export", func(s *server) http.HandlerFunc { return s.export }},
	{"GET /api/v1/patterns", func(s *server) http.HandlerFunc { return s.patterns }},
	{"GET /api/v1/ui/config", func(s *server) http.HandlerFunc { return s.uiConfig }},
	{"GET /api/v1/dataplane/series", func(s *server) http.HandlerFunc { return s.dataplaneSeries }},
	{"GET /", func(s *server) http.HandlerFunc { return s.dashboard }},
}

// queryParams are the query parameters each GET endpoint takes; anything
// else is a 400. The OpenAPI test checks docs/openapi.yaml lists the same.
var queryParams = map[string][]string{
	"/api/v1/stats":            {"from", "to", "tenant", "partial"},
	"/api/v1/rollups":          {"from", "to", "step", "by", "service", "level", "tenant", "partial"},
	"/api/v1/logs/search":      {"service", "level", "q", "trace_id", "tenant", "from", "to", "limit", "host", "attr", "exclude", "partial"},
	"/api/v1/tail":             {"service", "level", "q", "tenant", "last_event_id", "max_rate"},
	"/api/v1/logs/histogram":   filterParamsAnd("step", "partial"),
	"/api/v1/logs/fields":      filterParamsAnd("limit", "partial"),
	"/api/v1/logs/context":     {"topic", "partition", "offset", "n", "by", "tenant"},
	"/api/v1/logs/export":      filterParamsAnd("format", "access_token"),
	"/api/v1/patterns":         {"from", "to", "service", "limit", "tenant"},
	"/api/v1/ui/config":        {"tenant"},
	"/api/v1/dataplane/series": {"from", "to", "step", "tenant"},
}

// New returns a mux serving the query API; add the ingest routes and
// /metrics to it.
func New(opts Options) *http.ServeMux {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Tail == nil {
		opts.Tail = NewTailHub()
	}
	opts.DashboardOptions.setDefaults(opts.Store)
	s := &server{opts: opts}
	mux := http.NewServeMux()
	for _, r := range routes {
		if r.pattern == "GET /" && opts.Root != nil {
			// Root answers exactly / (Elasticsearch clients probe it); the
			// dashboard's other paths are the dashboard's.
			page := r.handler(s)
			rooted := opts.Root(page)
			mux.HandleFunc(r.pattern, func(w http.ResponseWriter, req *http.Request) {
				if req.URL.Path == "/" {
					rooted.ServeHTTP(w, req)
					return
				}
				page(w, req)
			})
			continue
		}
		mux.HandleFunc(r.pattern, r.handler(s))
	}
	return mux
}

type server struct{ opts Options }

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.opts.Ready(ctx); err != nil {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *server) stats(w http.ResponseWriter, r *http.Request) {
	p := newParams(r.URL.RawQuery, queryParams["/api/v1/stats"], s.opts.Now())
	req := store.StatsRequest{From: p.time("from", time.Time{}), To: p.time("to", time.Time{}), Tenant: p.str("tenant"), NoPartial: !p.partial("partial")}
	p.window(req.From, req.To)
	if p.err != nil {
		writeParamError(w, p.err)
		return
	}
	res, err := s.opts.Store.Stats(r.Context(), req)
	s.answer(w, r, "stats", res, err)
}

func (s *server) rollups(w http.ResponseWriter, r *http.Request) {
	now := s.opts.Now()
	p := newParams(r.URL.RawQuery, queryParams["/api/v1/rollups"], now)
	req := store.RollupsRequest{
		To:      p.time("to", now),
		Step:    p.step("step"),
		By:      p.dims("by"),
		Service: p.str("service"),
		Level:   p.level("level"),
		Tenant:  p.str("tenant"),

		NoPartial: !p.partial("partial"),
	}
	req.From = p.time("from", req.To.Add(-DefaultRollupWindow))
	if p.err == nil && !req.To.After(req.From) {
		p.err = badParam("to", "%s must be after from %s", req.To.Format(time.RFC3339), req.From.Format(time.RFC3339))
	}
	if p.err == nil && req.Step == 0 {
		req.Step = autoStep(req.To.Sub(req.From))
	}
	if p.err != nil {
		writeParamError(w, p.err)
		return
	}
	res, err := s.opts.Store.Rollups(r.Context(), req)
	s.answer(w, r, "rollups", res, err)
}

func (s *server) search(w http.ResponseWriter, r *http.Request) {
	p := newParams(r.URL.RawQuery, queryParams["/api/v1/logs/search"], s.opts.Now())
	req := store.SearchRequest{
		Host:    p.str("host"),
		Attrs:   p.matches("attr"),
		Exclude: p.matches("exclude"),
		Service: p.str("service"),
		Level:   p.level("level"),
		Query:   p.str("q"),
		TraceID: p.str("trace_id"),
		Tenant:  p.str("tenant"),
		From:    p.time("from", time.Time{}),
		To:      p.time("to", time.Time{}),
		Limit:   p.limit("limit"),

		NoPartial: !p.partial("partial"),
	}
	p.window(req.From, req.To)
	if p.err != nil {
		writeParamError(w, p.err)
		return
	}
	var res *store.SearchResult
	var err error
	if sn, ok := s.opts.Store.(newestSearcher); ok {
		res, err = sn.SearchNewest(r.Context(), req)
	} else {
		res, err = s.opts.Store.Search(r.Context(), req)
	}
	s.answer(w, r, "search", res, err)
}

// newestSearcher is a store that answers a search faster from its rollups
// (the DuckDB store: store.SearchNewest); others are asked Search.
type newestSearcher interface {
	SearchNewest(context.Context, store.SearchRequest) (*store.SearchResult, error)
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
	Param string `json:"param,omitempty"`
}

func writeParamError(w http.ResponseWriter, err *ParamError) {
	writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error(), Param: err.Param})
}

// answer writes res, or maps a store error: 400 for a request the store
// refused (naming the field), 503 with Retry-After when the store timed out,
// is closed, is out of memory or cannot answer completely (a storage node
// down and partial=false), 500 for any other store failure.
func (s *server) answer(w http.ResponseWriter, r *http.Request, kind string, res any, err error) {
	var re *store.RequestError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, res)
	case errors.As(err, &re):
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error(), Param: re.Field})
	case errors.Is(err, storage.ErrNotSupported):
		writeJSON(w, http.StatusNotImplemented, apiError{Error: kind + ": " + err.Error()})
	case r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		w.WriteHeader(http.StatusServiceUnavailable)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, store.ErrClosed), errors.Is(err, storage.ErrUnavailable):
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: kind + " unavailable, retry later: " + err.Error()})
	case store.IsOutOfMemory(err):
		// Pressure, not a fault: other queries or a large batch hold the
		// store's memory (--store-memory) right now.
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: kind + " needs more of the store's memory (--store-memory) than is free right now; retry later or narrow the query: " + err.Error()})
	default:
		s.opts.Logger.Error("api: store query failed", "kind", kind, "err", err)
		writeJSON(w, http.StatusInternalServerError, apiError{Error: kind + " failed in the store: " + err.Error()})
	}
}

// jsonAppender is an answer that encodes itself faster than encoding/json,
// byte for byte the same (store.Rollups: tens of thousands of points).
type jsonAppender interface {
	AppendJSON([]byte) ([]byte, error)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var b []byte
	var err error
	if a, ok := v.(jsonAppender); ok {
		b, err = a.AppendJSON(nil)
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode the response as JSON"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
