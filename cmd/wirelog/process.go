package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wirelog/wirelog/internal/api"
	"github.com/wirelog/wirelog/internal/process"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/transport"
	"github.com/wirelog/wirelog/internal/transport/kafka"
)

// runProcess is `wirelog process`: a processor in a Kafka consumer group, with
// its own DuckDB store and the query API over it. Each processor needs its
// own --data directory (DuckDB is single-process); the group spreads the
// topic's partitions over the processors. See docs/KAFKA.md for how
// exactly-once holds when partitions move between processors.
func runProcess(ctx context.Context, args []string) error {
	fs := newFlagSet("process", "Run a processor: consume the events topic from Kafka in a consumer group (--group), store\n"+
		"events and rollups in DuckDB (--data), and serve the query API and dashboard over that store.")
	var kcfg kafka.Config
	var stOpts store.Options
	httpAddr := fs.String("http", "127.0.0.1:8081", "`address` for HTTP: query API, dashboard, /metrics, /healthz, /readyz")
	dataDir := fs.String("data", "./wirelog-data", "`directory` for this processor's DuckDB store (one per processor)")
	kcfg.RegisterFlags(fs)
	group := kcfg.Group
	if v, ok := os.LookupEnv("WIRELOG_KAFKA_GROUP"); ok {
		group = v
	}
	fs.StringVar(&kcfg.Group, "group", group, "consumer group `name`; processors of one group share the topic's partitions (env WIRELOG_KAFKA_GROUP)")
	fs.DurationVar(&stOpts.Retention, "retention", 7*24*time.Hour, "how long events and rollups stay queryable (`duration`; by event time)")
	fs.StringVar(&stOpts.MemoryLimit, "store-memory", "256MB", "DuckDB memory limit (`size`, e.g. 256MB, 1GB)")
	maxBatch := fs.Int("max-batch", 20000, "most `records` stored in one transaction")
	shutdown := fs.Duration("shutdown-timeout", 30*time.Second, "how long SIGTERM waits for in-flight queries (`duration`)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := kcfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if kcfg.Group == "" {
		return fmt.Errorf("%w: --group is empty", errUsage)
	}
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir %s (--data): %w", *dataDir, err)
	}
	dbPath := filepath.Join(*dataDir, "wirelog.duckdb")
	st, err := store.Open(dbPath, stOpts)
	if err != nil {
		return fmt.Errorf("open store %s (--data): %w", dbPath, err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			slog.Error("close store", "err", err)
		}
	}()

	cons, err := connectConsumer(ctx, kcfg, st.NextOffset)
	if err != nil {
		return err
	}
	consClosed := false
	defer func() {
		if !consClosed {
			cons.Close()
		}
	}()
	tail := api.NewTailHub()
	proc := process.New(cons, st, process.Options{OnStored: tail.Publish, MaxBatch: *maxBatch})

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		st.Collector(), proc.Collector(), tail.Collector(), cons.Collector(),
	)
	ready := func(ctx context.Context) error {
		if err := cons.Ready(ctx); err != nil {
			return err
		}
		if proc.Paused() {
			return errors.New("processor paused by an operator")
		}
		return nil
	}
	mux := api.New(api.Options{Store: st, Tail: tail, Ready: ready})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true, Registry: reg}))
	mux.HandleFunc("POST /api/v1/processor/pause", func(w http.ResponseWriter, r *http.Request) {
		proc.Pause()
		slog.Warn("processor paused by an operator; its partitions' lag grows until it resumes")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /api/v1/processor/resume", func(w http.ResponseWriter, r *http.Request) {
		proc.Resume()
		slog.Info("processor resumed")
		w.WriteHeader(http.StatusNoContent)
	})

	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (--http): %w", *httpAddr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}

	procCtx, stopProc := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var procErr error
	wg.Add(2)
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
	slog.Info("wirelog process running", "http", "http://"+ln.Addr().String(), "data", *dataDir,
		"kafka", kcfg.Brokers, "topic", kcfg.Topic, "group", kcfg.Group)

	var runErr error
	select {
	case <-ctx.Done():
		slog.Info("shutting down: storing and committing the batch in hand, then leaving the group")
	case err := <-srvErr:
		runErr = fmt.Errorf("http server: %w", err)
	}
	shCtx, cancel := context.WithTimeout(context.Background(), *shutdown)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		slog.Warn("http drain did not finish", "err", err)
	}
	tail.Close()
	// The processor returns once its batch is stored and committed; leaving
	// the group then hands the partitions to the other processors at once.
	stopProc()
	wg.Wait()
	if procErr != nil {
		slog.Error("processor", "err", procErr)
	}
	consClosed = true
	if err := cons.Close(); err != nil {
		slog.Warn("close kafka consumer", "err", err)
	}
	return runErr
}

// connectConsumer joins the group, waiting for the cluster when it is not
// reachable yet, until ctx ends.
func connectConsumer(ctx context.Context, kcfg kafka.Config, src transport.OffsetSource) (*kafka.Consumer, error) {
	for wait := time.Second; ; wait = min(2*wait, 15*time.Second) {
		cons, err := kafka.NewConsumer(ctx, kcfg, src)
		if err == nil {
			return cons, nil
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
