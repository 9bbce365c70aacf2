//go:build !agent

package main

import (
	"context"
	"flag"
	"log/slog"
	"slices"
	"strings"

	"github.com/wirelog/wirelog/internal/ingest"
	"github.com/wirelog/wirelog/internal/netattach"
	"github.com/wirelog/wirelog/internal/pipeline"
	"github.com/wirelog/wirelog/internal/process"
	"github.com/wirelog/wirelog/internal/storage"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/telemetry"
	"github.com/wirelog/wirelog/internal/transport/disklog"
)

// runAll is `wirelog run`: the whole pipeline in one process, on the
// embedded log by default or on Kafka with --kafka.
func runAll(ctx context.Context, args []string) error {
	fs := newFlagSet("run", "Run ingest (HTTP NDJSON/JSON, OTLP/HTTP, syslog), the embedded durable log, the processor,\n"+
		"the DuckDB store, the query API and the dashboard in one process. Nothing else is needed;\n"+
		"with --kafka the events go through Apache Kafka instead of the embedded log, with --store victorialogs\n"+
		"--store-url URL they are stored in a VictoriaLogs cluster instead of DuckDB.")
	cfg := pipeline.Config{Name: "run", Roles: pipeline.RoleAll}
	fs.StringVar(&cfg.HTTPAddr, "http", pipeline.DefaultHTTPAddr, "`address` for HTTP: ingest, query API, dashboard, /metrics")
	fs.StringVar(&cfg.DataDir, "data", pipeline.DefaultDataDir, "`directory` for the embedded log and the DuckDB store")
	registerIngestFlags(fs, &cfg)
	var bind netattach.Binding
	bind.RegisterFlags(fs)
	registerProcessFlags(fs, &cfg, "")
	registerStoreFlags(fs, &cfg, storage.KindDuckDB)
	cfg.Kafka.RegisterFlags(fs)
	fs.Int64Var(&cfg.Log.MaxLagBytes, "max-backlog-bytes", disklog.DefaultMaxLagBytes, "unprocessed `bytes` the embedded log may hold before ingest answers 429 (bounds disk and catch-up time)")
	fs.Int64Var(&cfg.Log.RetentionBytes, "log-retention-bytes", disklog.DefaultRetentionBytes, "`bytes` of processed records the embedded log keeps for replay")
	fs.DurationVar(&cfg.Log.RetentionAge, "log-retention", disklog.DefaultRetentionAge, "how long the embedded log keeps processed records (`duration`)")
	fs.StringVar(&cfg.Log.Compression, "log-compression", disklog.DefaultCompression,
		"how the embedded log compresses each record batch before writing and fsyncing it (`codec`, Kafka's compression.type): "+
			strings.Join(disklog.Compressions(), ", ")+". Off by default: it costs CPU per event (snappy +8 %, zstd +46 % on HTTP ingest) and pays where the disk, not the CPU, is the limit, "+
			"or to hold more backlog in the same --log-retention-bytes (snappy: 4.2x fewer bytes on HTTP events, the least CPU per byte saved; zstd: 5.9x); docs/bench/disklog.md. "+
			"Batches keep the codec they were written with, so it can change between restarts. Not used with --kafka: set --kafka-compression")
	fs.IntVar(&cfg.Log.CompressionLevel, "log-compression-level", 0,
		"`level` of --log-compression: 0 = the codec's default; lz4 1-9 = LZ4 HC (smaller, much slower), zstd 1-22 (Kafka's compression.<codec>.level)")
	fs.Int64Var(&cfg.Log.SegmentBytes, "log-segment-bytes", disklog.DefaultSegmentBytes, "size in `bytes` of the embedded log's segment files (Kafka's log.segment.bytes): retention deletes whole segments")
	prealloc := fs.Bool("log-preallocate", disklog.DefaultPreallocate,
		"write each next segment file of the embedded log full of zeros ahead of time, so that a group commit overwrites instead of appending and its fdatasync flushes no file-size or extent metadata "+
			"(cheaper syncs: 0.3-0.7 ms instead of 1.4-4 ms for 25 KB on the development VM; docs/bench/disklog.md). Costs a second write of every segment and up to one segment of zeros on disk per partition. Turn off on copy-on-write filesystems (btrfs, ZFS), where overwriting does not help")
	fs.IntVar(&cfg.Log.MaxSyncsInFlight, "log-syncs-in-flight", disklog.DefaultMaxSyncsInFlight,
		"group commits of the embedded log being fdatasynced at once (`count`, 1-4): with 2 the next group's sync starts while one runs, so a request waits for its own sync only; 1 = one at a time")
	registerCommonFlags(fs, &cfg)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Log.NoPreallocate = !*prealloc
	if !slices.Contains(disklog.Compressions(), cfg.Log.Compression) {
		return usageErrorf("--log-compression %q: want one of %s", cfg.Log.Compression, strings.Join(disklog.Compressions(), ", "))
	}
	if cfg.StoreKind == storage.KindVictoriaLogs && cfg.VictoriaLogs.URL == "" {
		return usageErrorf("--store victorialogs needs --store-url, the VictoriaLogs front node (e.g. http://127.0.0.1:19428)")
	}
	if err := bind.Apply(ctx, slog.Default().With("component", "netattach"), &cfg.HTTPAddr, &cfg.Syslog.UDPAddr, &cfg.Syslog.TCPAddr); err != nil {
		return err
	}
	return pipeline.Run(ctx, cfg)
}

// registerIngestFlags registers the ingest gateway's flags, shared by `run`
// and `ingest`.
func registerIngestFlags(fs *flag.FlagSet, cfg *pipeline.Config) {
	in := &cfg.Ingest
	fs.Int64Var(&in.MaxBodyBytes, "max-body-bytes", ingest.DefaultMaxBodyBytes, "largest request body in `bytes`, before and after decompression (413 above)")
	fs.IntVar(&in.MaxLineBytes, "max-line-bytes", ingest.DefaultMaxLineBytes, "largest single record in `bytes`, as sent (an NDJSON line) and as encoded (every path, OTLP included); a longer record is rejected alone")
	fs.IntVar(&in.MaxAttributes, "max-attributes", ingest.DefaultMaxAttributes, "most attributes of one record (`count`; nested keys and OTLP resource attributes included); more: the record is rejected")
	fs.IntVar(&in.MaxDepth, "max-depth", ingest.DefaultMaxDepth, "deepest nesting of one record's attributes (`levels`); deeper: the record is rejected")
	fs.IntVar(&in.MaxRecords, "max-records", ingest.DefaultMaxRecords, "most records in one request (`count`; 413 above: split the request)")
	fs.Int64Var(&in.MaxEventBytes, "max-request-event-bytes", ingest.DefaultMaxEventBytes, "most encoded event `bytes` of one request (413 above); under the embedded log's 64 MiB batch so a request is stored atomically")
	fs.IntVar(&in.MaxDecompressionRatio, "max-decompression-ratio", ingest.DefaultMaxDecompressionRatio, "largest decompressed/compressed size `ratio` of a body past 1 MiB (413 above: a decompression bomb)")
	fs.Int64Var(&in.MemoryBudget, "ingest-memory-budget", ingest.DefaultMemoryBudget, "`bytes` all in-flight ingest requests may hold together (bodies, decoded events, OTLP structures); 503 with Retry-After above")
	fs.IntVar(&in.MaxConcurrent, "max-inflight-requests", ingest.DefaultMaxConcurrent, "ingest `requests` decoded or awaiting durability at once (429 above)")
	fs.IntVar(&in.MaxPerClient, "max-inflight-per-client", ingest.DefaultMaxPerClient, "ingest `requests` in flight from one client address (429 above), so one sender cannot hold every slot; one tenant's tokens together may hold half of --max-inflight-requests")
	fs.DurationVar(&in.BodyTimeout, "body-read-timeout", ingest.DefaultBodyTimeout, "longest time to receive one request body (`duration`; 408 above)")
	fs.Int64Var(&in.MinBodyRate, "min-body-rate", ingest.DefaultMinBodyRate, "slowest accepted body upload in `bytes/s`, after a 5s grace (408 below): stalled uploads give their slot back")
	fs.Func("trusted-proxies", "comma-separated `addresses or CIDR prefixes` of proxies whose X-Forwarded-For names the HTTP client; "+
		"every event records its sender as client.address (and client.port), and --max-inflight-per-client counts each forwarded client on its own", func(s string) error {
		p, err := ingest.ParseTrustedProxies(s)
		cfg.Ingest.TrustedProxies = p
		return err
	})
	fs.StringVar(&cfg.IngestRecordFormat, "ingest-record-format", ingest.DefaultRecordFormat,
		"how HTTP ingest (NDJSON/JSON, OTLP, Elasticsearch, Loki) writes events into the log (`format`): \"binary\" records the processor copies without parsing JSON again "+
			"(less CPU per event; processors must be this wirelog version or newer), \"json\" records any consumer of a Kafka topic can read, "+
			"\"auto\" binary on the embedded log and json with --kafka. Processors read every format, so it can change at any time")
	cfg.Syslog.RegisterFlags(fs)
}

// registerDashboardFlags registers what the dashboard reads besides the
// store, shared by `run`, `process` and `serve`.
func registerDashboardFlags(fs *flag.FlagSet, cfg *pipeline.Config) {
	fs.StringVar(&cfg.JaegerURL, "jaeger-url", "", "Jaeger UI `URL` (http://jaeger:16686): the dashboard links trace ids to {URL}/trace/{id}; empty = ids are shown plain, to copy")
	fs.StringVar(&cfg.Prometheus, "prometheus", "", "Prometheus `URL` (http://127.0.0.1:9090) that scrapes the data-plane agents (`wirelog dataplane`): the dashboard's Data plane page reads PMD, port, VF and hugepage series through this node; empty = the page explains how to set it up")
	fs.StringVar(&cfg.DataPlaneScrape, "dataplane-scrape", "", "data-plane agent /metrics `URL` (http://127.0.0.1:9810/metrics) this node scrapes itself every 15 s when there is no Prometheus, keeping the last hour in memory for the Data plane page; not with --prometheus")
}

// registerProcessFlags registers the processor's and the store's flags,
// shared by `run` and `process`. storeMemory is the default DuckDB memory
// limit: "" for `run`, which shares its machine with ingest (the pipeline
// picks it by format), store.DefaultMemoryLimit for a dedicated processor.
func registerProcessFlags(fs *flag.FlagSet, cfg *pipeline.Config, storeMemory string) {
	fs.DurationVar(&cfg.Store.Retention, "retention", store.DefaultRetention, "how long events and rollups stay queryable (`duration`; by event time)")
	registerDashboardFlags(fs, cfg)
	memoryUsage := "DuckDB memory limit (`size`, e.g. 128MB, 1GB): its cache and query memory, beyond which queries spill to the temp directory beside the database"
	switch {
	case storeMemory != "":
	case pipeline.DefaultRunSegmentStoreMemory == pipeline.DefaultRunStoreMemory:
		memoryUsage += "; default " + pipeline.DefaultRunStoreMemory + " (with segment files DuckDB holds only indexes, rollups and query memory)"
	default:
		memoryUsage += "; default " + pipeline.DefaultRunSegmentStoreMemory + " with segment files (--store-format parquet or auto: DuckDB then holds only indexes and rollups), " +
			pipeline.DefaultRunStoreMemory + " with --store-format table"
	}
	fs.StringVar(&cfg.Store.MemoryLimit, "store-memory", storeMemory, memoryUsage)
	fs.IntVar(&cfg.Processor.MaxBatch, "max-batch", process.DefaultMaxBatch, "most `records` stored in one transaction")
	fs.IntVar(&cfg.Processor.MaxWriteTries, "max-write-tries", process.DefaultMaxWriteTries, "store `tries` of a whole batch before it is split and the records the store refuses go to the dead_letters table")
	fs.Int64Var(&cfg.Store.CheckpointRows, "store-checkpoint-rows", store.DefaultCheckpointRows,
		"stored `rows` after which writes switch to the store's twin file and the one left is checkpointed in the background (its WAL folded into the file); "+
			"smaller means smaller WALs to replay and more CPU; -1 leaves checkpoints to DuckDB inside the COMMIT that passes --store-checkpoint-threshold (stalls writes)")
	fs.StringVar(&cfg.Store.Format, "store-format", store.DefaultFormat,
		"how the DuckDB store keeps events (`format`): \""+store.FormatParquet+"\" Parquet segment files written by the processor and read by DuckDB: "+
			"~2.5x less CPU per stored event and no commit stalls, queryable after --store-segment-interval, offsets committed to the log only once their segment is "+
			"(with Kafka, the buffer is written before a rebalance hands partitions to another processor); "+
			"\""+store.FormatTable+"\" rows in DuckDB tables, one transaction per batch, queryable at once; "+
			"\""+store.FormatAuto+"\" parquet with --data, table in memory. A table store's rows stay readable after a switch to parquet; "+
			"segment files cannot be read back by the table format")
	fs.IntVar(&cfg.Store.SegmentRows, "store-segment-rows", store.DefaultSegmentRows, "with --store-format parquet: buffered `events` that make a segment file")
	fs.DurationVar(&cfg.Store.SegmentInterval, "store-segment-interval", store.DefaultSegmentInterval,
		"with --store-format parquet: the longest an event waits in memory before its segment file is written (`duration`): the freshness bound")
	fs.StringVar(&cfg.Store.CheckpointThreshold, "store-checkpoint-threshold", store.DefaultCheckpointThreshold,
		"DuckDB's own WAL `size` limit per file, a backstop: a commit that pushes a WAL past it checkpoints inline and stalls that write (wirelog_store_inline_checkpoints_total)")
}

func registerCommonFlags(fs *flag.FlagSet, cfg *pipeline.Config) {
	fs.StringVar(&cfg.AuthTokens, "auth-tokens", "", "JSON `file` of tenant bearer tokens, each with optional events/s and bytes/s limits; a token writes and reads only its tenant (see docs/OPERATIONS.md)")
	fs.StringVar(&cfg.AdminTokens, "admin-tokens", "", "`file` of operator bearer tokens, one a line: /metrics, /debug/pprof, processor pause/resume and every tenant's data. Without this and --auth-tokens the API is open")
	telemetry.RegisterFlags(fs, &cfg.Tracing)
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve Go profiles under /debug/pprof/ on the --http address (for finding what limits throughput)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", pipeline.DefaultShutdownTimeout, "how long SIGTERM waits for in-flight requests (`duration`)")
	cfg.TLS.RegisterFlags(fs)
}
