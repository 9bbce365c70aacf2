#!/usr/bin/env bash
# freshness-probe.sh — ingest → queryable latency as a user sees it: post one
# marked event to a running wirelog, then search for it until it is returned;
# repeat every PROBE_INTERVAL for PROBE_DURATION and print p50/p99/max. Run it
# beside a load (scripts/soak.sh) to measure freshness under that load; the
# processor's wirelog_processor_ingest_to_stored_seconds stops at the store's
# Write, which with --store-format parquet is before the segment is queryable.
#
# Usage: scripts/freshness-probe.sh URL   (e.g. http://127.0.0.1:28650)
# Environment: PROBE_DURATION [60] seconds, PROBE_INTERVAL [0.5] seconds,
#              PROBE_TIMEOUT [30] seconds a probe waits before it counts as missing.
set -euo pipefail
URL=${1:?usage: freshness-probe.sh URL}
DURATION=${PROBE_DURATION:-60}
INTERVAL=${PROBE_INTERVAL:-0.5}
TIMEOUT=${PROBE_TIMEOUT:-30}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
run=$(date +%s)-$$
end=$(($(date +%s) + DURATION))
lat=() missing=0 i=0
while (($(date +%s) < end)); do
	i=$((i + 1))
	id="probe-$run-$i"
	from=$(date -u -d '-5 seconds' +%Y-%m-%dT%H:%M:%SZ)
	t0=$(now_ms)
	code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/x-ndjson' \
		--data-binary "{\"service\":\"freshness-probe\",\"message\":\"$id\",\"event_id\":\"$id\"}" "$URL/api/v1/logs")
	if [[ $code != 202 ]]; then
		echo "probe $i: ingest answered $code" >&2
		sleep "$INTERVAL"
		continue
	fi
	found=0
	while (($(now_ms) - t0 < TIMEOUT * 1000)); do
		if curl -s "$URL/api/v1/logs/search?service=freshness-probe&from=$from&limit=100" | grep -q "\"$id\""; then
			found=1
			break
		fi
		sleep 0.02
	done
	if ((found)); then lat+=($(($(now_ms) - t0))); else missing=$((missing + 1)); fi
	sleep "$INTERVAL"
done
if ((${#lat[@]} == 0)); then
	echo "freshness probe: no probe was found ($missing missing)"
	exit 1
fi
printf '%s\n' "${lat[@]}" | sort -n | awk -v miss="$missing" '{ v[NR] = $1 } END {
	p50 = v[int(NR * 0.5 + 0.5) > 0 ? int(NR * 0.5 + 0.5) : 1]; p99 = v[int(NR * 0.99 + 0.99)]
	printf "freshness probe (ingest → returned by search): %d probes, p50 %d ms, p99 %d ms, max %d ms, %d missing after the timeout\n", NR, p50, p99, v[NR], miss
}'
