#!/usr/bin/env bash
# store-memory.sh — where the memory of a `wirelog run` goes under a fixed
# offered rate: starts a fresh run with --pprof and GODEBUG=gctrace=1 (GC
# lines in run.log), offers RATE events/s for DURATION (8 connections,
# batches of 500: issue 12's sustained shape) and every EVERY seconds writes
# one line of parts.tsv (MiB):
#   t rss hwm   file-backed: bin (the binary's pages) lib (shared libraries)
#   anon (all anonymous)   go (runtime: sys - released)   go_heap (live + garbage
#   not yet collected: heap_alloc)   je (DuckDB's jemalloc resident)   duck
#   (duckdb_memory(), inside je)   glibc (malloc arenas + mmapped chunks)
#   glibc_free (free inside the arenas)   seg (mapped segment buffers)
#   other (anon - go - je - glibc - seg: thread stacks, the rest)
# and every 30 s a Go heap profile (heap-T.pb.gz: `go tool pprof -top
# -sample_index=inuse_space`), /proc/PID/smaps (smaps-T.txt) and the raw
# /debug/store/memory (duck.txt); /metrics at the end. The peak line (the
# sample with the largest RSS) is printed last. Bounded by DURATION; stops
# what it started.
#
# Usage: scripts/bench/store-memory.sh OUT RATE DURATION [extra run flags]
#   e.g. scripts/bench/store-memory.sh /tmp/mem 300000 120s --store-memory 64MB
# Environment: WIRELOG [bin/wirelog], PORT [28751], EVERY [1] (seconds),
# RUN_ENV (environment for `wirelog run` only, e.g. "GOGC=50 MALLOC_ARENA_MAX=2").
set -u
OUT=$1; RATE=$2; DUR=$3; shift 3
BIN=${WIRELOG:-bin/wirelog}
PORT=${PORT:-28751}
EVERY=${EVERY:-1}
mkdir -p "$OUT"
DATA=$(mktemp -d /tmp/store-memory-XXXXXX)
# shellcheck disable=SC2086
env GODEBUG=gctrace=1 ${RUN_ENV:-} "$BIN" run --http "127.0.0.1:$PORT" --data "$DATA" --syslog-udp "" --syslog-tcp "" --pprof "$@" >"$OUT/run.log" 2>&1 &
PID=$!
cleanup() { kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
{ date -u; nproc; lscpu | grep 'Model name'; uptime; echo "RUN_ENV=${RUN_ENV:-} flags: $*"; } >"$OUT/uptime.txt"
EXE=$(readlink "/proc/$PID/exe")
"$BIN" loadgen --target "http://127.0.0.1:$PORT" --rate "$RATE" --duration "$DUR" --concurrency 8 --batch 500 \
	--json --quiet >"$OUT/report.json" 2>"$OUT/loadgen.err" &
LG=$!
printf "t\trss\thwm\tbin\tlib\tanon\tgo\tgo_heap\tje\tduck\tglibc\tglibc_free\tseg\tother\n" >"$OUT/parts.tsv"
t0=$(date +%s.%N)
i=0
while kill -0 "$LG" 2>/dev/null; do
	sleep "$EVERY"
	i=$((i + EVERY))
	t=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
	# File-backed RSS of the binary and of everything else, anonymous RSS, in kB.
	files=$(awk -v exe="$EXE" '
		/^[0-9a-f]+-[0-9a-f]+ / { path = (NF >= 6) ? $6 : "" }
		/^Rss:/ { if (path == exe) bin += $2; else if (path ~ /^\//) lib += $2 }
		/^Anonymous:/ { anon += $2 }
		END { printf "%d %d %d", bin, lib, anon }' "/proc/$PID/smaps" 2>/dev/null)
	read -r bin lib anon <<<"$files"
	rss=$(awk '/^VmRSS/{print $2}' "/proc/$PID/status")
	hwm=$(awk '/^VmHWM/{print $2}' "/proc/$PID/status")
	mem=$(curl -s "http://127.0.0.1:$PORT/debug/store/memory")
	seg=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^wirelog_store_segment_buffer_bytes /{print $2}')
	echo "t=$t $mem" >>"$OUT/duck.txt"
	jq -r --arg t "$t" --arg rss "$rss" --arg hwm "$hwm" --arg bin "$bin" --arg lib "$lib" --arg anon "$anon" --arg seg "${seg:-0}" '
		def mib: . / 1048576 | . * 10 | round / 10;
		(.go.sys_bytes - .go.heap_released_bytes) as $go
		| ((.c.je_resident_bytes // 0)) as $je
		| ((.c.malloc_arena_bytes // 0) + (.c.malloc_mmap_bytes // 0)) as $glibc
		| ($seg | tonumber) as $s
		| [$t, ($rss|tonumber*1024|mib), ($hwm|tonumber*1024|mib), ($bin|tonumber*1024|mib), ($lib|tonumber*1024|mib),
		   ($anon|tonumber*1024|mib), ($go|mib), (.go.heap_alloc_bytes|mib), ($je|mib), (.duckdb.memory_usage_bytes|mib),
		   ($glibc|mib), ((.c.malloc_free_bytes // 0)|mib), ($s|mib), (($anon|tonumber*1024) - $go - $je - $glibc - $s | mib)]
		| @tsv' <<<"$mem" >>"$OUT/parts.tsv" 2>/dev/null
	if [ $((i % 30)) = 0 ]; then
		curl -s "http://127.0.0.1:$PORT/debug/pprof/heap" >"$OUT/heap-$i.pb.gz"
		cp "/proc/$PID/smaps" "$OUT/smaps-$i.txt"
	fi
done
curl -s "http://127.0.0.1:$PORT/metrics" >"$OUT/metrics.txt"
{ uptime; du -sh "$DATA"; } >>"$OUT/uptime.txt"
echo "loadgen: $(jq -r '"\(.events_per_second | floor) events/s acknowledged"' "$OUT/report.json" 2>/dev/null)"
head -1 "$OUT/parts.tsv"
sort -t$'\t' -k2,2nr <(tail -n +2 "$OUT/parts.tsv") | head -1
