#!/usr/bin/env bash
# store-memory.sh — where the memory of a `wirelog run --store-format parquet`
# goes under a fixed offered rate: starts a fresh run with --pprof and
# GODEBUG=gctrace=1 (GC lines in run.log), offers RATE events/s for DURATION
# (8 connections, batches of 500: issue 12's sustained shape) and every 5 s
# records VmRSS/VmHWM and anonymous memory (samples.txt), DuckDB's
# duckdb_memory() by tag beside the Go runtime's figures from
# /debug/store/memory (duck.txt); every 30 s a Go heap profile
# (heap-T.pb.gz: `go tool pprof -top -sample_index=inuse_space`) and
# /proc/PID/smaps_rollup (smaps-T.txt); /metrics at the end. Bounded by
# DURATION; stops what it started.
#
# Usage: scripts/bench/store-memory.sh OUT RATE DURATION [extra run flags]
#   e.g. scripts/bench/store-memory.sh /tmp/mem 200000 150s --store-memory 64MB
# Environment: WIRELOG [bin/wirelog], PORT [28751]; GOGC/GOMEMLIMIT pass through.
set -u
OUT=$1; RATE=$2; DUR=$3; shift 3
BIN=${WIRELOG:-bin/wirelog}
PORT=${PORT:-28751}
mkdir -p "$OUT"
DATA=$(mktemp -d /tmp/store-memory-XXXXXX)
GODEBUG=gctrace=1 "$BIN" run --http "127.0.0.1:$PORT" --data "$DATA" --syslog-udp "" --syslog-tcp "" --pprof --store-format parquet "$@" >"$OUT/run.log" 2>&1 &
PID=$!
cleanup() { kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
{ date -u; nproc; lscpu | grep 'Model name'; uptime; } >"$OUT/uptime.txt"
"$BIN" loadgen --target "http://127.0.0.1:$PORT" --rate "$RATE" --duration "$DUR" --concurrency 8 --batch 500 \
	--json --quiet >"$OUT/report.json" 2>"$OUT/loadgen.err" &
LG=$!
i=0
while kill -0 "$LG" 2>/dev/null; do
	sleep 5
	i=$((i + 5))
	rss=$(awk '/^VmRSS/{print $2}' "/proc/$PID/status")
	hwm=$(awk '/^VmHWM/{print $2}' "/proc/$PID/status")
	anon=$(awk '/^Anonymous/{print $2}' "/proc/$PID/smaps_rollup")
	files=$(find "$DATA" -name '*.parquet' | wc -l)
	echo "t=$i rss_kb=$rss hwm_kb=$hwm anon_kb=$anon segment_files=$files" >>"$OUT/samples.txt"
	echo "t=$i $(curl -s "http://127.0.0.1:$PORT/debug/store/memory" | tr -d '\n')" >>"$OUT/duck.txt"
	if [ $((i % 30)) = 0 ]; then
		curl -s "http://127.0.0.1:$PORT/debug/pprof/heap" >"$OUT/heap-$i.pb.gz"
		cat "/proc/$PID/smaps_rollup" >"$OUT/smaps-$i.txt"
	fi
done
curl -s "http://127.0.0.1:$PORT/metrics" >"$OUT/metrics.txt"
{ uptime; du -sh "$DATA"; } >>"$OUT/uptime.txt"
tail -1 "$OUT/samples.txt"
