package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/propagation"

	"github.com/wirelog/wirelog/internal/ingest"
	"github.com/wirelog/wirelog/internal/ingest/syslog"
	"github.com/wirelog/wirelog/internal/pipeline"
	"github.com/wirelog/wirelog/internal/transport"
	"github.com/wirelog/wirelog/internal/transport/kafka"
)

// runIngest is `wirelog ingest`: the ingest gateway alone, producing to Kafka.
// It answers 202 only after Kafka acknowledged (acks=all) every accepted
// event, 429 when the producer buffer is full and 503 when the cluster does
// not acknowledge within --kafka-produce-timeout, both with Retry-After.
func runIngest(ctx context.Context, args []string) error {
	fs := newFlagSet("ingest", "Run the ingest gateway only (HTTP NDJSON/JSON, OTLP/HTTP logs, syslog), producing every\n"+
		"accepted event to Kafka. Processors (wirelog process) consume the topic in a consumer group.")
	var cfg pipeline.Config
	var kcfg kafka.Config
	httpAddr := fs.String("http", "127.0.0.1:8080", "`address` for HTTP: ingest (/api/v1/logs, /v1/logs), /metrics, /healthz, /readyz")
	registerIngestFlags(fs, &cfg)
	cfg.Syslog.RegisterFlags(fs)
	kcfg.RegisterFlags(fs)
	shutdown := fs.Duration("shutdown-timeout", 30*time.Second, "how long SIGTERM waits for in-flight requests (`duration`)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := kcfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if cfg.AuthTokens != "" {
		t, err := ingest.LoadTenants(cfg.AuthTokens)
		if err != nil {
			return err
		}
		cfg.Ingest.Tenants = t
	}
	cfg.Ingest.Topic = kcfg.Topic
	cfg.Syslog.Topic = kcfg.Topic

	prod, err := connectProducer(ctx, kcfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := prod.Close(); err != nil {
			slog.Error("close kafka producer", "err", err)
		}
	}()
	gw := ingest.NewHandler(prod, cfg.Ingest)

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		gw.Collector(), prod.Collector(),
	)
	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/logs", withTraceContext(gw))
	mux.Handle("POST /v1/logs", withTraceContext(gw.OTLP()))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true, Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", readyHandler(prod.Ready))

	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (--http): %w", *httpAddr, err)
	}
	var sl *syslog.Server
	if cfg.Syslog.UDPAddr != "" || cfg.Syslog.TCPAddr != "" {
		sl, err = syslog.Start(context.Background(), prod, cfg.Syslog)
		if err != nil {
			ln.Close()
			return err
		}
		reg.MustRegister(sl.Collector())
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	srvErr := make(chan error, 1)
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			srvErr <- err
		}
	}()
	slog.Info("wirelog ingest running", "http", "http://"+ln.Addr().String(), "kafka", kcfg.Brokers, "topic", kcfg.Topic)

	var runErr error
	select {
	case <-ctx.Done():
		slog.Info("shutting down: draining requests (their events are acked by Kafka or refused)")
	case err := <-srvErr:
		runErr = fmt.Errorf("http server: %w", err)
	}
	shCtx, cancel := context.WithTimeout(context.Background(), *shutdown)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		slog.Warn("http drain did not finish; unanswered requests were not acknowledged", "err", err)
	}
	if sl != nil {
		if err := sl.Close(); err != nil {
			slog.Warn("syslog drain", "err", err)
		}
	}
	return runErr
}

// connectProducer creates the Kafka producer, waiting for the cluster when it
// is not reachable yet (a gateway started before its brokers), until ctx ends.
func connectProducer(ctx context.Context, kcfg kafka.Config) (*kafka.Producer, error) {
	for wait := time.Second; ; wait = min(2*wait, 15*time.Second) {
		prod, err := kafka.NewProducer(ctx, kcfg)
		if err == nil {
			return prod, nil
		}
		if !errors.Is(err, transport.ErrUnavailable) {
			return nil, err
		}
		slog.Warn("kafka not reachable yet; retrying", "kafka", kcfg.Brokers, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("gave up waiting for Kafka %v (--kafka): %w", kcfg.Brokers, err)
		case <-time.After(wait):
		}
	}
}

// withTraceContext puts the W3C trace context of the request (traceparent,
// tracestate headers) into its context, so the Kafka producer writes it into
// every record of the request and the processor continues the same trace.
func withTraceContext(h http.Handler) http.Handler {
	tc := propagation.TraceContext{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("traceparent") != "" {
			r = r.WithContext(tc.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
		}
		h.ServeHTTP(w, r)
	})
}

// readyHandler answers /readyz from ready: 200, or 503 with Retry-After and
// the reason.
func readyHandler(ready func(context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			w.Header().Set("Retry-After", "1")
			writeStatus(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
			return
		}
		writeStatus(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

func writeStatus(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
