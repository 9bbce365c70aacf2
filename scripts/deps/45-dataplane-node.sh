#!/usr/bin/env bash
# Debian packages the node-collector tests use (internal/dataplane/{sriov,…},
# sysfs/sysfstest): promtool (package prometheus) lints the exposition.
# Idempotent: installs only what is missing.
set -euo pipefail
pkgs=(
  prometheus # promtool check metrics
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
