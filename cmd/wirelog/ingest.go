//go:build !agent

package main

import (
	"context"
	"log/slog"

	"github.com/wirelog/wirelog/internal/netattach"
	"github.com/wirelog/wirelog/internal/pipeline"
)

// runIngest is `wirelog ingest`: the ingest gateway alone, producing to Kafka.
// It answers 202 only after Kafka acknowledged (acks=all) every accepted
// event, 429 when the producer buffer is full and 503 when the cluster does
// not acknowledge within --kafka-produce-timeout, both with Retry-After.
func runIngest(ctx context.Context, args []string) error {
	fs := newFlagSet("ingest", "Run the ingest gateway only (HTTP NDJSON/JSON, OTLP/HTTP logs, syslog), producing every\n"+
		"accepted event to Kafka. Processors (wirelog process) consume the topic in a consumer group.")
	cfg := pipeline.Config{Name: "ingest", Roles: pipeline.RoleIngest}
	fs.StringVar(&cfg.HTTPAddr, "http", pipeline.DefaultHTTPAddr, "`address` for HTTP: ingest (/api/v1/logs, /v1/logs), /metrics, /healthz, /readyz")
	registerIngestFlags(fs, &cfg)
	var bind netattach.Binding
	bind.RegisterFlags(fs)
	cfg.Kafka.RegisterFlags(fs)
	registerCommonFlags(fs, &cfg)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := bind.Apply(ctx, slog.Default().With("component", "netattach"), &cfg.HTTPAddr, &cfg.Syslog.UDPAddr, &cfg.Syslog.TCPAddr); err != nil {
		return err
	}
	if len(cfg.Kafka.Brokers) == 0 {
		return usageErrorf("--kafka is required (the ingest gateway produces to Kafka; use `wirelog run` for the embedded log)")
	}
	return pipeline.Run(ctx, cfg)
}
