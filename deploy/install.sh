#!/usr/bin/env bash
# Installs everything shoal needs on Debian 12, as root, then builds it and puts `shoal` and
# `shoald` on PATH. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (shoald needs root for namespaces, cgroups and mounts)" >&2
  exit 1
fi

# docker-registry, apache2-utils (htpasswd), openssl and skopeo: the registry tests and bench/images.
packages=(runc conmon iproute2 nftables conntrack busybox-static tini attr util-linux ca-certificates docker-registry apache2-utils openssl skopeo)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || echo "apt-get update failed; trying the package lists we have"
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "==> npm ci"
npm ci --no-audit --no-fund --loglevel=error
echo "==> npm run build"
npm run build --silent

ln -sf "$PWD/dist/cli/main.js" /usr/local/bin/shoal
ln -sf "$PWD/dist/daemon/main.js" /usr/local/bin/shoald
echo "==> installed: $(command -v shoal) $(command -v shoald)"
