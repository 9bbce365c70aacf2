//go:build !agent

package main

import (
	"context"
	"flag"
	"time"

	"github.com/wirelog/wirelog/internal/pipeline"
)

// runAll is `wirelog run`: the whole pipeline in one process, on the
// embedded log by default or on Kafka with --kafka.
func runAll(ctx context.Context, args []string) error {
	fs := newFlagSet("run", "Run ingest (HTTP NDJSON/JSON, OTLP/HTTP, syslog), the embedded durable log, the processor,\n"+
		"the DuckDB store, the query API and the dashboard in one process. Nothing else is needed;\n"+
		"with --kafka the events go through Apache Kafka instead of the embedded log.")
	cfg := pipeline.Config{Name: "run", Roles: pipeline.RoleAll}
	fs.StringVar(&cfg.HTTPAddr, "http", "127.0.0.1:8080", "`address` for HTTP: ingest, query API, dashboard, /metrics")
	fs.StringVar(&cfg.DataDir, "data", "./wirelog-data", "`directory` for the embedded log and the DuckDB store")
	registerIngestFlags(fs, &cfg)
	registerProcessFlags(fs, &cfg, "128MB")
	cfg.Kafka.RegisterFlags(fs)
	fs.Int64Var(&cfg.Log.MaxLagBytes, "max-backlog-bytes", 1<<30, "unprocessed `bytes` the embedded log may hold before ingest answers 429 (bounds disk and catch-up time)")
	fs.Int64Var(&cfg.Log.RetentionBytes, "log-retention-bytes", 2<<30, "`bytes` of processed records the embedded log keeps for replay")
	fs.DurationVar(&cfg.Log.RetentionAge, "log-retention", 24*time.Hour, "how long the embedded log keeps processed records (`duration`)")
	registerCommonFlags(fs, &cfg)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return pipeline.Run(ctx, cfg)
}

// registerIngestFlags registers the ingest gateway's flags, shared by `run`
// and `ingest`.
func registerIngestFlags(fs *flag.FlagSet, cfg *pipeline.Config) {
	fs.Int64Var(&cfg.Ingest.MaxBodyBytes, "max-body-bytes", 16<<20, "largest request body in `bytes`, before and after decompression (413 above)")
	fs.IntVar(&cfg.Ingest.MaxLineBytes, "max-line-bytes", 1<<20, "largest single event in `bytes`; a longer line is rejected alone")
	fs.StringVar(&cfg.AuthTokens, "auth-tokens", "", "JSON `file` of bearer tokens, each a tenant with optional events/s and bytes/s limits; empty = no auth (see docs/OPERATIONS.md)")
	fs.IntVar(&cfg.Ingest.MaxConcurrent, "max-inflight-requests", 256, "ingest `requests` decoded or awaiting durability at once (429 above); bounds memory")
	cfg.Syslog.RegisterFlags(fs)
}

// registerProcessFlags registers the processor's and the store's flags,
// shared by `run` and `process`. storeMemory is the default DuckDB memory
// limit: `run` shares its machine with ingest and keeps RSS under ~300 MB
// with 128MB (measured: 10% slower draining than 256MB, 300 vs 443 MB
// peak RSS); a dedicated processor takes 256MB.
func registerProcessFlags(fs *flag.FlagSet, cfg *pipeline.Config, storeMemory string) {
	fs.DurationVar(&cfg.Store.Retention, "retention", 7*24*time.Hour, "how long events and rollups stay queryable (`duration`; by event time)")
	fs.StringVar(&cfg.Store.MemoryLimit, "store-memory", storeMemory, "DuckDB memory limit (`size`, e.g. 128MB, 1GB); the largest part of RSS")
	fs.IntVar(&cfg.Processor.MaxBatch, "max-batch", 20000, "most `records` stored in one transaction")
}

func registerCommonFlags(fs *flag.FlagSet, cfg *pipeline.Config) {
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve Go profiles under /debug/pprof/ on the --http address (for finding what limits throughput)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long SIGTERM waits for in-flight requests (`duration`)")
}
