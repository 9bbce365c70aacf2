#!/usr/bin/env bash
# Shipper endpoints vs native NDJSON (docs/bench/shippers.md, run D): the same
# loadgen events as ndjson, es-bulk, loki-json and loki-proto against one
# `wirelog run`, formats interleaved, the processor paused during each run and
# drained between runs, printing rate and server/client CPU per event.
#
#   scripts/bench/shippers.sh [ROUNDS] [DURATION]     (defaults 5 6s)
#
# Starts its own `wirelog run` on 127.0.0.1:18932 with data in a temp dir and
# stops it (by PID) at the end. Bounded: ROUNDS × 4 runs of DURATION each.
set -euo pipefail
ROUNDS=${1:-5}; DUR=${2:-6s}
cd "$(dirname "$0")/../.."
BIN=$(mktemp -d)/wirelog
go build -o "$BIN" ./cmd/wirelog
DATA=$(mktemp -d)
URL=http://127.0.0.1:18932
"$BIN" run --http 127.0.0.1:18932 --data "$DATA" --syslog-udp "" --syslog-tcp "" 2>"$DATA/run.log" &
SPID=$!
trap 'kill $SPID 2>/dev/null; wait $SPID 2>/dev/null; rm -rf "$DATA" "$(dirname "$BIN")"' EXIT
for _ in $(seq 1 100); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.2; done
TCK=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$SPID/stat"; }
stored() { curl -s "$URL/api/v1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"])'; }
echo "nproc $(nproc), $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%FT%TZ), $(uptime | sed 's/.*load/load/')"
"$BIN" loadgen --target "$URL" --duration 3s --quiet --json >/dev/null   # warm-up
total=0
for _ in $(seq 1 100); do total=$(stored); [ "$total" -gt 0 ] && break; sleep 0.2; done
for r in $(seq 1 "$ROUNDS"); do
  for f in ndjson es-bulk loki-json loki-proto; do
    curl -sf -XPOST -H "X-Wirelog-Request: 1" "$URL/api/v1/processor/pause"
    c0=$(cpu)
    /usr/bin/time -f "%U %S" -o "$DATA/time" "$BIN" loadgen --target "$URL" --format "$f" --duration "$DUR" --quiet --json > "$DATA/$f-$r.json"
    c1=$(cpu)
    curl -sf -XPOST -H "X-Wirelog-Request: 1" "$URL/api/v1/processor/resume"
    total=$((total + $(python3 -c "import json; print(json.load(open('$DATA/$f-$r.json'))['events_acked'])")))
    for _ in $(seq 1 600); do [ "$(stored)" -ge "$total" ] && break; sleep 0.5; done
    python3 - "$f" "$r" "$c0" "$c1" "$TCK" "$DATA" <<'PY'
import json, sys
f, r, c0, c1, tck, data = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
d = json.load(open(f"{data}/{f}-{r}.json"))
u, s = map(float, open(f"{data}/time").read().split()[-2:])
n = max(d["events_acked"], 1)
print(f"{r} {f:10s} {d['events_per_second']:9.0f} ev/s  server {(c1-c0)/tck*1e6/n:5.2f}  client {(u+s)*1e6/n:5.2f} us CPU/event  "
      f"p50 {d['latency_ms']['p50']:.1f} p99 {d['latency_ms']['p99']:.1f}  errors {d['errors']}")
PY
  done
done
