#!/usr/bin/env bash
# PROXY protocol tests (internal/ingest/syslog TestHAProxy): Debian's HAProxy
# is the load balancer no one here wrote, sending PROXY v1 (send-proxy) and
# v2 (send-proxy-v2) headers in front of syslog TCP connections. Idempotent:
# installs only what is missing, and never starts the haproxy service (the
# test runs its own haproxy in the foreground on loopback ports).
set -euo pipefail
pkgs=(haproxy)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then echo "need root to apt-get install ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Keep the package from starting a system haproxy (see 40-syslog.sh).
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v haproxy >/dev/null || { echo "haproxy missing after install" >&2; exit 1; }
