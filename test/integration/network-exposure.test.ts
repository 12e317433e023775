// What the host exposes through shoal's networks, tried as an attacker would. The daemon runs in
// a network namespace of its own; a second namespace linked to it is a neighbour on the same
// link that adds a route to a bridge's subnet through the daemon's host, as any machine on a
// LAN can. Containers are the other attackers: the test enters a container's network namespace
// as root to do what a process with the default CAP_NET_RAW could do by hand-crafting packets.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { access } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { inNetns, inNetnsAt, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { shoal } from "../helpers/cli.js";
import { linkRemoteHost, type RemoteHost } from "../helpers/netns.js";

const SUBNET = "10.78.1.0/24";
const GATEWAY = "10.78.1.1";
const PYTHON = "/usr/bin/python3";

let d: TestDaemon;
let remote: RemoteHost;
let bridge: string;
const sh = (args: string[]) => shoal(d.socket, args);

async function ok(args: string[]): Promise<string> {
  const r = await sh(args);
  expect(r.code, `shoal ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout.trim();
}

async function ipOf(container: string): Promise<string> {
  return ok(["inspect", "-f", `{{(index .NetworkSettings.Networks "exposed").IPAddress}}`, container]);
}

/** Run a host program inside a container's network namespace (the host's files, the container's network). */
async function inContainer(container: string, cmd: string, args: string[]) {
  const pid = await ok(["inspect", "-f", "{{.State.Pid}}", container]);
  return inNetnsAt(`/proc/${pid}/ns/net`, cmd, args);
}

/** `sh -c` text that asks for /index.html with busybox nc (the host's busybox wget has no timeout). */
function httpGet(host: string, port = 80): string[] {
  return ["-c", `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 ${host} ${port}`];
}

/** A node one-liner that sends one DNS query for `name` to GATEWAY:53 and prints "answer N" or "none". */
function dnsProbe(name: string): string[] {
  const labels = name.split(".").map((l) => `${String.fromCharCode(l.length)}${l}`);
  return [
    "-e",
    `const s=require('dgram').createSocket('udp4');` +
      `const q=Buffer.concat([Buffer.from([0x12,0x34,1,0,0,1,0,0,0,0,0,0]),Buffer.from(${JSON.stringify(labels.join(""))}+'\\0','latin1'),Buffer.from([0,1,0,1])]);` +
      `s.on('message',m=>{console.log('answer '+m.readUInt16BE(6));process.exit(0)});` +
      `s.send(q,53,'${GATEWAY}');setTimeout(()=>s.send(q,53,'${GATEWAY}'),500);setTimeout(()=>{console.log('none');process.exit(0)},2000)`,
  ];
}

beforeAll(async () => {
  d = await startDaemon();
  await loadBusybox(d.socket);
  remote = await linkRemoteHost(d.netns);
  // The neighbour routes the bridge's subnet through the daemon's host, as a LAN peer can.
  const route = await remote.exec("ip", ["route", "add", SUBNET, "via", remote.daemonAddress]);
  expect(route.code, route.stderr).toBe(0);
  await ok(["network", "create", "--subnet", SUBNET, "exposed"]);
  bridge = `shb-${(await ok(["network", "inspect", "-f", "{{.Id}}", "exposed"])).slice(0, 11)}`;
  const httpd = (text: string) => ["sh", "-c", `echo ${text} > /tmp/index.html; httpd -f -p 80 -h /tmp`];
  await ok(["run", "-d", "--name", "hidden", "--network", "exposed", "busybox", ...httpd("hidden-page")]);
  await ok([
    "run",
    "-d",
    "--name",
    "shown",
    "--network",
    "exposed",
    "-p",
    "18380:80",
    "-p",
    "127.0.0.1:18381:80",
    "busybox",
    ...httpd("shown-page"),
  ]);
});

afterAll(async () => {
  await remote?.destroy();
  await d?.destroy();
});

describe("a neighbour that routes to a bridge's subnet", () => {
  it("cannot open a container's unpublished port, but reaches a published one", async () => {
    const hidden = await ipOf("hidden");
    const direct = await remote.exec("sh", httpGet(hidden));
    expect(direct.stdout).not.toContain("hidden-page");
    // Nor the published container's own port, directly: only the host's published port leads in.
    const shownIp = await ipOf("shown");
    const around = await remote.exec("sh", httpGet(shownIp));
    expect(around.stdout).not.toContain("shown-page");
    const published = await remote.exec("sh", httpGet(remote.daemonAddress, 18380));
    expect(published.stdout).toContain("shown-page");
    // Containers of the network still reach each other.
    const inside = await sh(["run", "--rm", "--network", "exposed", "busybox", "sh", ...httpGet(hidden)]);
    expect(inside.stdout).toContain("hidden-page");
  });

  it("gets no answer from the containers' DNS server, which still answers its containers", async () => {
    const fromNeighbour = await remote.exec(process.execPath, dnsProbe("hidden"));
    expect(fromNeighbour.stdout.trim()).toBe("none");
    const fromContainer = await inContainer("shown", process.execPath, dnsProbe("hidden"));
    expect(fromContainer.stdout.trim()).toBe("answer 1");
    expect(d.logs()).toContain("dns: dropped a query from outside the network");
  });
});

describe("a container", () => {
  it("cannot reach a service the host binds to 127.0.0.1, while 127.0.0.1 publishing still works", async () => {
    const secret = d.netns;
    const listener = spawn(
      "nsenter",
      [
        `--net=/run/netns/${d.netns}`,
        process.execPath,
        "-e",
        `require('net').createServer(s=>s.end('${secret}\\n')).listen(17777,'127.0.0.1',()=>console.log('up'))`,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        listener.stdout.once("data", () => resolve());
        listener.once("exit", (c) => reject(new Error(`listener exited ${c}`)));
      });
      // The listener answers on the host's own loopback.
      expect((await inNetns(d.netns, "busybox", ["nc", "127.0.0.1", "17777"])).stdout).toContain(secret);
      // The container sends to 127.0.0.1 through its gateway, as a crafted packet would: its own
      // loopback route out of the way, the route to 127.0.0.1 through the bridge.
      const attack = await inContainer("hidden", "sh", [
        "-c",
        [
          "ip route del local 127.0.0.0/8 dev lo table local",
          "ip addr del 127.0.0.1/8 dev lo",
          "echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet",
          "echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet",
          `ip route add 127.0.0.1/32 via ${GATEWAY} dev eth0`,
          "busybox nc -w 3 127.0.0.1 17777; echo rc=$?",
        ].join(" && "),
      ]);
      expect(attack.stdout).toMatch(/rc=\d/);
      expect(attack.stdout).not.toContain(secret);
      const sysctl = await inNetns(d.netns, "cat", [`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`]);
      expect(sysctl.stdout.trim()).toBe("0");
      // Publishing on 127.0.0.1 (and on every address) still answers the host's loopback.
      for (const port of [18381, 18380]) {
        const r = await inNetns(d.netns, "busybox", ["wget", "-qO-", `http://127.0.0.1:${port}/index.html`]);
        expect(r.stdout).toContain("shown-page");
      }
      // ...and a port bound to 127.0.0.1 is not the neighbour's.
      const notRemote = await remote.exec("sh", httpGet(remote.daemonAddress, 18381));
      expect(notRemote.stdout).not.toContain("shown-page");
    } finally {
      listener.kill("SIGKILL");
    }
  });

  const hasPython = access(PYTHON).then(
    () => true,
    () => false,
  );

  it("cannot change the host's IPv6 routes with a router advertisement", async (ctx) => {
    if (!(await hasPython)) return ctx.skip();
    const ipv6 = await inNetns(d.netns, "cat", [`/proc/sys/net/ipv6/conf/${bridge}/accept_ra`]);
    if (ipv6.code !== 0) return ctx.skip(); // IPv6 is off on this machine: nothing to advertise to
    expect(ipv6.stdout.trim()).toBe("0");
    // The container's link-local address must be usable (past duplicate address detection).
    for (let i = 0; i < 50; i++) {
      const a = await inContainer("hidden", "ip", ["-6", "addr", "show", "dev", "eth0", "scope", "link"]);
      if (a.stdout.includes("fe80") && !a.stdout.includes("tentative")) break;
      await sleep(100);
    }
    const ra = [
      "import socket, struct",
      "s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)",
      "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)",
      "ifi = socket.if_nametoindex('eth0')",
      // Router advertisement: a default route for 1800 s, and a prefix to autoconfigure.
      "msg = struct.pack('!BBHBBHII', 134, 0, 0, 64, 0, 1800, 0, 0)",
      "msg += struct.pack('!BBBBIII', 3, 4, 64, 0xc0, 86400, 14400, 0) + socket.inet_pton(socket.AF_INET6, '2001:db8:77::')",
      "s.sendto(msg, ('ff02::1', 0, 0, ifi))",
      "print('sent')",
    ].join("\n");
    const routes = async () => (await inNetns(d.netns, "ip", ["-6", "route", "show"])).stdout;
    const advertise = async () => {
      const r = await inContainer("hidden", PYTHON, ["-c", ra]);
      expect(r.stdout, r.stderr).toContain("sent");
    };
    await advertise();
    await sleep(500);
    expect(await routes()).not.toMatch(/default|2001:db8:77/);
    // The same advertisement with the bridge's guard lowered does change the routes: the packet
    // reaches the host, and only accept_ra=0 stops it.
    await inNetns(d.netns, "sh", ["-c", `echo 1 > /proc/sys/net/ipv6/conf/${bridge}/accept_ra`]);
    try {
      let seen = "";
      for (let i = 0; i < 20 && !/2001:db8:77|default/.test(seen); i++) {
        await advertise();
        await sleep(200);
        seen = await routes();
      }
      expect(seen).toMatch(/2001:db8:77|default/);
    } finally {
      await inNetns(d.netns, "sh", ["-c", `echo 0 > /proc/sys/net/ipv6/conf/${bridge}/accept_ra`]);
      await inNetns(d.netns, "ip", ["-6", "route", "flush", "proto", "ra"]);
      await inNetns(d.netns, "ip", ["-6", "addr", "flush", "dev", bridge, "scope", "global"]);
    }
  });
});

describe("after a daemon restart", () => {
  it("ports published on 127.0.0.1 answer the host's loopback again, and the rules are back", async () => {
    await d.restart();
    let got = { stdout: "", stderr: "", code: 1 };
    for (let i = 0; i < 20 && !got.stdout.includes("shown-page"); i++) {
      if (i > 0) await sleep(250);
      got = await inNetns(d.netns, "sh", httpGet("127.0.0.1", 18381));
    }
    expect(got.stdout).toContain("shown-page");
    const hidden = await ipOf("hidden");
    expect((await remote.exec("sh", httpGet(hidden))).stdout).not.toContain("hidden-page");
  });
});
