#!/usr/bin/env bash
# TLS and mutual-TLS tests (internal/tlsconf, syslog over TLS, Kafka SSL):
# peers no one here wrote. curl and openssl s_client talk HTTPS with client
# certificates; rsyslog's OpenSSL stream driver (rsyslog-openssl, lmnsd_ossl)
# sends RFC 5425 syslog over TLS; kcat (30-kafka.sh) reads the SSL listener.
# Idempotent: installs only what is missing, never starts the rsyslog service.
set -euo pipefail
pkgs=(curl openssl rsyslog rsyslog-openssl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then echo "need root to apt-get install ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Keep the package from starting a system rsyslogd (see 40-syslog.sh).
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
[[ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so || -n $(find /usr/lib -name lmnsd_ossl.so -print -quit) ]] ||
  { echo "rsyslog's OpenSSL stream driver (lmnsd_ossl.so) missing after install" >&2; exit 1; }
