#!/usr/bin/env bash
# VictoriaLogs (Apache-2.0) for the scale-out store tests and `make vl-up`:
# built once from the Go module proxy into the cache with `go install`, no
# downloaded binary. Idempotent: skipped when the binary is already there.
set -euo pipefail
exec "$(dirname "$0")/../vl.sh" fetch
