#!/usr/bin/env bash
# Dashboard (web/): Debian's Chromium for the browser tests (Playwright drives
# /usr/bin/chromium; it never downloads a browser of its own), and the npm
# packages from web/package-lock.json (npm ci, only when the lock changed).
# Node.js >= 20.19 comes with the machine (Vite 8 needs it). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."

pkgs=(chromium fonts-dejavu-core)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then echo "need root to apt-get install ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
test -x /usr/bin/chromium || { echo "/usr/bin/chromium missing after installing chromium" >&2; exit 1; }

command -v node >/dev/null || { echo "node is missing: the dashboard needs Node.js >= 20.19 with npm" >&2; exit 1; }
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || { echo "Node.js $(node --version) is too old: Vite 8 needs >= 20.19" >&2; exit 1; }

# npm ci from the lockfile when node_modules is missing or older than it.
# PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core downloads nothing anyway;
# this keeps any future @playwright/test from fetching a browser.
if [[ ! -f web/node_modules/.package-lock.json || web/package-lock.json -nt web/node_modules/.package-lock.json ]]; then
  (cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
