#!/usr/bin/env bash
# soak.sh — start a fresh `wirelog run` on loopback, offer it a fixed rate for a
# fixed time with `wirelog loadgen --soak`, stop it, and leave the samples, the
# chart and the summary in $SOAK_OUT. Exits non-zero when the verdict fails.
#
# Environment (defaults in brackets):
#   SOAK_RATE        [60000]  offered events/s
#   SOAK_DURATION    [15m]
#   SOAK_CONCURRENCY [4]      loadgen connections
#   SOAK_BATCH       [200]    events per request
#   SOAK_PORT        [28650]
#   SOAK_OUT         [bin/soak]  soak.csv, soak.html, summary.txt (progress every 10 s, then the
#                    summary and verdict), report.json (loadgen), run.log, uptime.txt
#   SOAK_RUN_FLAGS   []       extra flags for `wirelog run` (e.g. --kafka 127.0.0.1:9092 --kafka-lag-interval 1s:
#                             on Kafka the summary's backlog is the consumer lag, in records)
#   SOAK_CPU_PIDS    []       more processes (the Kafka broker) whose CPU seconds during the load go to
#                             $SOAK_OUT/cpu.txt: the summary's CPU per event is wirelog's alone
#   SOAK_RUN_ENV     []       environment for `wirelog run` only (e.g. GOGC=200 GOMAXPROCS=4)
#   WIRELOG          [bin/wirelog]
set -euo pipefail
RATE=${SOAK_RATE:-60000}
DURATION=${SOAK_DURATION:-15m}
CONC=${SOAK_CONCURRENCY:-4}
BATCH=${SOAK_BATCH:-200}
PORT=${SOAK_PORT:-28650}
OUT=${SOAK_OUT:-bin/soak}
BIN=${WIRELOG:-bin/wirelog}
mkdir -p "$OUT"
DATA=$(mktemp -d /tmp/wirelog-soak-XXXXXX)
# shellcheck disable=SC2086
env ${SOAK_RUN_ENV:-} "$BIN" run --http "127.0.0.1:$PORT" --data "$DATA" --syslog-udp "" --syslog-tcp "" ${SOAK_RUN_FLAGS:-} >"$OUT/run.log" 2>&1 &
PID=$!
cleanup() { kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
{ date -u; nproc; lscpu | grep 'Model name'; uptime; } >"$OUT/uptime.txt"
# CPU seconds (user+system) of SOAK_CPU_PIDS so far.
cpu_seconds() {
	local p t=0
	for p in ${SOAK_CPU_PIDS:-}; do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	awk -v t="$t" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}
cpu0=$(cpu_seconds)
rc=0
"$BIN" loadgen --target "http://127.0.0.1:$PORT" --rate "$RATE" --duration "$DURATION" \
	--concurrency "$CONC" --batch "$BATCH" --json --quiet --soak \
	--soak-csv "$OUT/soak.csv" --soak-html "$OUT/soak.html" >"$OUT/report.json" 2> >(tee "$OUT/summary.txt" >&2) || rc=$?
uptime >>"$OUT/uptime.txt"
if [[ -n ${SOAK_CPU_PIDS:-} ]]; then
	echo "CPU seconds of pids ${SOAK_CPU_PIDS} during the load: $(awk -v a="$cpu0" -v b="$(cpu_seconds)" 'BEGIN { printf "%.2f", b - a }')" | tee "$OUT/cpu.txt"
fi
du -sh "$DATA" >>"$OUT/uptime.txt"
echo "soak output in $OUT (chart: $OUT/soak.html)"
exit $rc
