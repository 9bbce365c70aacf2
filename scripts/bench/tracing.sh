#!/usr/bin/env bash
# Tracing overhead: `wirelog loadgen` against `wirelog run` with tracing off
# and with OTLP export to a real Jaeger at 1% sampling
# (parentbased_traceidratio 0.01), alternating A B B A … in the same run.
# Prints acknowledged events/s and the server's CPU µs per event per run.
# Usage: scripts/bench/tracing.sh [rounds=3] [seconds=15]
# Needs: make build; scripts/deps/60-jaeger.sh (Jaeger in $WIRELOG_CACHE).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3} secs=${2:-15}
WIRELOG_CACHE=${WIRELOG_CACHE:-$HOME/.cache/wirelog}
JAEGER_VERSION=$(awk '$1=="github.com/jaegertracing/jaeger"{print $2}' tools/jaeger/go.mod)
jaeger=$WIRELOG_CACHE/jaeger-$JAEGER_VERSION/jaeger
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
cat >"$tmp/jaeger.yaml" <<YAML
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: [jaeger_storage_exporter]}
  telemetry: {metrics: {level: none}, logs: {level: warn}}
extensions:
  jaeger_query: {storage: {traces: mem}, http: {endpoint: 127.0.0.1:26686}, grpc: {endpoint: 127.0.0.1:26685}}
  jaeger_storage: {backends: {mem: {memory: {max_traces: 100000}}}}
receivers:
  otlp: {protocols: {http: {endpoint: 127.0.0.1:24318}}}
processors:
  batch: {}
exporters:
  jaeger_storage_exporter: {trace_storage: mem}
YAML
"$jaeger" --config "$tmp/jaeger.yaml" >"$tmp/jaeger.log" 2>&1 &
pids+=($!)
sleep 3

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

one() { # mode: off | on
  local mode=$1 port=28650 data=$tmp/data-$RANDOM
  local env=()
  if [[ $mode == on ]]; then
    env=(OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.01 OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:24318)
  fi
  env "${env[@]}" ./bin/wirelog run --http 127.0.0.1:$port --data "$data" --syslog-udp "" --syslog-tcp "" 2>"$tmp/run.log" &
  local pid=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/readyz >/dev/null && break; sleep 0.1; done
  local c0; c0=$(cpu_ticks $pid)
  local eps
  eps=$(./bin/wirelog loadgen --target http://127.0.0.1:$port --duration "${secs}s" --concurrency 8 --batch 500 --quiet --json |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["events_per_second"])')
  local c1; c1=$(cpu_ticks $pid)
  local acked
  acked=$(curl -s http://127.0.0.1:$port/metrics | awk '/^wirelog_ingest_events_total\{result="accepted"\}/{print $2}')
  kill -TERM $pid; wait $pid || true
  rm -rf "$data"
  python3 -c "print('$mode', round(float('$eps')), 'events/s', round(($c1-$c0)/$hz*1e6/float('$acked'),3), 'server CPU µs/event')"
}

echo "# $(date -u +%FT%TZ) nproc=$(nproc) $(lscpu | awk -F: '/Model name/{gsub(/^ +/,"",$2);print $2}') load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
  if (( r % 2 )); then one off; one on; else one on; one off; fi
done
echo "# end load: $(cut -d' ' -f1-3 /proc/loadavg)"
