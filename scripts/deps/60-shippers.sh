#!/usr/bin/env bash
# Shipper-compatibility tests (internal/ingest/shippers): clients no one here
# wrote, pointed at wirelog's Elasticsearch bulk and Loki push endpoints.
#  - rsyslog's omelasticsearch (Debian rsyslog-elasticsearch), run by the test
#    as a private rsyslogd on loopback; the system service is never started.
#  - a Python venv under $WIRELOG_CACHE with the official Elasticsearch client
#    (helpers.bulk), python-logging-loki (Loki JSON push), and protobuf +
#    cramjam to build a Loki protobuf+snappy push from the published schema.
# Idempotent: installs only what is missing; the venv is rebuilt only when
# the pinned versions below change.
set -euo pipefail
pkgs=(rsyslog rsyslog-elasticsearch python3-venv)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then echo "need root to apt-get install ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps apt from starting a system rsyslogd (see 40-syslog.sh).
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
test -e /usr/lib/x86_64-linux-gnu/rsyslog/omelasticsearch.so || { echo "omelasticsearch.so missing after installing rsyslog-elasticsearch" >&2; exit 1; }

# Pinned in one file the test also reads: the tests assert on what these
# exact clients send and parse.
reqs="$(dirname "$0")/../../cmd/wirelog/testdata/shippers/requirements.txt"
venv="${WIRELOG_CACHE:-$HOME/.cache/wirelog}/shippers-venv"
stamp="$venv/.wirelog-requirements"
if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$reqs" "$stamp"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$reqs"
  cp "$reqs" "$stamp"
fi
"$venv/bin/python" -c 'import elasticsearch, logging_loki, google.protobuf, cramjam'
