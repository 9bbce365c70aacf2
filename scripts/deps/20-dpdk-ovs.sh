#!/usr/bin/env bash
# Debian packages the data-plane agent's tests run for real: DPDK 22.11
# (dpdk-testpmd), OVS-DPDK 3.1 (ovs-vswitchd-dpdk, ovsdb-server, ovs-vsctl),
# Prometheus 2.42 and promtool. Idempotent: installs only what is missing.
# The packages' services are not needed (tests start private instances);
# where /usr/sbin/policy-rc.d forbids starting them, they stay stopped.
set -euo pipefail
pkgs=(
  dpdk-dev                 # dpdk-testpmd, net_null virtual devices
  openvswitch-switch-dpdk  # /usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk, vswitch.ovsschema
  prometheus               # prometheus and promtool
  util-linux               # unshare(1): each test OVS gets its own network namespace
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
# The tests reserve 2 MB hugepages through this file; say early if the
# kernel has none (a container without /sys write access, or no hugetlb).
if [[ ! -w /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages ]]; then
  echo "warning: /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages is not writable; the OVS-DPDK tests will fail" >&2
fi
