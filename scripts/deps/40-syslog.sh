#!/usr/bin/env bash
# Syslog ingest tests and benchmarks: util-linux logger(1) is the client no
# one here wrote (internal/ingest/syslog TestLogger); rsyslog is the reference
# receiver of the syslog benchmark (docs/bench/syslog.md). Idempotent:
# installs only what is missing, and never starts the rsyslog service.
set -euo pipefail
pkgs=(bsdutils util-linux rsyslog)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then echo "need root to apt-get install ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps the package from starting a system rsyslogd that would
  # take /dev/log and port 514 on a CI machine.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.wirelog-syslog
  chmod +x /usr/sbin/policy-rc.d.wirelog-syslog
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    cp /usr/sbin/policy-rc.d.wirelog-syslog /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  rm -f /usr/sbin/policy-rc.d.wirelog-syslog
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v logger >/dev/null || { echo "logger(1) missing after install" >&2; exit 1; }
