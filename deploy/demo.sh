#!/usr/bin/env bash
# The main job for now: start shoald, build the busybox test image, run a container from it,
# and show `shoal ps -a` and the container's logs. Leaves the daemon running for you to play with.
set -euo pipefail
cd "$(dirname "$0")/.."

sock=/run/shoal/shoal.sock
if ! shoal -H "unix://$sock" version >/dev/null 2>&1; then
  echo "==> starting shoald (log: /var/log/shoald.log)"
  mkdir -p /run/shoal
  setsid shoald -H "unix://$sock" >>/var/log/shoald.log 2>&1 < /dev/null &
  for _ in $(seq 1 100); do shoal version >/dev/null 2>&1 && break; sleep 0.1; done
fi
shoal version

echo "==> building the busybox image from Debian's busybox-static and loading it"
node test/fixtures/busybox-image.mjs /tmp/shoal-busybox.tar busybox:latest
shoal load -i /tmp/shoal-busybox.tar
shoal images

echo "==> shoal run"
shoal rm -f shoal-demo >/dev/null 2>&1 || true
shoal run -d --name shoal-demo --memory 64m --pids-limit 64 busybox \
  sh -c 'echo "hello from $(hostname), pid $$"; echo "to stderr" >&2; i=0; while [ $i -lt 3 ]; do i=$((i+1)); echo tick $i; sleep 1; done'
sleep 4
echo "==> shoal ps -a"
shoal ps -a
echo "==> shoal logs shoal-demo"
shoal logs -t shoal-demo

echo "==> a user network, a named volume and a published port"
shoal rm -f demo-web >/dev/null 2>&1 || true
shoal network rm demo-net >/dev/null 2>&1 || true
shoal network create demo-net
shoal run --rm -v demo-site:/site busybox sh -c 'echo "hello from a named volume" > /site/index.html'
shoal run -d --name demo-web --network demo-net --network-alias web -p 127.0.0.1:8080:80 \
  -v demo-site:/site:ro busybox httpd -f -p 80 -h /site
echo "--> another container on demo-net asks for http://web/ (the daemon's DNS answers the alias):"
shoal run --rm --network demo-net busybox wget -qO- http://web/
echo "--> the host asks for http://127.0.0.1:8080/ (an nftables DNAT rule, no proxy process):"
busybox wget -qO- http://127.0.0.1:8080/
shoal port demo-web
echo
echo "shoald keeps running (socket $sock). Try: shoal run --rm busybox uname -a"
echo "or the docker CLI: DOCKER_HOST=unix://$sock docker ps -a"
