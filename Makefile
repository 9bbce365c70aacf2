# wirelog — the two commands a user needs are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin/wirelog
export CGO_ENABLED := 1

.PHONY: run test build agent deps test-go fmt vet bench clean kafka-up kafka-down test-chart vet-chart chart-docs chart-lint soak sustained sustained-kafka ui test-ui vl-up vl-down crash-sustained crash-sustained-kafka

## run: build (the dashboard too, when web/ changed) and start wirelog with embedded defaults (http://127.0.0.1:8080, data in ./wirelog-data)
run: ui build
	./$(BIN) run --http 127.0.0.1:8080 --data ./wirelog-data

## test: install what the tests need (as root on Debian 12), then run every test
test: deps vet ui test-ui test-go test-chart

build:
	$(GO) build -o $(BIN) ./cmd/wirelog

## agent: the DaemonSet binary (dataplane, preflight only): no DuckDB, Kafka or pipeline, a fifth of the size
agent:
	$(GO) build -tags agent -o bin/wirelog-agent ./cmd/wirelog

## ui: build the dashboard (web/) into internal/webui/dist, which the binary embeds; only when its sources changed
UI_DIST := internal/webui/dist/index.html
UI_SRC := $(shell find web/src -type f 2>/dev/null) web/index.html web/package.json web/vite.config.ts web/tsconfig.json web/scripts/after-build.mjs
ui: $(UI_DIST)
$(UI_DIST): web/node_modules/.package-lock.json $(UI_SRC)
	cd web && npm run build
# npm ci from the lockfile on a fresh clone, or when the lockfile changed.
web/node_modules/.package-lock.json: web/package-lock.json
	cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error

## test-ui: the dashboard's component tests (Vitest); its browser tests run in Go (internal/webui)
test-ui: web/node_modules/.package-lock.json
	cd web && npx vitest run

## deps: apt packages, Kafka jars, npm packages — each scripts/deps/*.sh is idempotent
deps:
	@for s in scripts/deps/*.sh; do echo "== $$s"; bash "$$s" || exit 1; done

vet:
	@test -z "$$(gofmt -l cmd internal)" || { echo "gofmt needed:"; gofmt -l cmd internal; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags agent ./cmd/wirelog

# -p 1 keeps the heavy process tests (DuckDB, Kafka, DPDK) from starving each
# other on a 2-core CI machine; the packages themselves still run in parallel inside.
# A skipped test fails the run: every test's prerequisites are installed by
# `make deps`, so a skip means an install step is missing, not a pass.
# Beside the tests, at idle CPU priority (SCHED_IDLE: only cores they leave idle),
# the chart checks' test binary builds: ~8 min cold, a cache hit warm (scripts/chart-check.sh).
test-go: build
	@mkdir -p bin
	@chrt --idle 0 bash scripts/chart-check.sh --build-only >bin/chart-build.log 2>&1 & bg=$$!; \
	set -o pipefail; $(GO) test -count=1 -p 1 -timeout 60m -v ./... 2>&1 | tee bin/test.log \
		| grep -E '^(ok|FAIL|--- FAIL|--- SKIP|panic:)|^\s+\S+_test\.go:[0-9]+:' ; rc=$$?; \
	wait $$bg || echo "the chart checks' build beside the tests failed (bin/chart-build.log); test-chart tries again"; \
	if [ $$rc -ne 0 ]; then echo "tests failed (full output: bin/test.log)"; exit 1; fi; \
	if grep -q -e '--- SKIP' bin/test.log; then echo "tests were skipped (see --- SKIP above): a prerequisite is missing from scripts/deps"; exit 1; fi

## test-chart: the Helm chart's checks (deploy/check, its own Go module): render, lint, strict decoding, invariants, server-side dry-run on an in-process kube-apiserver
test-chart: vet-chart
	bash scripts/chart-check.sh

# The root's `go vet ./...` does not enter the nested module deploy/check.
vet-chart:
	@test -z "$$(gofmt -l deploy/check)" || { echo "gofmt needed:"; gofmt -l deploy/check; exit 1; }
	cd deploy/check && $(GO) vet .

## chart-lint: the helm CLI (helm.sh/helm/v4, a go tool of deploy/check) lints the chart strictly with each example
chart-lint:
	cd deploy/check && $(GO) tool helm lint --strict ../helm/wirelog && \
	for f in ../helm/wirelog/examples/*.yaml; do $(GO) tool helm lint --strict ../helm/wirelog -f $$f || exit 1; done

## chart-docs: regenerate the chart README's values table from the comments in values.yaml
chart-docs:
	cd deploy/check && $(GO) test -count=1 -run TestEveryValueDocumented . -args -update

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

## soak: a fresh `wirelog run` at a fixed rate for 15 minutes (SOAK_RATE, SOAK_DURATION…, see scripts/soak.sh): CSV, HTML chart, verdict in bin/soak
soak: build
	bash scripts/soak.sh

## sustained: issue 12's scenario in one command — a fresh `wirelog run` taking as much as loadgen can send for 120 s (8 connections, batches of 500) on the same machine; prints stored rate, backlog slope, ack latency, freshness, RSS and CPU per stored event (bin/sustained; STORE_FORMAT=table for the table format; the default is segment files)
sustained: build
	SOAK_RATE=0 SOAK_DURATION=$${SOAK_DURATION:-120s} SOAK_CONCURRENCY=8 SOAK_BATCH=500 SOAK_OUT=bin/sustained \
	SOAK_RUN_FLAGS="--store-format $${STORE_FORMAT:-auto} $${SOAK_RUN_FLAGS:-}" bash scripts/soak.sh

## sustained-kafka: the same scenario on a real Kafka broker started for it (scripts/kafka.sh, port 29092; `wirelog run --kafka`): the summary's backlog is the consumer lag, the broker's CPU is in bin/sustained-kafka/cpu.txt (STORE_FORMAT=table for the table format)
sustained-kafka: build
	bash scripts/sustained-kafka.sh

## crash-sustained: issue 12's exactly-once check at the sustained rate — loadgen as fast as it can (120 s, 8 connections × 500) into `wirelog run`, which is killed with SIGKILL 4 times and restarted; then every acknowledged event must be stored exactly once (STORE_FORMAT=parquet|table; WIRELOG_CRASH_DURATION, _RATE, _CONCURRENCY, _BATCH, _KILLS)
crash-sustained:
	$(GO) test -count=1 -run '^$$' -bench "CrashSustained/^$${STORE_FORMAT:-parquet}$$" -benchtime 1x -timeout 60m -v ./cmd/wirelog

## crash-sustained-kafka: the same on a real Kafka broker started for it — `wirelog ingest` keeps acknowledging while `wirelog process --store-format parquet` is killed 4 times
crash-sustained-kafka:
	$(GO) test -count=1 -run '^$$' -bench KafkaCrashSustained -benchtime 1x -timeout 60m -v ./internal/transport/kafka/e2e/

fmt:
	gofmt -w cmd internal

clean:
	rm -rf bin

## kafka-up: local single-node Kafka (KRaft) on 127.0.0.1:9092; jars fetched from Maven Central once
kafka-up:
	bash scripts/kafka.sh start

## kafka-down: stop it
kafka-down:
	bash scripts/kafka.sh stop

## vl-up: local VictoriaLogs cluster (two storage nodes + front node on 127.0.0.1:19428); built into the cache once
vl-up:
	bash scripts/vl.sh cluster-start

## vl-down: stop it
vl-down:
	bash scripts/vl.sh cluster-stop
