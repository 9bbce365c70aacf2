#!/usr/bin/env bash
# Debian packages the tests use. Idempotent: installs only what is missing.
set -euo pipefail
pkgs=(
  build-essential   # cgo for DuckDB
  util-linux        # logger(1), a syslog client no one here wrote
  iproute2 iptables # netlab and network tests
)
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
