#!/usr/bin/env bash
# store-scale.sh — issue 12's query mix against a `wirelog run` serving a store
# built by BenchmarkStoreScale (internal/store/scale_bench_test.go), beside
# sustained ingest from `wirelog loadgen --soak`. One client sends the four
# queries in turn over HTTP (what the dashboard and API users send) and the
# script prints p50/p99 per query, then the loadgen report.
#
#   WIRELOG_SCALE_ROWS=100000000 WIRELOG_SCALE_DIR=/var/tmp/wl-100m \
#     go test -run '^$' -bench StoreScale -benchtime 1x -timeout 3h ./internal/store   # build
#   SCALE_DIR=/var/tmp/wl-100m SCALE_TEXT='order 1a2b3c4d created' bash scripts/bench/store-scale.sh
#
# Environment (defaults in brackets):
#   SCALE_DIR       data directory holding the store (wirelog.duckdb); required.
#                   Ingest adds to it: build a fresh one for the next figure.
#   SCALE_FORMAT    [parquet]  --store-format it was built with
#   SCALE_TEXT      [timeout]  free-text query over 24 h (the benchmark logs its rare text)
#   SCALE_SERVICE   [payments-api]
#   SCALE_RATE      [50000]    offered events/s beside the queries (0: queries alone)
#   SCALE_DURATION  [120]      seconds
#   SCALE_PORT      [28660]
#   SCALE_OUT       [bin/store-scale]  latencies-<query>.txt, report.json, soak.csv, run.log, host.txt
#   WIRELOG         [bin/wirelog]
#   SCALE_GODEBUG   []         GODEBUG for `wirelog run` (gctrace=1 puts every GC in run.log)
#
# To see where a slow query's time went, the script also writes
# timeline.txt (each query's start as Unix time, name, seconds) and
# metrics.txt (once a second: Unix time, then the counters of checkpoints,
# rollup and segment compactions, segments written, GC cycles and process
# CPU seconds, the host's 1-minute load), and store-query-seconds.txt (the store's own time per query
# kind, from /metrics, after the run). scripts/bench/store-scale-timeline.py
# lines the two up: each query kind's latencies with and without a
# checkpoint running, and by the process's CPU in that second.
set -euo pipefail
DIR=${SCALE_DIR:?set SCALE_DIR to the data directory of a store built by BenchmarkStoreScale}
FORMAT=${SCALE_FORMAT:-parquet}
TEXT=${SCALE_TEXT:-timeout}
SERVICE=${SCALE_SERVICE:-payments-api}
RATE=${SCALE_RATE:-50000}
DURATION=${SCALE_DURATION:-120}
PORT=${SCALE_PORT:-28660}
OUT=${SCALE_OUT:-bin/store-scale}
BIN=${WIRELOG:-bin/wirelog}
URL="http://127.0.0.1:$PORT"
mkdir -p "$OUT"
rm -f "$OUT"/latencies-*.txt "$OUT/timeline.txt" "$OUT/metrics.txt"
GODEBUG="${SCALE_GODEBUG:-${GODEBUG:-}}" "$BIN" run --http "127.0.0.1:$PORT" --data "$DIR" --store-format "$FORMAT" --syslog-udp "" --syslog-tcp "" >"$OUT/run.log" 2>&1 &
PID=$!
LG=""
MP=""
cleanup() {
	[ -n "$LG" ] && kill -TERM "$LG" 2>/dev/null
	[ -n "$MP" ] && kill -TERM "$MP" 2>/dev/null
	kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
}
trap cleanup EXIT
for _ in $(seq 600); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.2; done
curl -sf "$URL/readyz" >/dev/null || { echo "wirelog did not become ready; see $OUT/run.log" >&2; exit 1; }
{ date -u; nproc; lscpu | grep 'Model name'; uptime; } >"$OUT/host.txt"
if [ "$RATE" != 0 ]; then
	"$BIN" loadgen --target "$URL" --rate "$RATE" --duration "$((DURATION + 10))s" --concurrency 8 --batch 500 \
		--json --quiet --soak --soak-csv "$OUT/soak.csv" --soak-html "$OUT/soak.html" >"$OUT/report.json" 2>"$OUT/loadgen.log" &
	LG=$!
	sleep 10 # ingest reaches its rate before the first query
fi
# A live tail reads every stored event beside the queries: what it got, and
# whether it reported gaps or drops, says whether the queries held it up.
curl -sN --max-time "$DURATION" "$URL/api/v1/tail" 2>/dev/null |
	awk '/^data:/ {d++} /^event: (gap|dropped)/ {g++} END {print d + 0, g + 0}' >"$OUT/tail.txt" &
TAIL=$!
# The counters a slow query may line up with, once a second (bounded by
# the run's length).
(
	for _ in $(seq "$((DURATION + 5))"); do
		now=$EPOCHREALTIME
		curl -s --max-time 1 "$URL/metrics" | awk -v t="$now" '
			/^wirelog_store_checkpoint_seconds_count / || /^wirelog_store_checkpoint_seconds_sum / ||
			/^wirelog_store_rollup_compactions_total / ||
			/^wirelog_store_segment_compactions_total / || /^wirelog_store_segments_written_total / ||
			/^go_gc_duration_seconds_count / || /^process_cpu_seconds_total / { printf "%s %s %s\n", t, $1, $2 }'
		read -r load1 _ </proc/loadavg && echo "$now loadavg1 $load1"
		sleep 1
	done
) >>"$OUT/metrics.txt" 2>/dev/null &
MP=$!
# q NAME PATH ARGS... : one timed GET; a non-200 answer fails the run.
q() {
	local name=$1 path=$2
	shift 2
	local out t0=$EPOCHREALTIME
	out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --get "$URL$path" "$@")
	if [ "${out% *}" != 200 ]; then
		echo "$name: HTTP ${out% *}" >&2
		curl -s --get "$URL$path" "$@" | head -c 500 >&2
		exit 1
	fi
	echo "${out#* }" >>"$OUT/latencies-$name.txt"
	echo "$t0 $name ${out#* }" >>"$OUT/timeline.txt"
}
end=$((SECONDS + DURATION))
rounds=0
while [ $SECONDS -lt $end ]; do
	q stats /api/v1/stats
	q rollups-1h-service-level /api/v1/rollups --data-urlencode from=now-1h --data-urlencode to=now \
		--data-urlencode step=10s --data-urlencode by=service,level
	q search-service-1h /api/v1/logs/search --data-urlencode "service=$SERVICE" --data-urlencode from=now-1h \
		--data-urlencode to=now --data-urlencode limit=100
	q search-text-24h /api/v1/logs/search --data-urlencode "q=$TEXT" --data-urlencode from=now-24h \
		--data-urlencode to=now --data-urlencode limit=100
	rounds=$((rounds + 1))
	if [ $((rounds % 10)) = 0 ]; then
		echo "store-scale: $rounds rounds of 4 queries, $((end - SECONDS)) s left" >&2
	fi
done
uptime >>"$OUT/host.txt"
kill -TERM "$MP" 2>/dev/null || true
MP=""
curl -s "$URL/metrics" | grep -E '^wirelog_store_query_seconds_(sum|count)' >"$OUT/store-query-seconds.txt" || true
wait "$TAIL" 2>/dev/null || true
read -r tail_events tail_gaps <"$OUT/tail.txt" || true
echo "live tail beside the queries: ${tail_events:-?} events received, ${tail_gaps:-?} gap/dropped notices"
echo "$rounds rounds of 4 queries in ${DURATION}s against $DIR ($FORMAT), ingest offered ${RATE}/s"
for f in "$OUT"/latencies-*.txt; do
	n=$(basename "$f" .txt)
	sort -n "$f" | awk -v name="${n#latencies-}" '{a[NR]=$1} END {
		i50 = int(NR*0.50 + 0.999); i99 = int(NR*0.99 + 0.999); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1
		printf "%-26s n=%-4d p50 %7.1f ms  p99 %7.1f ms\n", name, NR, a[i50]*1000, a[i99]*1000 }'
done
if [ -n "$LG" ]; then
	wait "$LG" || true
	LG=""
	echo "loadgen: $OUT/report.json; soak samples: $OUT/soak.csv; summary:"
	tail -n 15 "$OUT/loadgen.log"
fi
cat "$OUT/host.txt"
python3 "$(dirname "$0")/store-scale-timeline.py" "$OUT" || true
