#!/usr/bin/env bash
# Installs what incus-fleet needs on a Debian 12 machine and builds it.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "incus-fleet: run as root: the lab uses network namespaces and runs incusd" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
packages=()
command -v nats-server >/dev/null || packages+=(nats-server)
command -v chromium >/dev/null || packages+=(chromium)
command -v socat >/dev/null || packages+=(socat)
command -v nft >/dev/null || packages+=(nftables)
command -v unshare >/dev/null || packages+=(util-linux)
command -v ip >/dev/null || packages+=(iproute2)
command -v openssl >/dev/null || packages+=(openssl)
# Incus runs dnsmasq for the DHCP and DNS of the bridge networks a spec declares.
command -v dnsmasq >/dev/null || packages+=(dnsmasq-base)
dpkg -s busybox-static >/dev/null 2>&1 || packages+=(busybox-static)
need_incus=0
[ -x /usr/libexec/incus/incusd ] || need_incus=1

if [ ${#packages[@]} -gt 0 ] || [ $need_incus = 1 ]; then
  if [ $need_incus = 1 ] && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/backports.list
  fi
  apt-get update -q
  [ ${#packages[@]} -gt 0 ] && apt-get install -y -q --no-install-recommends "${packages[@]}"
  # Incus 6.0 LTS comes from bookworm-backports; the container-only daemon is all the lab needs.
  [ $need_incus = 1 ] && apt-get install -y -q --no-install-recommends -t bookworm-backports incus-base incus-client
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent
