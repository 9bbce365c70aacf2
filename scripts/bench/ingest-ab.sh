#!/usr/bin/env bash
# ingest-ab.sh — issue 12's end-to-end scenarios as an interleaved A/B: each
# round runs every variant once, back to back (a fresh `wirelog run` and
# `wirelog loadgen --soak` through scripts/soak.sh), so a neighbour's build
# hurts them alike. Prints one line per run and the median per variant of:
# acknowledged/s, stored/s, ack p50/p99 (ms), freshness p99 (s), peak RSS (MB),
# CPU µs of the whole `wirelog run` per acknowledged and per stored event
# (process_cpu_seconds_total deltas, first to last sample), load average.
#
# Usage: scripts/bench/ingest-ab.sh SCENARIO ROUNDS 'name=[VAR=value ...] BINARY [extra run flags]' ...
#   sustained  as fast as possible, 8 connections, batches of 500, 120 s (issue 12's run)
#   small      as fast as possible, 4 connections, batches of 100, 30 s
#   p99        100,000 events/s offered, 8 connections, batches of 100, 60 s
# Environment: AB_DURATION and AB_RATE (offered events/s, 0 = as fast as
# possible) override the scenario's; AB_OUT [/tmp/ingest-ab], AB_FLAGS
# [--store-format parquet] (run flags common to every variant).
# Example: scripts/bench/ingest-ab.sh sustained 2 'main=/tmp/wl-main' 'new=bin/wirelog' \
#            'new-json=bin/wirelog --ingest-record-format json' 'gogc200=GOGC=200 bin/wirelog'
set -euo pipefail
cd "$(dirname "$0")/../.."
scenario=$1 rounds=$2
shift 2
case $scenario in
sustained) rate=0 conc=8 batch=500 dur=120s ;;
small) rate=0 conc=4 batch=100 dur=30s ;;
p99) rate=100000 conc=8 batch=100 dur=60s ;;
*) echo "unknown scenario $scenario (sustained, small, p99)" >&2; exit 2 ;;
esac
dur=${AB_DURATION:-$dur}
rate=${AB_RATE:-$rate}
out=${AB_OUT:-/tmp/ingest-ab}/$scenario
mkdir -p "$out"
runs=$out/runs.tsv
: >"$runs"
echo "# $(date -u +%FT%TZ) scenario=$scenario rate=$rate conc=$conc batch=$batch dur=$dur nproc=$(nproc) cpu=\"$(lscpu | sed -n 's/^Model name: *//p')\" common flags: ${AB_FLAGS---store-format parquet}"
printf "# variant round acked/s stored/s ack-p50-ms ack-p99-ms fresh-p99-s rss-MB cpu-us/acked cpu-us/stored load-start load-end\n"
for r in $(seq "$rounds"); do
	for v in "$@"; do
		name=${v%%=*}
		read -r -a words <<<"${v#*=}"
		env=() i=0
		while [[ ${words[i]} == *=* ]]; do env+=("${words[i]}"); i=$((i + 1)); done
		bin=${words[i]} flags="${words[*]:i+1}"
		dir=$out/$name-$r
		rm -rf "$dir"
		load0=$(cut -d' ' -f1 /proc/loadavg)
		SOAK_RATE=$rate SOAK_DURATION=$dur SOAK_CONCURRENCY=$conc SOAK_BATCH=$batch SOAK_OUT=$dir WIRELOG=$bin SOAK_RUN_ENV="${env[*]}" \
			SOAK_RUN_FLAGS="${AB_FLAGS---store-format parquet} $flags" bash scripts/soak.sh >/dev/null 2>&1 || true
		load1=$(cut -d' ' -f1 /proc/loadavg)
		s=$dir/summary.txt
		acked=$(sed -n 's/^  acknowledged .*(\([0-9.]*\)\/s)/\1/p' "$s")
		stored=$(sed -n 's/^  stored .*(\([0-9.]*\)\/s mean.*/\1/p' "$s")
		p50=$(sed -n 's/^  ack latency *p50 \([0-9.]*\) ms, p99 \([0-9.]*\) ms.*/\1/p' "$s")
		p99=$(sed -n 's/^  ack latency *p50 \([0-9.]*\) ms, p99 \([0-9.]*\) ms.*/\2/p' "$s")
		fresh=$(sed -n 's/^  freshness p99 *\([^ ]*\)s over.*/\1/p' "$s")
		rss=$(sed -n 's/^  RSS *peak \([0-9.]*\) MB.*/\1/p' "$s")
		# elapsed_s,acked_total,stored_total,stored_per_s,backlog,rss_mb,cpu_s,…
		cpu=$(awk -F, 'NR==2{a0=$2;s0=$3;c0=$7} NR>2{a=$2;s=$3;c=$7} END{printf "%.2f %.2f", (a>a0)?(c-c0)/(a-a0)*1e6:0, (s>s0)?(c-c0)/(s-s0)*1e6:0}' "$dir/soak.csv")
		echo "$name $r ${acked:-0} ${stored:-0} ${p50:-0} ${p99:-0} ${fresh:-0} ${rss:-0} $cpu $load0 $load1" | tee -a "$runs"
	done
done
echo "# medians over $rounds rounds"
awk '
function median(s,   a, n, i, j, t) {
	n = split(s, a, " ")
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } for (i = 3; i <= NF; i++) v[$1, i] = v[$1, i] " " $i }
END { for (k = 1; k <= n; k++) { printf "%s", order[k]; for (i = 3; i <= 12; i++) printf " %s", median(v[order[k], i]); printf "\n" } }' "$runs"
