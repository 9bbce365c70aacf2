package agent

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HTTP serving limits.
const (
	// maxScrapesInFlight: more concurrent scrapes than this get a 503
	// rather than piling up collector work (each scrape runs every
	// collector).
	maxScrapesInFlight = 4
	readHeaderTimeout  = 10 * time.Second
	shutdownGrace      = 5 * time.Second
)

// NewRegistry returns a registry holding the exporter and the agent's own
// Go runtime and process metrics (RSS, CPU, file descriptors).
func NewRegistry(e *Exporter) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		e,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register collectors: %w", err)
		}
	}
	return reg, nil
}

// Handler serves /metrics (Prometheus text or OpenMetrics), /healthz and
// an index page. A metric that fails to gather is logged and left out; the
// rest is still served, never a 500 for one bad series.
func Handler(reg *prometheus.Registry, scrapeTimeout time.Duration, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            reg,
		MaxRequestsInFlight: maxScrapesInFlight,
		// Collectors are bounded by scrapeTimeout; one more second covers
		// encoding. Past that the client gets a 503, not a hung request.
		Timeout:           scrapeTimeout + time.Second,
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		// Liveness only: a failing collector is a metric, not a reason for
		// Kubernetes to restart the agent.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<html><head><title>wirelog data-plane agent</title></head><body>`+
			`<h1>wirelog data-plane agent</h1><p><a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a></p></body></html>`)
	})
	return mux
}

// Serve listens on addr and serves h until ctx is done, then shuts down
// gracefully. ready, if not nil, receives the bound address once listening.
func Serve(ctx context.Context, addr string, h http.Handler, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (set --listen): %w", addr, err)
	}
	if ready != nil {
		ready(ln.Addr())
	}
	return ServeListener(ctx, ln, h, nil)
}

// ServeListener serves h on ln (a TLS listener, for one) until ctx is
// done, then shuts down gracefully. errorLog, if not nil, receives the
// HTTP server's own errors (TLS handshake failures).
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler, errorLog *log.Logger) error {
	addr := ln.Addr().String()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, ErrorLog: errorLog}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shut down %s: %w", addr, err)
	}
	return nil
}
