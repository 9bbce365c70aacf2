#!/usr/bin/env bash
# Kafka for the transport tests: Java 17 to run the broker, Maven to fetch it
# from Maven Central, and kcat (a Kafka client no one here wrote) to check what
# wirelog produces. Then the broker jars are fetched into the cache once, so
# the first test does not pay for it. Idempotent: installs only what is missing.
set -euo pipefail
pkgs=(
  openjdk-17-jre-headless # runs the Kafka broker (scripts/kafka.sh)
  maven                   # fetches org.apache.kafka:kafka_2.13 and its dependencies
  kcat                    # independent Kafka client used by the tests
  procps                  # ps, used by scripts/kafka.sh to tell a live broker from a zombie
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
exec "$(dirname "$0")/../kafka.sh" fetch
