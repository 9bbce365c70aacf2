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
rm -f "$OUT"/latencies-*.txt
"$BIN" run --http "127.0.0.1:$PORT" --data "$DIR" --store-format "$FORMAT" --syslog-udp "" --syslog-tcp "" >"$OUT/run.log" 2>&1 &
PID=$!
LG=""
cleanup() {
	[ -n "$LG" ] && kill -TERM "$LG" 2>/dev/null
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
# q NAME PATH ARGS... : one timed GET; a non-200 answer fails the run.
q() {
	local name=$1 path=$2
	shift 2
	local out
	out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --get "$URL$path" "$@")
	if [ "${out% *}" != 200 ]; then
		echo "$name: HTTP ${out% *}" >&2
		curl -s --get "$URL$path" "$@" | head -c 500 >&2
		exit 1
	fi
	echo "${out#* }" >>"$OUT/latencies-$name.txt"
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
