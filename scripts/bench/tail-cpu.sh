#!/usr/bin/env bash
# Live tail cost (docs/BENCHMARKS.md, "Dashboard, second round"): CPU of one
# `wirelog run` per acknowledged event at a fixed offered rate, without and
# with one live tail open (curl reading every event), rounds interleaved.
#
#   scripts/bench/tail-cpu.sh [ROUNDS] [RATE] [DURATION]     (defaults 3 30000 15s)
#
# Starts its own `wirelog run` on 127.0.0.1:18113 with data in a temp dir and
# stops it (by PID) at the end. Bounded: ROUNDS × 2 runs of DURATION each.
set -euo pipefail
ROUNDS=${1:-3}; RATE=${2:-30000}; DUR=${3:-15s}
cd "$(dirname "$0")/../.."
D=$(mktemp -d)
BIN=$D/wirelog
go build -o "$BIN" ./cmd/wirelog
U=http://127.0.0.1:18113
"$BIN" run --http 127.0.0.1:18113 --data "$D/data" --syslog-udp "" --syslog-tcp "" > "$D/node.log" 2>&1 &
NODE=$!
trap 'kill $NODE 2>/dev/null; wait $NODE 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 50); do curl -sf $U/readyz >/dev/null && break; sleep 0.5; done
TCK=$(getconf CLK_TCK)
cpu() { awk -v t="$TCK" '{printf "%.3f", ($14+$15)/t}' /proc/$NODE/stat; }
echo "nproc $(nproc), $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%FT%TZ), $(uptime)"
for round in $(seq "$ROUNDS"); do
  for mode in none tail; do
    sleep 3
    CURL=""
    if [ $mode = tail ]; then curl -sN $U/api/v1/tail > /dev/null & CURL=$!; sleep 1; fi
    c0=$(cpu)
    out=$("$BIN" loadgen --target $U --rate "$RATE" --duration "$DUR" --concurrency 8 --batch 500 --quiet --json)
    sleep 3 # the processor stores the end of the run
    c1=$(cpu)
    [ -n "$CURL" ] && kill "$CURL" 2>/dev/null
    acked=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events_acked"])')
    echo "round=$round tail=$mode acked=$acked cpu_s=$(python3 -c "print(round($c1-$c0,2))") cpu_us_per_acked=$(python3 -c "print(round(($c1-$c0)*1e6/max(1,$acked),2))") load=$(cut -d' ' -f1 /proc/loadavg)"
  done
done
curl -s $U/metrics | grep -E "^wirelog_tail_events" || true
