#!/usr/bin/env bash
# The main job: a cluster of 3 managers and 2 workers on this one machine (deploy/lab: each host
# is a network namespace with its own shoald, joined over an isolated switch), a registry on the
# switch, and demo services whose image every host pulls from it. Leaves the lab running for you
# to play with; `deploy/lab/lab down` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."

lab=deploy/lab/lab
S() { local h=$1; shift; shoal -H "unix:///var/lib/shoal-lab/lab/$h/shoal.sock" "$@"; }

if [ -e /var/lib/shoal-lab/lab/lab.json ]; then
  echo "==> taking the previous lab down"
  $lab down
fi

echo "==> lab up: 3 managers, 2 workers, a registry on the switch; m1 inits the cluster, the rest join"
$lab up --managers 3 --workers 2 --registry --cluster
S m1 node ls

echo "==> building the busybox image from Debian's busybox-static and pushing it to the lab's registry"
reg=10.99.0.1:5000
node test/fixtures/busybox-image.mjs /tmp/shoal-busybox.tar busybox:latest
S m1 load -i /tmp/shoal-busybox.tar
S m1 tag busybox:latest "$reg/demo/busybox:1"
S m1 push "$reg/demo/busybox:1"

echo "==> a global service (one task per host, each pulls the image) serving port 8080 on every host"
S m1 service create --name hello --mode global \
  --publish mode=host,published=8080,target=8080 "$reg/demo/busybox:1" \
  sh -c 'mkdir -p /www && echo "hello from task $(hostname)" > /www/index.html && exec httpd -f -p 8080 -h /www'
echo "==> a replicated service of 6, created through a worker (it forwards to the leader)"
S w1 service create --name web --replicas 6 --stop-grace-period 1s "$reg/demo/busybox:1" sleep 1000000
S m2 service ls
S m3 service ps web

echo "==> every host answers on 8080 (asked from the switch, inside the lab)"
for ip in 10.99.0.2 10.99.0.3 10.99.0.4 10.99.0.5 10.99.0.6; do
  printf '%s: ' "$ip"
  nsenter --net=/run/netns/lab-switch busybox wget -qO- "http://$ip:8080/"
done

echo
echo "==> an overlay network across the hosts, and a service on it published through the routing mesh"
S m1 network create -d overlay --attachable --subnet 10.30.0.0/24 app
S m1 service create --name api --replicas 2 --network app --publish 8081:80 --stop-grace-period 1s \
  "$reg/demo/busybox:1" \
  sh -c 'mkdir -p /www && echo "api task $(hostname)" > /www/index.html && exec httpd -f -p 80 -h /www'
echo "==> port 8081 answers on every host, with or without an api task, balanced over both tasks"
for ip in 10.99.0.2 10.99.0.3 10.99.0.4 10.99.0.5 10.99.0.6; do
  for _ in 1 2; do
    printf '%s: ' "$ip"
    nsenter --net=/run/netns/lab-switch busybox wget -qO- "http://$ip:8081/"
  done
done
echo "==> a plain container on w2 joins the overlay (it is attachable) and finds the tasks by name"
S w2 run --rm --network app "$reg/demo/busybox:1" \
  sh -c 'nslookup tasks.api | grep -A1 "^Name"; printf "GET / HTTP/1.0\r\n\r\n" | nc api 80 | tail -1'

echo
echo "The lab keeps running. Try:"
echo "  deploy/lab/lab kill w1 && sleep 4 && shoal -H unix:///var/lib/shoal-lab/lab/m1/shoal.sock service ps web"
echo "  DOCKER_HOST=unix:///var/lib/shoal-lab/lab/m2/shoal.sock docker node ls"
echo "  deploy/lab/lab down     # removes every namespace, process and file of the lab"
