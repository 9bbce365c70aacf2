//go:build !agent

package main

import (
	"context"
	"os"

	"github.com/wirelog/wirelog/internal/pipeline"
	"github.com/wirelog/wirelog/internal/storage"
	"github.com/wirelog/wirelog/internal/store"
)

// runProcess is `wirelog process`: a processor in a Kafka consumer group, with
// its own DuckDB store and the query API over it. Each processor needs its
// own --data directory (DuckDB is single-process); the group spreads the
// topic's partitions over the processors. See docs/KAFKA.md for how
// exactly-once holds when partitions move between processors.
func runProcess(ctx context.Context, args []string) error {
	fs := newFlagSet("process", "Run a processor: consume the events topic from Kafka in a consumer group (--group), store\n"+
		"events and rollups in DuckDB (--data), and serve the query API and dashboard over that store.")
	cfg := pipeline.Config{Name: "process", Roles: pipeline.RoleProcess}
	fs.StringVar(&cfg.HTTPAddr, "http", pipeline.DefaultProcessHTTPAddr, "`address` for HTTP: query API, dashboard, /metrics, /healthz, /readyz")
	fs.StringVar(&cfg.DataDir, "data", pipeline.DefaultDataDir, "`directory` for this processor's DuckDB store (one per processor; unused with --store victorialogs)")
	registerProcessFlags(fs, &cfg, store.DefaultMemoryLimit)
	registerStoreFlags(fs, &cfg, storage.KindDuckDB)
	cfg.Kafka.RegisterFlags(fs)
	group := cfg.Kafka.Group
	if v, ok := os.LookupEnv("WIRELOG_KAFKA_GROUP"); ok {
		group = v
	}
	fs.StringVar(&cfg.Kafka.Group, "group", group, "consumer group `name`; processors of one group share the topic's partitions (env WIRELOG_KAFKA_GROUP)")
	registerCommonFlags(fs, &cfg)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(cfg.Kafka.Brokers) == 0 {
		return usageErrorf("--kafka is required (processors consume from Kafka; use `wirelog run` for the embedded log)")
	}
	if cfg.Kafka.Group == "" {
		return usageErrorf("--group is empty: processors need a consumer group")
	}
	if cfg.StoreKind == storage.KindVictoriaLogs && cfg.VictoriaLogs.URL == "" {
		return usageErrorf("--store victorialogs needs --store-url, the VictoriaLogs front node (e.g. http://127.0.0.1:19428)")
	}
	return pipeline.Run(ctx, cfg)
}
