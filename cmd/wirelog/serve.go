//go:build !agent

package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/wirelog/wirelog/internal/pipeline"
	"github.com/wirelog/wirelog/internal/storage"
	"github.com/wirelog/wirelog/internal/storage/victorialogs"
)

// runServe is `wirelog serve`: the query API, live tail and status page over
// a shared store (a VictoriaLogs cluster the processors write to), with no
// ingest and no processor; run as many as the query load needs.
func runServe(ctx context.Context, args []string) error {
	fs := newFlagSet("serve", "Serve the query API, live tail and dashboard over a VictoriaLogs cluster that `wirelog process\n"+
		"--store victorialogs` writes to. No ingest, no processor: scale it with the query load.")
	cfg := pipeline.Config{Name: "serve", Roles: pipeline.RoleServe, StoreKind: storage.KindVictoriaLogs}
	fs.StringVar(&cfg.HTTPAddr, "http", pipeline.DefaultServeHTTPAddr, "`address` for HTTP: query API, dashboard, /metrics, /healthz, /readyz")
	registerStoreFlags(fs, &cfg, storage.KindVictoriaLogs)
	registerDashboardFlags(fs, &cfg)
	registerCommonFlags(fs, &cfg)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.StoreKind != storage.KindVictoriaLogs {
		return usageErrorf("--store %s: wirelog serve reads a shared store; use --store victorialogs --store-url URL", cfg.StoreKind)
	}
	if cfg.VictoriaLogs.URL == "" {
		return usageErrorf("--store-url is required: the VictoriaLogs front node, e.g. http://127.0.0.1:19428 (make vl-up)")
	}
	return pipeline.Run(ctx, cfg)
}

// registerStoreFlags registers --store and the VictoriaLogs store's flags,
// shared by `run`, `process` and `serve`.
func registerStoreFlags(fs *flag.FlagSet, cfg *pipeline.Config, def string) {
	fs.StringVar(&cfg.StoreKind, "store", def, "where events are stored: `kind` duckdb (embedded, one per processor) or victorialogs (a cluster shared by every processor and `wirelog serve`; at-least-once into it, since VictoriaLogs does not deduplicate, while answers give each event once: search, tail and export drop repeated ids, and counts are exact for every row verified durable, see docs/ARCHITECTURE.md)")
	fs.StringVar(&cfg.VictoriaLogs.URL, "store-url", "", "VictoriaLogs front node `URL` for --store victorialogs, e.g. http://127.0.0.1:19428 (make vl-up starts one)")
	fs.DurationVar(&cfg.VictoriaLogs.DurableAfter, "store-durable-after", victorialogs.DefaultDurableAfter,
		"how long after VictoriaLogs answered an insert its rows are verified and their Kafka offsets committed (`duration`); twice VictoriaLogs' -inmemoryDataFlushInterval plus 6s")
	fs.Func("store-stream-fields", "comma-separated VictoriaLogs stream `fields` rows are written with (default "+strings.Join(victorialogs.StreamFields, ",")+
		"); level makes totals and histograms 9-13x faster for about 17% of ingest speed here (docs/bench/victorialogs.md)",
		func(v string) error {
			var fields []string
			for _, f := range strings.Split(v, ",") {
				if f = strings.TrimSpace(f); f != "" {
					fields = append(fields, f)
				}
			}
			if len(fields) == 0 {
				return fmt.Errorf("%q names no field", v)
			}
			cfg.VictoriaLogs.StreamFields = fields
			return nil
		})
	fs.Func("store-tenant", "default VictoriaLogs account `AccountID:ProjectID` (default 0:0): rows of tenants --store-tenants does not list, and of events without a tenant, are written there",
		func(v string) error {
			a, err := victorialogs.ParseAccount(v)
			cfg.VictoriaLogs.AccountID, cfg.VictoriaLogs.ProjectID = a.AccountID, a.ProjectID
			return err
		})
	fs.IntVar(&cfg.VictoriaLogs.MaxLineBytes, "store-max-line-bytes", victorialogs.DefaultMaxLineBytes,
		"the VictoriaLogs cluster's -insert.maxLineSizeBytes (`bytes`): it skips longer JSON lines with a 200, so a row longer than this as a line is refused and goes to the dead letters instead")
	fs.DurationVar(&cfg.VictoriaLogs.Retention, "store-retention", victorialogs.DefaultRetention,
		"the VictoriaLogs cluster's -retentionPeriod (`duration`): it drops older rows with a 200, so they go to the dead letters instead")
	fs.DurationVar(&cfg.VictoriaLogs.FutureRetention, "store-future-retention", victorialogs.DefaultFutureRetention,
		"the VictoriaLogs cluster's -futureRetention (`duration`): rows further in the future go to the dead letters")
	fs.Func("store-dead-letters", "VictoriaLogs account `AccountID:ProjectID` of the dead letters, records the store refuses (default "+victorialogs.DefaultDeadLetters.String()+
		"; read them with those AccountID/ProjectID headers); no tenant's account",
		func(v string) error {
			a, err := victorialogs.ParseAccount(v)
			cfg.VictoriaLogs.DeadLetters = a
			return err
		})
	fs.Func("store-tenants", "`file` mapping wirelog tenants to VictoriaLogs accounts, a line each: \"tenant AccountID:ProjectID\" (\"* A:P\" sets the default, as --store-tenant); "+
		"a tenant token's queries read its account only, an operator's query reads every account listed and merges (docs/ARCHITECTURE.md)",
		func(v string) error {
			m, def, err := victorialogs.LoadTenants(v)
			if err != nil {
				return err
			}
			cfg.VictoriaLogs.Tenants = m
			if def != nil {
				cfg.VictoriaLogs.AccountID, cfg.VictoriaLogs.ProjectID = def.AccountID, def.ProjectID
			}
			return nil
		})
}
