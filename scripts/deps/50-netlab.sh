#!/usr/bin/env bash
# Debian packages `wirelog netlab` and its tests use. Idempotent: installs only what is missing.
set -euo pipefail
pkgs=(
  iproute2   # ip netns exec (the lab's namespaces get their own /sys for RPS masks)
  iptables   # iptables-restore with the nf_tables backend: the kube-proxy rule set
  ethtool    # GRO on / TSO off on the lab veths (threaded NAPI steering)
  coreutils  # stdbuf: line-buffered dpdk-testpmd output through a pipe
  dpdk       # dpdk-testpmd with the net_af_xdp and net_af_packet vdevs: the DPDK reference path
  chromium   # headless screenshot of report.html in the tests
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
# iptables must use the nf_tables backend (Debian 12's default); say so if not.
if ! iptables --version 2>/dev/null | grep -q nf_tables; then
  echo "warning: iptables is not the nf_tables backend; run: update-alternatives --set iptables /usr/sbin/iptables-nft" >&2
fi
