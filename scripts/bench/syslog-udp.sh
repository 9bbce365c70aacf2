#!/usr/bin/env bash
# UDP syslog receive against a bare recvmmsg receiver and rsyslog (imudp →
# omfile), interleaved: each round runs every receiver once, back to back,
# so a neighbour's build hurts them alike. Prints every run and the median
# per payload and receiver of rx/s, CPU ns per stored line, lost % and
# kernel drops, with the load average before and after; csw/line is the receiver's context
# switches per stored line (every thread), lines/read the datagrams per recvmmsg that returned
# some, tail-ms the time from the sender's end to the last line stored.
# Usage: scripts/bench/syslog-udp.sh [rounds=5] [receivers regexp] [sizes=64 256 1024] [bench=UDPReceive]
# (receiver names: udpReceivers in internal/ingest/syslog/bench_test.go, e.g. wirelog-disklog-zstd,
# wirelog-disklog-none-blocking; log-ratio is the log's compression ratio.)
# (bench=UDPPaced offers 100,000 datagrams/s instead of as fast as the sender can: CPU per line
# at equal load.)
# Needs: rsyslog (scripts/deps/40-syslog.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
receivers=${2:-'bare-recvmmsg|wirelog-disklog|wirelog-disklog-json|rsyslog'}
sizes=${3:-"64 256 1024"}
bench=${4:-UDPReceive}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/syslog.test" ./internal/ingest/syslog/
echo "# $(date -u +%FT%TZ) nproc=$(nproc) cpu=\"$(lscpu | sed -n 's/^Model name: *//p')\" load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
	for size in $sizes; do
		(cd "$tmp" && ./syslog.test -test.run '^$' -test.bench "${bench}/${size}B/^(${receivers})\$" \
			-test.benchtime 300000x -test.count 1) | grep '^Benchmark' | tee -a "$tmp/runs"
	done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# medians over $rounds rounds: payload receiver rx/s cpu-ns/line lost-% kernel-drops log-ratio csw/line lines/read tail-ms"
awk '
function median(s,   a, n, i, j, t) {
	n = split(s, a, " ")
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	split($1, p, "/"); sub(/-[0-9]+$/, "", p[3]); k = p[2] " " p[3]
	if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
	for (i = 3; i < NF; i += 2) v[k, $(i + 1)] = v[k, $(i + 1)] " " $i
}
END {
	for (i = 1; i <= nk; i++) {
		k = order[i]
		d = ((k, "kernel-drops") in v) ? median(v[k, "kernel-drops"]) : "n/a"
		r = ((k, "log-ratio") in v) ? sprintf("%.2f", median(v[k, "log-ratio"])) : "n/a"
		c = ((k, "csw/rx") in v) ? sprintf("%.3f", median(v[k, "csw/rx"])) : "n/a"
		rd = ((k, "rx/read") in v) ? sprintf("%.1f", median(v[k, "rx/read"])) : "n/a"
		tl = ((k, "tail-ms") in v) ? sprintf("%.0f", median(v[k, "tail-ms"])) : "n/a"
		printf "%s %.0f %.0f %.2f %s %s %s %s %s\n", k, median(v[k, "rx/s"]), median(v[k, "cpu-ns/rx"]), median(v[k, "lost-%"]), d, r, c, rd, tl
	}
}' "$tmp/runs" | sort -n -s -k1,1
