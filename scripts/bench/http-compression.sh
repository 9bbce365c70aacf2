#!/usr/bin/env bash
# HTTP ingest CPU per event with and without the embedded log's batch
# compression (docs/bench/disklog.md, "Batch compression"): one fresh
# `wirelog run --log-compression C` per codec and round, processor paused
# (so the CPU counted is ingest: HTTP, decode, encode, compress, append,
# fsync), `wirelog loadgen` at a fixed offered rate; rounds interleave the
# codecs so a neighbour's load hurts them alike.
#
#   scripts/bench/http-compression.sh [ROUNDS] [RATE] [DURATION] [CODECS]   (defaults 3 50000 10s "none lz4 zstd")
#
# Each node listens on 127.0.0.1:18114 with data in a temp dir and is stopped
# by PID after its run. Bounded: ROUNDS × codecs runs of DURATION each.
set -euo pipefail
ROUNDS=${1:-3}; RATE=${2:-50000}; DUR=${3:-10s}; CODECS=${4:-"none lz4 zstd"}
cd "$(dirname "$0")/../.."
D=$(mktemp -d)
BIN=$D/wirelog
go build -o "$BIN" ./cmd/wirelog
U=http://127.0.0.1:18114
NODE=""
trap '[ -n "$NODE" ] && kill $NODE 2>/dev/null; wait 2>/dev/null; rm -rf "$D"' EXIT
TCK=$(getconf CLK_TCK)
cpu() { awk -v t="$TCK" '{printf "%.3f", ($14+$15)/t}' /proc/$NODE/stat; }
metric() { curl -s $U/metrics | awk -v m="$1" '$1 ~ "^"m"({|$)" {s += $2} END {printf "%.0f", s}'; }
echo "# nproc $(nproc), $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%FT%TZ), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
	for codec in $CODECS; do
		rm -rf "$D/data"
		"$BIN" run --http 127.0.0.1:18114 --data "$D/data" --syslog-udp "" --syslog-tcp "" --log-compression "$codec" > "$D/node.log" 2>&1 &
		NODE=$!
		for _ in $(seq 60); do curl -sf $U/readyz >/dev/null && break; sleep 0.5; done
		curl -sf -XPOST -H "X-Wirelog-Request: 1" $U/api/v1/processor/pause >/dev/null
		sleep 1
		c0=$(cpu)
		out=$("$BIN" loadgen --target $U --rate "$RATE" --duration "$DUR" --concurrency 8 --batch 500 --quiet --json)
		c1=$(cpu)
		stored=$(metric wirelog_disklog_appended_bytes_total)
		raw=$(metric wirelog_disklog_appended_uncompressed_bytes_total)
		kill "$NODE"; wait "$NODE" 2>/dev/null || true; NODE=""
		acked=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events_acked"])')
		echo "round=$round codec=$codec acked=$acked cpu_us_per_event=$(python3 -c "print(round(($c1-$c0)*1e6/max(1,$acked),2))") log_bytes_per_event=$(python3 -c "print(round($stored/max(1,$acked),1))") ratio=$(python3 -c "print(round($raw/max(1,$stored),2))") load=$(cut -d' ' -f1 /proc/loadavg)"
	done
done | tee "$D/runs"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# medians: codec cpu-us/event log-bytes/event ratio"
python3 - "$D/runs" <<'EOF'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = dict(kv.split("=", 1) for kv in line.split())
    rows.setdefault(f["codec"], []).append(f)
for codec, rs in rows.items():
    med = lambda k: statistics.median(float(r[k]) for r in rs)
    print(codec, med("cpu_us_per_event"), med("log_bytes_per_event"), med("ratio"))
EOF
