#!/usr/bin/env bash
# Jaeger all-in-one (v2, OTLP receiver + query API) for the tracing tests
# (internal/telemetry/e2e). Built from source as a Go tool in its own module,
# tools/jaeger, so its very large dependency graph stays out of wirelog's go.mod.
# The binary is cached under $WIRELOG_CACHE/jaeger-$JAEGER_VERSION/jaeger;
# idempotent: builds only when that file is missing.
# Cold build on a 2-core machine: see docs/BENCHMARKS.md (Jaeger tool build).
set -euo pipefail
cd "$(dirname "$0")/../.."
JAEGER_VERSION=$(awk '$1=="github.com/jaegertracing/jaeger"{print $2}' tools/jaeger/go.mod)
WIRELOG_CACHE=${WIRELOG_CACHE:-$HOME/.cache/wirelog}
out=$WIRELOG_CACHE/jaeger-$JAEGER_VERSION/jaeger
if [[ -x $out ]]; then exit 0; fi
mkdir -p "$(dirname "$out")"
echo "building jaeger $JAEGER_VERSION into $out (once; several minutes cold)"
start=$SECONDS
(cd tools/jaeger && CGO_ENABLED=0 go build -trimpath -o "$out.tmp" github.com/jaegertracing/jaeger/cmd/jaeger)
mv "$out.tmp" "$out"
echo "jaeger built in $((SECONDS - start))s"
