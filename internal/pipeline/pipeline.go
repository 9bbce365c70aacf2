// Package pipeline assembles wirelog's all-in-one node (`wirelog run`): the
// HTTP ingest gateway, the embedded durable log, the processor, the DuckDB
// store and the query API, in one process, with an orderly start and a
// shutdown that loses nothing acknowledged.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wirelog/wirelog/internal/api"
	"github.com/wirelog/wirelog/internal/ingest"
	"github.com/wirelog/wirelog/internal/ingest/syslog"
	"github.com/wirelog/wirelog/internal/process"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/transport/disklog"
)

// Config is everything `wirelog run` needs. Zero values mean defaults.
type Config struct {
	HTTPAddr string // listen address; default 127.0.0.1:8080
	DataDir  string // default ./wirelog-data

	Ingest ingest.Options
	Syslog syslog.Config
	// AuthTokens is the --auth-tokens file; "" = no auth.
	AuthTokens string
	Log        disklog.Options
	Store      store.Options

	// ProcessorGroup names the processor's consumer group in the log.
	ProcessorGroup string
	// Pprof mounts net/http/pprof under /debug/pprof/ (--pprof).
	Pprof bool
	// ShutdownTimeout bounds the drain on SIGTERM. Default 30s.
	ShutdownTimeout time.Duration
	// Ready, when set, is closed once the node serves HTTP, with the bound
	// address stored in Addr (for tests and random ports).
	Ready chan<- string
}

// Run starts the node and blocks until ctx is cancelled, then drains: stop
// accepting, finish in-flight requests (their events reach the fsynced log),
// let the processor store and commit what it holds, close the log and store.
func Run(ctx context.Context, cfg Config) error {
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:8080"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "./wirelog-data"
	}
	if cfg.ProcessorGroup == "" {
		cfg.ProcessorGroup = "wirelog-processor"
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.AuthTokens != "" {
		t, err := ingest.LoadTenants(cfg.AuthTokens)
		if err != nil {
			return err
		}
		cfg.Ingest.Tenants = t
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir %s (--data): %w", cfg.DataDir, err)
	}

	lg, err := disklog.Open(filepath.Join(cfg.DataDir, "log"), cfg.Log)
	if err != nil {
		return fmt.Errorf("open embedded log in %s: %w", filepath.Join(cfg.DataDir, "log"), err)
	}
	defer func() {
		if err := lg.Close(); err != nil {
			slog.Error("close embedded log", "err", err)
		}
	}()
	st, err := store.Open(filepath.Join(cfg.DataDir, "wirelog.duckdb"), cfg.Store)
	if err != nil {
		return fmt.Errorf("open store %s: %w", filepath.Join(cfg.DataDir, "wirelog.duckdb"), err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			slog.Error("close store", "err", err)
		}
	}()

	tail := api.NewTailHub()
	cons := lg.Consumer(cfg.ProcessorGroup, st.NextOffset)
	defer cons.Close()
	proc := process.New(cons, st, process.Options{OnStored: tail.Publish})

	prod := lg.Producer()
	gw := ingest.NewHandler(prod, cfg.Ingest)

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		gw.Collector(), lg.Collector(), st.Collector(), proc.Collector(), tail.Collector(),
	)

	ready := func(ctx context.Context) error {
		if err := prod.Ready(ctx); err != nil {
			return fmt.Errorf("embedded log: %w", err)
		}
		if proc.Paused() {
			return errors.New("processor paused by an operator")
		}
		return nil
	}
	mux := api.New(api.Options{Store: st, Tail: tail, Ready: ready})
	mux.Handle("POST /api/v1/logs", gw)
	mux.Handle("POST /v1/logs", gw.OTLP())
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true, Registry: reg}))
	mux.HandleFunc("POST /api/v1/processor/pause", func(w http.ResponseWriter, r *http.Request) {
		proc.Pause()
		slog.Warn("processor paused by an operator; the log will push back once its backlog bound is reached")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /api/v1/processor/resume", func(w http.ResponseWriter, r *http.Request) {
		proc.Resume()
		slog.Info("processor resumed")
		w.WriteHeader(http.StatusNoContent)
	})

	if cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (--http): %w", cfg.HTTPAddr, err)
	}
	var sl *syslog.Server
	if cfg.Syslog.UDPAddr != "" || cfg.Syslog.TCPAddr != "" {
		// Syslog drains on its own Close, before the log closes.
		sl, err = syslog.Start(context.Background(), prod, cfg.Syslog)
		if err != nil {
			ln.Close()
			return err
		}
		reg.MustRegister(sl.Collector())
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}

	procCtx, stopProc := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	var procErr error
	go func() {
		defer wg.Done()
		procErr = proc.Run(procCtx)
	}()
	srvErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			srvErr <- err
		}
	}()
	attrs := []any{"http", "http://" + ln.Addr().String(), "data", cfg.DataDir}
	if sl != nil && sl.UDPAddr() != nil {
		attrs = append(attrs, "syslog_udp", sl.UDPAddr().String())
	}
	if sl != nil && sl.TCPAddr() != nil {
		attrs = append(attrs, "syslog_tcp", sl.TCPAddr().String())
	}
	slog.Info("wirelog running", attrs...)
	if cfg.Ready != nil {
		cfg.Ready <- ln.Addr().String()
	}

	var runErr error
	select {
	case <-ctx.Done():
		slog.Info("shutting down: draining requests, storing what the log holds")
	case err := <-srvErr:
		runErr = fmt.Errorf("http server: %w", err)
	}
	shCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Tail streams never end on their own; close them first so Shutdown
	// only waits for ingest requests.
	tail.Close()
	if err := srv.Shutdown(shCtx); err != nil {
		slog.Warn("http drain did not finish; unanswered requests were not acknowledged", "err", err)
	}
	if sl != nil {
		if err := sl.Close(); err != nil {
			slog.Warn("syslog drain", "err", err)
		}
	}
	stopProc()
	wg.Wait()
	if procErr != nil {
		slog.Error("processor", "err", procErr)
	}
	return runErr
}
