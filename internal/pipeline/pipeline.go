// Package pipeline assembles a wirelog node from its parts: the HTTP and
// syslog ingest gateway, a transport (the embedded durable log, or Kafka),
// the processor with its DuckDB store, and the query API. `wirelog run` runs
// every role in one process; `wirelog ingest` and `wirelog process` run one
// role each against Kafka. Start is ordered so nothing serves before what it
// depends on is open, and shutdown loses nothing acknowledged.
package pipeline

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/wirelog/wirelog/internal/api"
	"github.com/wirelog/wirelog/internal/authz"
	"github.com/wirelog/wirelog/internal/cmem"
	"github.com/wirelog/wirelog/internal/dpseries"
	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/ingest"
	"github.com/wirelog/wirelog/internal/ingest/esbulk"
	"github.com/wirelog/wirelog/internal/ingest/loki"
	"github.com/wirelog/wirelog/internal/ingest/syslog"
	"github.com/wirelog/wirelog/internal/patterns"
	"github.com/wirelog/wirelog/internal/process"
	"github.com/wirelog/wirelog/internal/storage"
	"github.com/wirelog/wirelog/internal/storage/victorialogs"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/telemetry"
	"github.com/wirelog/wirelog/internal/tlsconf"
	"github.com/wirelog/wirelog/internal/transport"
	"github.com/wirelog/wirelog/internal/transport/disklog"
	"github.com/wirelog/wirelog/internal/transport/kafka"
	"github.com/wirelog/wirelog/internal/webui"
)

// Defaults of Config, and of the subcommands' flags that set it.
const (
	// DefaultHTTPAddr is where `wirelog run` and `ingest` listen: loopback,
	// so a first `make run` exposes nothing.
	DefaultHTTPAddr = "127.0.0.1:8080"
	// DefaultProcessHTTPAddr and DefaultServeHTTPAddr sit beside it, so a
	// whole scale-out pipeline runs on one machine without port flags.
	DefaultProcessHTTPAddr = "127.0.0.1:8081"
	DefaultServeHTTPAddr   = "127.0.0.1:8082"
	// DefaultDataDir holds the embedded log and the DuckDB store.
	DefaultDataDir = "./wirelog-data"
	// DefaultShutdownTimeout bounds the drain on SIGTERM: Kubernetes' own
	// terminationGracePeriodSeconds is 30 s.
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultRunStoreMemory is DuckDB's memory limit for `wirelog run`
	// with --store-format table (the table holds the events), a node that
	// shares its machine with ingest: 128MB keeps RSS near 300 MB
	// (measured: 10% slower draining than 256MB, 300 vs 443 MB peak RSS);
	// a dedicated `wirelog process` takes store.DefaultMemoryLimit.
	DefaultRunStoreMemory = "128MB"
	// DefaultRunSegmentStoreMemory is DuckDB's memory limit for `wirelog
	// run` with segment files (the default format), where DuckDB holds no
	// events: the token and trace index rows not yet checkpointed (~40 MB
	// at 90-130k events/s), the rollups, a cache of checkpointed index
	// blocks, and what queries and segment merges need. 64MB was tried: it
	// kept peak RSS at 250 MB at 300k events/s, but on a 100M-event store
	// beside 300k/s of ingest a free-text search failed and segment merges
	// ran out of memory (the token lookup reads ~150 MB of bloom columns),
	// and the store fell behind. 128MB peaked at 279 MB in the same
	// 300k/s run (96MB: 283), under issue 12's 300 MB, with the C
	// allocator settings of internal/cmem (docs/BENCHMARKS.md, "Issue 12:
	// peak RSS, fifth session", and "the final quiet-host figures").
	DefaultRunSegmentStoreMemory = "128MB"
	// DefaultProcessorGroup is the processor's consumer group in the
	// embedded log.
	DefaultProcessorGroup = "wirelog-processor"
)

// Roles a node runs.
type Roles uint8

const (
	// RoleIngest serves POST /api/v1/logs, POST /v1/logs and syslog.
	RoleIngest Roles = 1 << iota
	// RoleProcess runs the processor, the store and the query API.
	RoleProcess
	// RoleAll is `wirelog run`.
	RoleAll = RoleIngest | RoleProcess
	// RoleServe is `wirelog serve`: the query API, tail and status page over
	// a shared store (VictoriaLogs), with no transport and no processor.
	RoleServe Roles = 1 << 7
)

// Config is everything a node needs. Zero values mean defaults.
type Config struct {
	Name     string // the subcommand, for log lines ("run", "ingest", "process")
	Roles    Roles  // default RoleAll
	HTTPAddr string // listen address; default 127.0.0.1:8080
	DataDir  string // embedded log and store; default ./wirelog-data

	Ingest ingest.Options
	// IngestRecordFormat is --ingest-record-format (ingest.RecordFormats),
	// resolved into Ingest.Record by Run once the transport is known.
	IngestRecordFormat string

	Syslog syslog.Config
	// AuthTokens is the --auth-tokens file; "" = no tenant tokens.
	AuthTokens string
	// AdminTokens is the --admin-tokens file of operator tokens.
	AdminTokens string
	// Authenticators are more ways to authenticate (mTLS/SPIFFE), asked
	// after the bearer tokens; Routes adds route scopes (authz.go).
	Authenticators []authz.Authenticator
	Routes         []authz.Route

	// TLS is the shared --tls-* configuration of every listener (HTTP,
	// /metrics, syslog over TLS); zero = plaintext.
	TLS tlsconf.Options

	// Kafka, when it names brokers, replaces the embedded log.
	Kafka kafka.Config
	Log   disklog.Options
	Store store.Options
	// StoreKind is storage.KindDuckDB (default: one embedded DuckDB per
	// processor) or storage.KindVictoriaLogs (--store).
	StoreKind string
	// VictoriaLogs configures the VictoriaLogs store (--store-url …).
	VictoriaLogs victorialogs.Options
	// Processor tunes batching; zero values are process.Options' defaults.
	Processor process.Options

	// ProcessorGroup names the processor's consumer group in the embedded
	// log (Kafka uses Kafka.Group).
	ProcessorGroup string
	// JaegerURL turns trace ids in the dashboard into links (--jaeger-url).
	JaegerURL string
	// Prometheus is the Prometheus that scrapes the data-plane agents
	// (--prometheus); the dashboard's Data plane page reads it through this node.
	Prometheus string
	// DataPlaneScrape is an agent's /metrics URL this node scrapes itself
	// when there is no Prometheus (--dataplane-scrape).
	DataPlaneScrape string
	// Pprof mounts net/http/pprof under /debug/pprof/ (--pprof).
	Pprof bool
	// ShutdownTimeout bounds the drain on SIGTERM. Default 30s.
	ShutdownTimeout time.Duration
	// Tracing is --otlp-traces (the OTEL_* environment does the rest).
	Tracing telemetry.Config
	// Logger receives the node's log lines; each part it starts gets it
	// .With("component", …). nil = slog.Default(), for tests.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "run"
	}
	if c.Roles == 0 {
		c.Roles = RoleAll
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.ProcessorGroup == "" {
		c.ProcessorGroup = DefaultProcessorGroup
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.StoreKind == "" {
		c.StoreKind = storage.KindDuckDB
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c *Config) useKafka() bool { return len(c.Kafka.Brokers) > 0 }

// node holds what Run opened, closed in reverse order by close.
type node struct {
	cfg     Config
	log     *slog.Logger // cfg.Logger with component=<node name>
	reg     *prometheus.Registry
	closers []func()
	ready   []func(context.Context) error

	prod transport.Producer
	// newConsumer opens the processor's consumer once the store that backs
	// its OffsetSource is open.
	newConsumer func(transport.OffsetSource) (transport.Consumer, error)
	st          storage.Store
	proc        *process.Processor
	miner       *patterns.Miner
	tail        *api.TailHub
	sl          *syslog.Server
	tls         *tlsconf.Server // nil without --tls-cert / --spiffe-socket
}

func (n *node) onClose(f func()) { n.closers = append(n.closers, f) }

func (n *node) close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
}

// Run starts the node and blocks until ctx is cancelled, then drains: stop
// accepting, finish in-flight requests (their events reach the fsynced log
// or Kafka), stop syslog after draining it, let the processor store and
// commit its batch, close the transport and the store.
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	if cfg.useKafka() {
		if err := cfg.Kafka.Validate(); err != nil {
			return fmt.Errorf("kafka settings: %w", err)
		}
		cfg.Ingest.Topic = cfg.Kafka.Topic
		cfg.Syslog.Topic = cfg.Kafka.Topic
	}
	if cfg.AuthTokens != "" {
		t, err := ingest.LoadTenants(cfg.AuthTokens)
		if err != nil {
			return err
		}
		cfg.Ingest.Tenants = t
	}
	if err := cfg.Ingest.Validate(); err != nil {
		return err
	}
	rf, err := ingest.ResolveRecordFormat(cfg.IngestRecordFormat, cfg.useKafka())
	if err != nil {
		return err
	}
	cfg.Ingest.Record = rf
	if cfg.Syslog.MaxAttributes == 0 {
		cfg.Syslog.MaxAttributes = cfg.Ingest.MaxAttributes
		if cfg.Syslog.MaxAttributes <= 0 {
			cfg.Syslog.MaxAttributes = ingest.DefaultMaxAttributes
		}
	}
	setGoMemoryLimit(&cfg)
	tuneCAllocators(cfg.Logger)
	cfg.Store.MemoryLimit = runStoreMemory(&cfg)
	stopTracing, err := startTracing(ctx, &cfg)
	if err != nil {
		return err
	}
	defer stopTracing()
	n := &node{cfg: cfg, log: cfg.Logger.With("component", "node", "node", cfg.Name), reg: prometheus.NewRegistry()}
	defer n.close()
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), cmem.Collector())
	if err := n.openTLS(ctx); err != nil {
		return err
	}
	if cfg.Roles == RoleServe {
		mux, err := n.openServe(ctx)
		if err != nil {
			return err
		}
		mux.Handle("GET /metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{EnableOpenMetrics: true, Registry: n.reg}))
		h, err := n.authorize(mux)
		if err != nil {
			return err
		}
		return n.serve(ctx, h)
	}
	if err := n.openTransport(ctx); err != nil {
		return err
	}
	mux := http.NewServeMux()
	if cfg.Roles&RoleProcess != 0 {
		var err error
		if mux, err = n.openProcessor(); err != nil {
			return err
		}
	} else {
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"status":"ok"}` + "\n"))
		})
		mux.HandleFunc("GET /readyz", readyHandler(n.isReady))
	}
	if cfg.Roles&RoleIngest != 0 {
		gw := ingest.NewHandler(n.prod, cfg.Ingest)
		n.reg.MustRegister(gw.Collector())
		mux.Handle("POST /api/v1/logs", withTraceContext(gw))
		mux.Handle("POST /v1/logs", withTraceContext(gw.OTLP()))
		mountShippers(mux, gw, n.log, cfg.Roles&RoleProcess == 0)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{EnableOpenMetrics: true, Registry: n.reg}))
	if cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		if db, ok := n.st.(*store.Store); ok {
			mux.HandleFunc("GET /debug/store/memory", storeMemoryHandler(db))
		}
	}
	h, err := n.authorize(mux)
	if err != nil {
		return err
	}
	return n.serve(ctx, h)
}

// openTLS loads the shared TLS configuration and the syslog TLS
// listener's (its own files, or the shared ones).
func (n *node) openTLS(ctx context.Context) error {
	cfg := &n.cfg
	if err := cfg.TLS.Validate(); err != nil {
		return err
	}
	if cfg.TLS.Enabled() {
		ts, err := tlsconf.NewServer(ctx, cfg.TLS, n.log.With("component", "tls"))
		if err != nil {
			return err
		}
		n.tls = ts
		n.reg.MustRegister(ts.Collector())
	}
	sc := &cfg.Syslog
	if cfg.Roles&RoleIngest == 0 || sc.TLSAddr == "" {
		return nil
	}
	ts := n.tls
	switch {
	case sc.TLSCertFile != "" || sc.TLSKeyFile != "":
		o := tlsconf.Options{CertFile: sc.TLSCertFile, KeyFile: sc.TLSKeyFile, ClientCAFile: sc.TLSClientCAFile}
		if o.ClientCAFile != "" {
			o.Allow = cfg.TLS.Allow
		}
		d, err := n.tls.Derive(ctx, o, n.log, "syslog")
		if err != nil {
			return fmt.Errorf("syslog TLS (--syslog-tls-cert, --syslog-tls-key, --syslog-tls-client-ca): %w", err)
		}
		if n.tls == nil {
			n.reg.MustRegister(d.Collector())
		}
		ts = d
	case sc.TLSClientCAFile != "":
		return errors.New("--syslog-tls-client-ca goes with --syslog-tls-cert and --syslog-tls-key; with the shared --tls-cert, set --tls-client-ca")
	case ts == nil:
		return fmt.Errorf("--syslog-tls %s needs a certificate: set --syslog-tls-cert and --syslog-tls-key, or --tls-cert and --tls-key", sc.TLSAddr)
	}
	sc.TLS = ts.RawConfig("syslog", tlsconf.RoleIngest)
	sc.OnHandshakeError = func(err error) { ts.CountHandshakeError("syslog", err) }
	return nil
}

// openTransport opens the embedded log or connects to Kafka, for the roles
// the node runs.
func (n *node) openTransport(ctx context.Context) error {
	cfg := &n.cfg
	if !cfg.useKafka() {
		if cfg.Roles != RoleAll {
			return errors.New("--kafka is required: without it the embedded log serves only `wirelog run`")
		}
		dir := filepath.Join(cfg.DataDir, "log")
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return fmt.Errorf("create data dir %s (--data): %w", cfg.DataDir, err)
		}
		lg, err := disklog.Open(dir, cfg.Log)
		if err != nil {
			return fmt.Errorf("open embedded log in %s: %w", dir, err)
		}
		n.onClose(func() {
			if err := lg.Close(); err != nil {
				n.log.Error("close embedded log", "err", err)
			}
		})
		n.reg.MustRegister(lg.Collector())
		n.prod = telemetry.WrapProducer(lg.Producer(), telemetry.SystemDisklog, cmp.Or(cfg.Log.Topic, disklog.DefaultTopic), true)
		n.ready = append(n.ready, n.prod.Ready)
		n.newConsumer = func(src transport.OffsetSource) (transport.Consumer, error) {
			return lg.Consumer(cfg.ProcessorGroup, src), nil
		}
		return nil
	}
	if cfg.Roles&RoleIngest != 0 {
		prod, err := connect(ctx, n.log, cfg.Kafka.Brokers, func() (*kafka.Producer, error) { return kafka.NewProducer(ctx, cfg.Kafka) })
		if err != nil {
			return err
		}
		n.onClose(func() {
			if err := prod.Close(); err != nil {
				n.log.Error("close kafka producer", "err", err)
			}
		})
		n.reg.MustRegister(prod.Collector())
		n.prod = telemetry.WrapProducer(prod, telemetry.SystemKafka, cfg.Kafka.Topic, false)
		n.ready = append(n.ready, prod.Ready)
	}
	if cfg.Roles&RoleProcess != 0 {
		if cfg.Kafka.Group == "" {
			return errors.New("--group is empty: processors need a consumer group")
		}
		n.newConsumer = func(src transport.OffsetSource) (transport.Consumer, error) {
			c, err := connect(ctx, n.log, cfg.Kafka.Brokers, func() (*kafka.Consumer, error) { return kafka.NewConsumer(ctx, cfg.Kafka, src) })
			if err != nil {
				return nil, err
			}
			n.reg.MustRegister(c.Collector())
			n.ready = append(n.ready, c.Ready)
			return c, nil
		}
	}
	return nil
}

// partitionReleaser is a deferred store that hands partitions over to
// another processor in a consumer-group rebalance (store.Store in
// --store-format parquet): kafka.Config.Release and Discard.
type partitionReleaser interface {
	ReleasePartitions(ctx context.Context, tps []transport.TopicPartition) (map[transport.TopicPartition]int64, error)
	DiscardUnwritten() int
}

// openProcessor opens the store, the consumer and the processor, and
// returns the query API mux the other routes are added to.
func (n *node) openProcessor() (*http.ServeMux, error) {
	cfg := &n.cfg
	st, err := n.openStore()
	if err != nil {
		return nil, err
	}
	if d, ok := storage.AsDeferred(st); ok {
		// Partitions that move away are no longer this store's to verify
		// and commit; their new owner replays from the group's offset.
		for _, f := range []*func([]transport.TopicPartition){&n.cfg.Kafka.OnRevoked, &n.cfg.Kafka.OnLost} {
			prev := *f
			*f = func(tps []transport.TopicPartition) {
				d.Forget(tps)
				if n.proc != nil {
					n.proc.Forget(tps)
				}
				if prev != nil {
					prev(tps)
				}
			}
		}
		// Segment files (--store-format parquet) buffer what Write accepted:
		// written before a revoke commits, dropped when partitions are lost,
		// so a moved partition's records are never stored by two processors.
		if r, ok := st.(partitionReleaser); ok {
			n.cfg.Kafka.Release = r.ReleasePartitions
			n.cfg.Kafka.Discard = r.DiscardUnwritten
		}
	}
	cons, err := n.newConsumer(st.NextOffset)
	if err != nil {
		return nil, err
	}
	n.onClose(func() {
		if err := cons.Close(); err != nil {
			n.log.Warn("close consumer", "err", err)
		}
	})
	n.tail = api.NewTailHub()
	n.reg.MustRegister(n.tail.Collector())
	popts := cfg.Processor
	popts.Logger = n.log.With("component", "processor")
	// The processor hands every stored batch to the live tail and, on the
	// DuckDB store (whose patterns table it fills), to the pattern miner
	// (internal/patterns), which flushes to the store itself. The
	// VictoriaLogs store has no patterns: that API answers 501 there.
	if ds, ok := st.(*store.Store); ok {
		if n.miner, err = n.startMiner(ds); err != nil {
			return nil, err
		}
	}
	popts.OnStored = func(evs []event.Event) {
		n.tail.Publish(evs)
		if n.miner != nil {
			n.miner.Observe(evs)
		}
	}
	if dl, ok := cons.(process.DeadLetterer); ok {
		popts.DeadLetter = dl
	}
	n.proc = process.New(cons, st, popts)
	n.reg.MustRegister(n.proc.Collector())

	dash, err := n.dashboard()
	if err != nil {
		return nil, err
	}
	aopts := api.Options{Store: st, Tail: n.tail, Ready: n.isReady, DashboardOptions: dash}
	if cfg.Roles&RoleIngest != 0 {
		aopts.Root = esbulk.Root // Elasticsearch clients' GET /; browsers still get the dashboard
	}
	mux := api.New(aopts)
	mux.HandleFunc("POST /api/v1/processor/pause", func(w http.ResponseWriter, r *http.Request) {
		n.proc.Pause()
		n.log.Warn("processor paused by an operator; the backlog grows until it resumes")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /api/v1/processor/resume", func(w http.ResponseWriter, r *http.Request) {
		n.proc.Resume()
		n.log.Info("processor resumed")
		w.WriteHeader(http.StatusNoContent)
	})
	return mux, nil
}

// openStore opens the store --store names: the embedded DuckDB in --data,
// or the VictoriaLogs cluster at --store-url.
func (n *node) openStore() (storage.Store, error) {
	cfg := &n.cfg
	var st storage.Store
	switch cfg.StoreKind {
	case storage.KindDuckDB:
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("create data dir %s (--data): %w", cfg.DataDir, err)
		}
		path := filepath.Join(cfg.DataDir, "wirelog.duckdb")
		db, err := store.Open(path, cfg.Store)
		if err != nil {
			return nil, fmt.Errorf("open store %s (--data): %w", path, err)
		}
		st = db
	case storage.KindVictoriaLogs:
		if cfg.VictoriaLogs.URL == "" {
			return nil, errors.New("--store victorialogs needs --store-url, the VictoriaLogs front node (e.g. http://127.0.0.1:19428)")
		}
		opts := cfg.VictoriaLogs
		opts.Logger = n.log.With("component", "store")
		vl, err := victorialogs.Open(opts)
		if err != nil {
			return nil, err
		}
		n.ready = append(n.ready, vl.Ready)
		st = vl
	default:
		return nil, fmt.Errorf("--store %q is not a store; use one of %s", cfg.StoreKind, strings.Join(storage.Kinds, ", "))
	}
	n.st = st
	n.onClose(func() {
		if err := st.Close(); err != nil {
			n.log.Error("close store", "err", err)
		}
	})
	n.reg.MustRegister(st.Collector())
	return st, nil
}

// openServe opens the shared store and the query API over it, with a live
// tail that follows what the processors store.
func (n *node) openServe(ctx context.Context) (*http.ServeMux, error) {
	if n.cfg.StoreKind != storage.KindVictoriaLogs {
		return nil, errors.New("wirelog serve reads a shared store: give --store victorialogs --store-url URL (a DuckDB store is embedded in its processor; query that processor's own API)")
	}
	st, err := n.openStore()
	if err != nil {
		return nil, err
	}
	n.tail = api.NewTailHub()
	n.reg.MustRegister(n.tail.Collector())
	if tl, ok := st.(storage.Tailer); ok {
		tctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := tl.Follow(tctx, n.tail.Publish); err != nil {
				n.log.Error("live tail stopped", "err", err)
			}
		}()
		n.onClose(func() { cancel(); <-done })
	}
	dash, err := n.dashboard()
	if err != nil {
		return nil, err
	}
	return api.New(api.Options{Store: st, Tail: n.tail, Ready: n.isReady, DashboardOptions: dash}), nil
}

// dashboard is what the embedded dashboard needs from this node: the UI,
// trace links, and the data-plane series source (--prometheus or
// --dataplane-scrape), for the processor's API and for `wirelog serve`.
func (n *node) dashboard() (api.DashboardOptions, error) {
	cfg := &n.cfg
	dash := api.DashboardOptions{UI: webui.Handler(), JaegerURL: cfg.JaegerURL}
	switch {
	case cfg.Prometheus != "" && cfg.DataPlaneScrape != "":
		return dash, errors.New("give --prometheus or --dataplane-scrape, not both")
	case cfg.Prometheus != "":
		src, err := dpseries.NewPrometheus(cfg.Prometheus)
		if err != nil {
			return dash, err
		}
		dash.DataPlane = src
	case cfg.DataPlaneScrape != "":
		src, err := dpseries.NewScraper(cfg.DataPlaneScrape, 0, n.log.With("component", "dataplane-scrape"))
		if err != nil {
			return dash, err
		}
		src.SetLocal(n.reg) // the consumer-lag panel: this node's own lag
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); src.Run(ctx) }()
		n.onClose(func() { cancel(); <-done })
		dash.DataPlane = src
	}
	return dash, nil
}

func (n *node) isReady(ctx context.Context) error {
	for _, r := range n.ready {
		if err := r(ctx); err != nil {
			return err
		}
	}
	if n.proc != nil && n.proc.Paused() {
		return errors.New("processor paused by an operator")
	}
	if n.proc != nil {
		if err := n.proc.Stuck(); err != nil {
			return fmt.Errorf("processor stuck: %w", err)
		}
	}
	return nil
}

// serve listens, starts syslog and the processor, and runs until ctx ends.
func (n *node) serve(ctx context.Context, mux http.Handler) error {
	cfg := &n.cfg
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (--http): %w", cfg.HTTPAddr, err)
	}
	if cfg.Roles&RoleIngest != 0 && (cfg.Syslog.UDPAddr != "" || cfg.Syslog.TCPAddr != "" || cfg.Syslog.TLSAddr != "") {
		// Syslog drains on its own Close, before the transport closes.
		n.sl, err = syslog.Start(context.Background(), n.prod, cfg.Syslog)
		if err != nil {
			ln.Close()
			return err
		}
		n.reg.MustRegister(n.sl.Collector())
	}
	srv := &http.Server{Handler: telemetry.Handler(mux), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	scheme := "http://"
	if n.tls != nil {
		// TLS at the server, so every route — those of other packages
		// included — is behind it; SPIFFE-ID roles are checked before the
		// mux (and before bearer-token tenants).
		ln = tls.NewListener(ln, n.tls.HTTPConfig("http"))
		srv.Handler = telemetry.Handler(n.tls.Authorize(mux))
		srv.ErrorLog = n.tls.ErrorLog("http")
		scheme = "https://"
	}
	var plain *http.Server
	if addr := cfg.TLS.MetricsPlaintext; addr != "" {
		pln, err := net.Listen("tcp", addr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s (--metrics-plaintext): %w", addr, err)
		}
		plain = &http.Server{Handler: plaintextRoutes(mux), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := plain.Serve(pln); !errors.Is(err, http.ErrServerClosed) {
				n.log.Error("plaintext metrics listener stopped", "addr", addr, "err", err)
			}
		}()
		n.log.Info("serving /metrics, /healthz and /readyz without TLS", "metrics_plaintext", "http://"+pln.Addr().String())
	}

	procCtx, stopProc := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var procErr error
	if n.proc != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			procErr = n.proc.Run(n.consumerTrace(procCtx))
		}()
	}
	srvErr := make(chan error, 1)
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			srvErr <- err
		}
	}()
	attrs := []any{"http", scheme + ln.Addr().String()}
	switch {
	case n.st != nil && cfg.StoreKind == storage.KindVictoriaLogs:
		attrs = append(attrs, "store", cfg.StoreKind, "store_url", cfg.VictoriaLogs.URL)
	case n.st != nil:
		attrs = append(attrs, "data", cfg.DataDir)
	}
	if cfg.useKafka() {
		attrs = append(attrs, "kafka", cfg.Kafka.Brokers, "topic", cfg.Kafka.Topic)
		if n.proc != nil {
			attrs = append(attrs, "group", cfg.Kafka.Group)
		}
	}
	if n.sl != nil && n.sl.UDPAddr() != nil {
		attrs = append(attrs, "syslog_udp", n.sl.UDPAddr().String())
	}
	if n.sl != nil && n.sl.TCPAddr() != nil {
		attrs = append(attrs, "syslog_tcp", n.sl.TCPAddr().String())
	}
	if n.sl != nil && n.sl.TLSAddr() != nil {
		attrs = append(attrs, "syslog_tls", n.sl.TLSAddr().String())
	}
	n.log.Info("wirelog "+cfg.Name+" running", attrs...)

	var runErr error
	select {
	case <-ctx.Done():
		n.log.Info("shutting down: draining requests, storing the batch in hand")
	case err := <-srvErr:
		runErr = fmt.Errorf("http server: %w", err)
	}
	shCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Tail streams never end on their own; close them first so Shutdown
	// only waits for ingest requests and queries.
	if n.tail != nil {
		n.tail.Close()
	}
	if err := srv.Shutdown(shCtx); err != nil {
		n.log.Warn("http drain did not finish; unanswered requests were not acknowledged", "err", err)
	}
	if plain != nil {
		plain.Shutdown(shCtx)
	}
	if n.sl != nil {
		if err := n.sl.Close(); err != nil {
			n.log.Warn("syslog drain", "err", err)
		}
	}
	// The processor returns once its batch is stored and committed.
	stopProc()
	wg.Wait()
	if procErr != nil {
		n.log.Error("processor", "err", procErr)
	}
	return runErr
}

// connect retries a Kafka client constructor while the cluster is not
// reachable yet (a node started before its brokers), until ctx ends.
func connect[T any](ctx context.Context, log *slog.Logger, brokers []string, mk func() (T, error)) (T, error) {
	for wait := time.Second; ; wait = min(2*wait, 15*time.Second) {
		c, err := mk()
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, transport.ErrUnavailable) {
			return c, err
		}
		log.Warn("kafka not reachable yet; retrying", "kafka", brokers, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return c, fmt.Errorf("gave up waiting for Kafka %v (--kafka): %w", brokers, err)
		case <-time.After(wait):
		}
	}
}

// mountShippers adds the endpoints shippers configured for Elasticsearch or
// Loki post to (docs/openapi.yaml, "point your shipper here" in the README).
// They go through gw's Admission (slots, memory budget), record limits,
// producer and metrics, and authz gives them the Ingest scope
// (shipperScopes). root mounts the
// Elasticsearch GET / on a node without the query API's status page.
func mountShippers(mux *http.ServeMux, gw *ingest.Handler, log *slog.Logger, root bool) {
	es := esbulk.New(gw, log.With("component", "esbulk"))
	for _, rt := range es.Routes() {
		if rt.Ingest {
			mux.Handle(rt.Pattern, withTraceContext(rt.Handler))
		} else {
			mux.Handle(rt.Pattern, rt.Handler)
		}
	}
	if root {
		mux.Handle("GET /{$}", esbulk.Root(nil))
	}
	mux.Handle("POST "+loki.Path, withTraceContext(loki.New(gw)))
}

// withTraceContext puts the W3C trace context of the request (traceparent,
// tracestate) into its context, so the Kafka producer writes it into every
// record of the request and the processor continues the same trace. With
// tracing on, telemetry.Handler has already done so and started the
// request's span under it.
func withTraceContext(h http.Handler) http.Handler {
	tc := propagation.TraceContext{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("traceparent") != "" && !trace.SpanContextFromContext(r.Context()).IsValid() {
			r = r.WithContext(tc.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
		}
		h.ServeHTTP(w, r)
	})
}

// plaintextRoutes is what --metrics-plaintext serves: the scrape and the
// probes, nothing that reads or writes events.
func plaintextRoutes(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics", "/healthz", "/readyz":
			mux.ServeHTTP(w, r)
		default:
			http.Error(w, "only /metrics, /healthz and /readyz are served on the plaintext port (--metrics-plaintext); use the TLS port", http.StatusNotFound)
		}
	})
}

// readyHandler answers /readyz for an ingest-only node.
func readyHandler(ready func(context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := ready(ctx); err != nil {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "{\"status\":\"unready\",\"reason\":%q}\n", err.Error())
			return
		}
		w.Write([]byte(`{"status":"ready"}` + "\n"))
	}
}

// startTracing sets up tracing from --otlp-traces and the OTEL_* environment
// (service.name defaults to wirelog, wirelog-ingest or wirelog-process); the
// returned func flushes the spans still queued.
func startTracing(ctx context.Context, cfg *Config) (func(), error) {
	if cfg.Tracing.ServiceName == "" {
		cfg.Tracing.ServiceName = "wirelog"
		if cfg.Roles != RoleAll {
			cfg.Tracing.ServiceName = "wirelog-" + cfg.Name
		}
	}
	log := cfg.Logger.With("component", "telemetry")
	shutdown, err := telemetry.Setup(ctx, cfg.Tracing, log)
	if err != nil {
		return nil, err
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			log.Warn("tracing: spans still queued at exit were not exported", "err", err)
		}
	}, nil
}

// consumerTrace names the processor's messaging system and group for its
// batch spans.
func (n *node) consumerTrace(ctx context.Context) context.Context {
	if n.cfg.useKafka() {
		return telemetry.WithConsumer(ctx, telemetry.SystemKafka, n.cfg.Kafka.Group)
	}
	return telemetry.WithConsumer(ctx, telemetry.SystemDisklog, n.cfg.ProcessorGroup)
}

// startMiner loads the stored templates into a pattern miner and flushes it
// into the store until the node closes (before the store closes).
func (n *node) startMiner(st *store.Store) (*patterns.Miner, error) {
	m := patterns.New(patterns.Options{})
	ts, err := st.LoadPatterns(context.Background())
	if err != nil {
		return nil, fmt.Errorf("load log patterns from the store: %w", err)
	}
	m.Load(ts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx, st, patterns.DefaultFlushInterval, n.log.With("component", "patterns"))
	}()
	n.onClose(func() { cancel(); <-done })
	return m, nil
}

// storeMemoryHandler answers GET /debug/store/memory: DuckDB's own account
// of its memory (duckdb_memory(), by purpose) beside the Go runtime's, to
// tell which part of RSS grows.
func storeMemoryHandler(db *store.Store) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m, err := db.MemoryUsage(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"duckdb": m,
			"go": map[string]uint64{"heap_inuse_bytes": ms.HeapInuse, "heap_idle_bytes": ms.HeapIdle,
				"heap_released_bytes": ms.HeapReleased, "sys_bytes": ms.Sys, "stack_inuse_bytes": ms.StackInuse,
				"heap_alloc_bytes": ms.HeapAlloc, "next_gc_bytes": ms.NextGC, "num_gc": uint64(ms.NumGC)},
			// The C allocators: DuckDB's jemalloc (its pool's blocks and
			// whatever it keeps dirty) and glibc's arenas.
			"c": cmem.Read(),
		})
	}
}
