#!/usr/bin/env bash
# Runs deploy/check (the Helm chart's tests: render, lint, strict decoding, invariants,
# server-side dry-run on an in-process kube-apiserver). Its test binary links
# k8s.io/kubernetes and takes ~8 minutes to build cold on 2 cores, so it is kept under
# ${WIRELOG_CACHE:-~/.cache/wirelog}/deploy-check, keyed by the hash of the module's sources:
# a warm run only executes it.
#
# --build-only builds (or finds) that binary and exits: `make test` runs it beside the Go
# tests at idle CPU priority, so a cold run builds it in the time the tests leave the cores
# idle; the run that executes it waits on the same lock for a build under way.
set -euo pipefail
build_only=0
if [[ ${1:-} == --build-only ]]; then build_only=1; shift; fi
cd "$(dirname "$0")/../deploy/check"
cache="${WIRELOG_CACHE:-$HOME/.cache/wirelog}/deploy-check"
mkdir -p "$cache"
key=$(cat go.mod go.sum *.go | sha256sum | cut -c1-16)
bin="$cache/check-$key.test"
exec 9>"$cache/.build.lock"
flock 9
if [[ ! -x "$bin" ]]; then
  echo "== building the chart checks (k8s.io/kubernetes test server; ~8 min cold on 2 cores) into $bin"
  start=$SECONDS
  go test -c -o "$bin.tmp" .
  mv "$bin.tmp" "$bin"
  echo "== built in $((SECONDS - start))s"
  # Keep the newest three builds.
  ls -t "$cache"/check-*.test 2>/dev/null | tail -n +4 | xargs -r rm -f
fi
flock -u 9
if ((build_only)); then exit 0; fi
log="${CHART_CHECK_LOG:-../../bin/chart-check.log}"
mkdir -p "$(dirname "$log")"
set +e
"$bin" -test.count=1 -test.v -test.timeout=20m "$@" 2>&1 | tee "$log" | grep -E '^(ok|PASS|FAIL|--- FAIL|--- SKIP|panic:)|^\s+\S+_test\.go:[0-9]+:'
rc=${PIPESTATUS[0]}
set -e
if [[ $rc -ne 0 ]]; then echo "chart checks failed (full output: $log)"; exit 1; fi
if grep -q -e '--- SKIP' "$log"; then echo "chart checks were skipped: a prerequisite is missing"; exit 1; fi
echo "chart checks passed (full output: $log)"
