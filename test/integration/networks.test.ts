// Networks on one host, with real traffic: bridges, veths, nftables NAT and published ports,
// and the daemon's container DNS. The daemon runs in its own network namespace; a second
// namespace linked to it plays another host.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { api, inNetns, repoRoot, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { shoal } from "../helpers/cli.js";
import { linkRemoteHost, outputOf, type RemoteHost } from "../helpers/netns.js";

let d: TestDaemon;
let remote: RemoteHost;
const sh = (args: string[]) => shoal(d.socket, args);

/** Run a throwaway busybox container and return its output (stdout + stderr) and exit code. */
async function probe(network: string, ...cmd: string[]): Promise<{ code: number; out: string }> {
  const r = await sh(["run", "--rm", "--network", network, "busybox", ...cmd]);
  return { code: r.code, out: r.stdout + r.stderr };
}

/** The A addresses busybox nslookup printed for the name it was asked. */
function resolved(out: string): string[] {
  const answers = out.split(/\n\s*\n/).filter((block) => /^Name:/m.test(block));
  return answers.flatMap((b) => [...b.matchAll(/^Address:\s*([\d.]+)\s*$/gm)].map((m) => m[1]));
}

async function ok(args: string[]): Promise<string> {
  const r = await sh(args);
  expect(r.code, `shoal ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout.trim();
}

async function ipOf(container: string, network: string): Promise<string> {
  return ok(["inspect", "-f", `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, container]);
}

async function links(): Promise<string> {
  return (await inNetns(d.netns, "ip", ["-o", "link"])).stdout;
}

async function ruleset(): Promise<string> {
  return (await inNetns(d.netns, "nft", ["list", "ruleset"])).stdout;
}

beforeAll(async () => {
  d = await startDaemon();
  await loadBusybox(d.socket);
  remote = await linkRemoteHost(d.netns);
  await ok(["network", "create", "--subnet", "10.77.1.0/24", "blue"]);
  await ok(["network", "create", "--subnet", "10.77.2.0/24", "green"]);
  await ok([
    "run",
    "-d",
    "--name",
    "srv",
    "--network",
    "blue",
    "--network-alias",
    "www",
    "busybox",
    "sh",
    "-c",
    "echo hello-from-srv > /tmp/index.html; httpd -f -p 80 -h /tmp",
  ]);
});

afterAll(async () => {
  await remote?.destroy();
  await d?.destroy();
});

describe("user-defined networks", () => {
  it("two containers on one network reach each other by name and alias", async () => {
    const srvIp = await ipOf("srv", "blue");
    expect(srvIp).toMatch(/^10\.77\.1\.\d+$/);
    const byName = await probe("blue", "wget", "-qO-", "http://srv/index.html");
    expect(byName.out).toContain("hello-from-srv");
    const byAlias = await probe("blue", "nslookup", "www");
    expect(resolved(byAlias.out)).toEqual([srvIp]);
  });

  it("a container on another network neither resolves nor reaches it", async () => {
    const srvIp = await ipOf("srv", "blue");
    const lookup = await probe("green", "nslookup", "srv");
    expect(resolved(lookup.out)).toEqual([]);
    const direct = await probe("green", "sh", "-c", `echo GET / | nc -w 2 ${srvIp} 80; echo rc=$?`);
    expect(direct.out).not.toContain("hello-from-srv");
  });

  it("a container resolves its own name", async () => {
    const r = await sh([
      "run",
      "--rm",
      "--name",
      "selfie",
      "--network",
      "green",
      "busybox",
      "nslookup",
      "selfie",
    ]);
    expect(resolved(r.stdout)).toHaveLength(1);
    expect(resolved(r.stdout)[0]).toMatch(/^10\.77\.2\./);
  });

  it("/etc/hosts, /etc/hostname and /etc/resolv.conf are managed per container", async () => {
    const r = await probe("blue", "sh", "-c", "hostname; cat /etc/hosts /etc/resolv.conf");
    const hostname = r.out.split("\n")[0].trim();
    expect(r.out).toMatch(new RegExp(`10\\.77\\.1\\.\\d+\\s+${hostname}`));
    expect(r.out).toContain("nameserver 10.77.1.1");
    expect(r.out).toContain("127.0.0.1\tlocalhost");
  });

  it("--ip gives a fixed address and a taken one is refused at start", async () => {
    const ip = await probe("blue", "ip", "-o", "-4", "addr", "show", "eth0");
    expect(ip.code).toBe(0);
    const fixed = await sh([
      "run",
      "--rm",
      "--network",
      "green",
      "--ip",
      "10.77.2.99",
      "busybox",
      "ip",
      "-o",
      "-4",
      "addr",
    ]);
    expect(fixed.stdout).toContain("10.77.2.99/24");
    const outside = await sh(["run", "--rm", "--network", "green", "--ip", "10.99.0.5", "busybox", "true"]);
    expect(outside.code).not.toBe(0);
    expect(outside.stderr).toMatch(/10\.99\.0\.5.*10\.77\.2\.0\/24/);
  });

  it("a container joins several networks and gets one interface on each", async () => {
    const r = await sh([
      "run",
      "--rm",
      "--network",
      "blue",
      "--network",
      "green",
      "busybox",
      "ip",
      "-o",
      "-4",
      "addr",
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/eth0\s+inet 10\.77\.1\./);
    expect(r.stdout).toMatch(/eth1\s+inet 10\.77\.2\./);
  });

  it("--network none has only a loopback, host shares the daemon's, container: shares another's", async () => {
    const none = await probe("none", "ip", "-o", "link");
    expect(none.out.trim().split("\n")).toHaveLength(1);
    expect(none.out).toContain("lo:");
    const host = await probe("host", "ip", "-o", "link");
    expect(host.out).toContain("shoal0");
    const shared = await sh([
      "run",
      "--rm",
      "--network",
      "container:srv",
      "busybox",
      "wget",
      "-qO-",
      "http://127.0.0.1/index.html",
    ]);
    expect(shared.stdout).toContain("hello-from-srv");
  });
});

describe("egress and isolation", () => {
  let listener: ChildProcess | undefined;
  afterAll(() => {
    listener?.kill("SIGKILL");
  });

  it("a container reaches another host through NAT; an --internal network does not", async () => {
    listener = remote.spawn("busybox", ["nc", "-l", "-p", "7000"]);
    await new Promise((r) => setTimeout(r, 300));
    const received = outputOf(listener, 15_000);
    // The remote has no route back to 10.77.1.0/24: only a masqueraded connection gets answers.
    const sent = await probe(
      "blue",
      "sh",
      "-c",
      `echo through-nat | nc -w 5 ${remote.address} 7000; echo rc=$?`,
    );
    expect(sent.out).toContain("rc=0");
    expect(await received).toContain("through-nat");

    await ok(["network", "create", "--internal", "--subnet", "10.77.9.0/24", "sealed"]);
    const blocked = await probe("sealed", "sh", "-c", `echo x | nc -w 2 ${remote.address} 7000; echo rc=$?`);
    expect(blocked.out).not.toContain("rc=0");
    await ok(["network", "rm", "sealed"]);
  });
});

describe("published ports", () => {
  beforeAll(async () => {
    await ok([
      "run",
      "-d",
      "--name",
      "pub",
      "-p",
      "18080:80",
      "-p",
      "127.0.0.1:18081:80",
      "busybox",
      "sh",
      "-c",
      "echo published > /tmp/index.html; httpd -f -p 80 -h /tmp",
    ]);
  });

  it("answer from another namespace, from the host's own address and from localhost", async () => {
    const fromRemote = await remote.exec("busybox", [
      "wget",
      "-qO-",
      `http://${remote.daemonAddress}:18080/index.html`,
    ]);
    expect(fromRemote.stdout).toContain("published");
    const fromHost = await inNetns(d.netns, "busybox", [
      "wget",
      "-qO-",
      `http://${remote.daemonAddress}:18080/index.html`,
    ]);
    expect(fromHost.stdout).toContain("published");
    const localhost = await inNetns(d.netns, "busybox", [
      "wget",
      "-qO-",
      "http://localhost:18080/index.html",
    ]);
    expect(localhost.stdout).toContain("published");
    const bound = await inNetns(d.netns, "busybox", ["wget", "-qO-", "http://127.0.0.1:18081/index.html"]);
    expect(bound.stdout).toContain("published");
    // Bound to 127.0.0.1 only: another host cannot use it.
    const notRemote = await remote.exec("busybox", [
      "wget",
      "-T",
      "2",
      "-qO-",
      `http://${remote.daemonAddress}:18081/index.html`,
    ]);
    expect(notRemote.stdout).not.toContain("published");
  });

  it("shoal port lists the bindings", async () => {
    const r = await ok(["port", "pub"]);
    expect(r.split("\n").sort()).toEqual(["80/tcp -> 0.0.0.0:18080", "80/tcp -> 127.0.0.1:18081"]);
  });

  it("-P publishes exposed ports on ephemeral host ports", async () => {
    await ok([
      "run",
      "-d",
      "--name",
      "eph",
      "--expose",
      "80",
      "-P",
      "busybox",
      "sh",
      "-c",
      "echo eph > /tmp/index.html; httpd -f -p 80 -h /tmp",
    ]);
    const mapping = await ok(["port", "eph", "80"]);
    const port = Number(mapping.split(":").pop());
    expect(port).toBeGreaterThan(1024);
    const r = await remote.exec("busybox", [
      "wget",
      "-qO-",
      `http://${remote.daemonAddress}:${port}/index.html`,
    ]);
    expect(r.stdout).toContain("eph");
    await ok(["rm", "-f", "eph"]);
  });

  it("UDP ports are published too", async () => {
    // busybox has no UDP server; the host's node (mounted read-only) answers one datagram.
    const server =
      "const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send('pong:'+m,r.port,r.address));s.bind(9999)";
    await ok([
      "run",
      "-d",
      "--name",
      "udp",
      "-p",
      "19999:9999/udp",
      "-v",
      "/usr:/usr:ro",
      "-v",
      "/lib:/lib:ro",
      "-v",
      "/lib64:/lib64:ro",
      "busybox",
      "/usr/bin/node",
      "-e",
      server,
    ]);
    const client =
      "const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{console.log(String(m));process.exit(0)});" +
      `const go=()=>s.send('ping',19999,'${remote.daemonAddress}');go();setInterval(go,300);setTimeout(()=>process.exit(1),8000)`;
    const r = await remote.exec(process.execPath, ["-e", client]);
    expect(r.stdout).toContain("pong:ping");
    await ok(["rm", "-f", "udp"]);
  });

  it("a port already published is refused with the holder's name, and nothing is created", async () => {
    const r = await sh(["run", "-d", "--name", "clash", "-p", "18080:80", "busybox", "true"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("pub");
    expect(r.stderr).toMatch(/18080/);
    const list = await ok(["ps", "-a", "--format", "{{.Names}}"]);
    expect(list.split("\n")).not.toContain("clash");
  });
});

describe("DNS follows the containers", () => {
  it("connect, disconnect and rename change the answers", async () => {
    await ok(["run", "-d", "--name", "mover", "--network", "green", "busybox", "sleep", "300"]);
    expect(resolved((await probe("blue", "nslookup", "mover")).out)).toEqual([]);

    await ok(["network", "connect", "--alias", "moved", "blue", "mover"]);
    const blueIp = await ipOf("mover", "blue");
    expect(blueIp).toMatch(/^10\.77\.1\./);
    expect(resolved((await probe("blue", "nslookup", "mover")).out)).toEqual([blueIp]);
    expect(resolved((await probe("blue", "nslookup", "moved")).out)).toEqual([blueIp]);
    // The running container's /etc/hosts gained its new address (rewritten in place).
    const hostsPath = await ok(["inspect", "-f", "{{.HostsPath}}", "mover"]);
    expect(await readFile(hostsPath, "utf8")).toContain(blueIp);

    await ok(["rename", "mover", "shifter"]);
    expect(resolved((await probe("blue", "nslookup", "shifter")).out)).toEqual([blueIp]);
    expect(resolved((await probe("blue", "nslookup", "mover")).out)).toEqual([]);

    await ok(["network", "disconnect", "blue", "shifter"]);
    expect(resolved((await probe("blue", "nslookup", "shifter")).out)).toEqual([]);
    expect(await readFile(hostsPath, "utf8")).not.toContain(blueIp);
    await ok(["rm", "-f", "shifter"]);
  });

  it("other names go to the host's resolvers", async () => {
    const upstream = spawn(
      "nsenter",
      [
        `--net=/run/netns/${d.netns}`,
        process.execPath,
        join(repoRoot, "test/fixtures/fake-upstream-dns.mjs"),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        upstream.stdout.once("data", () => resolve());
        upstream.once("exit", (c) => reject(new Error(`fake upstream exited ${c}`)));
      });
      const r = await probe("blue", "nslookup", "www.example.test");
      expect(resolved(r.out)).toEqual(["203.0.113.7"]);
    } finally {
      upstream.kill("SIGKILL");
    }
  });
});

describe("shoal network commands", () => {
  it("ls, inspect and prune show and remove what a user expects", async () => {
    await ok(["network", "create", "--label", "purpose=spare", "spare"]);
    const ls = await ok(["network", "ls"]);
    expect(ls.split("\n")[0]).toMatch(/^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$/);
    for (const name of ["bridge", "host", "none", "blue", "spare"])
      expect(ls).toMatch(new RegExp(`\\s${name}\\s`));
    expect(await ok(["network", "ls", "--filter", "label=purpose=spare", "--format", "{{.Name}}"])).toBe(
      "spare",
    );
    const subnet = await ok(["network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "spare"]);
    expect(subnet).toMatch(/^\d+\.\d+\.\d+\.0\/\d+$/);
    const pruned = await ok(["network", "prune", "-f"]);
    expect(pruned).toContain("spare");
    expect(pruned).not.toContain("blue");
    expect((await sh(["network", "inspect", "spare"])).code).not.toBe(0);
    expect(await ok(["network", "inspect", "-f", "{{.Name}}", "blue"])).toBe("blue");
  });
});

describe("bad input", () => {
  it("an overlapping subnet is a 409 naming the other network", async () => {
    const r = await api(d.socket, "POST", "/networks/create", {
      Name: "dupe",
      IPAM: { Config: [{ Subnet: "10.77.1.128/25" }] },
    });
    expect(r.status).toBe(409);
    expect(r.json<{ message: string }>().message).toContain("blue");
  });

  it("an unknown network is a 404 and creates no container", async () => {
    const r = await api(d.socket, "POST", "/containers/create?name=lost", {
      Image: "busybox",
      Cmd: ["true"],
      HostConfig: { NetworkMode: "nowhere" },
    });
    expect(r.status).toBe(404);
    expect(r.json<{ message: string }>().message).toContain("nowhere");
    expect((await api(d.socket, "GET", "/containers/lost/json")).status).toBe(404);
  });

  it("removing a network with containers is a 409 listing them", async () => {
    const r = await api(d.socket, "DELETE", "/networks/blue");
    expect(r.status).toBe(409);
    expect(r.json<{ message: string }>().message).toContain("srv");
  });
});

describe("nothing leaks", () => {
  it("after rm: no veth, no rule, no address; after the network's rm: no bridge", async () => {
    const pubIp = await ipOf("pub", "bridge");
    await ok([
      "run",
      "-d",
      "--name",
      "temp",
      "--network",
      "blue",
      "-p",
      "18090:80",
      "busybox",
      "sleep",
      "300",
    ]);
    const tempIp = await ipOf("temp", "blue");
    const vethsBefore = (await links()).match(/shv[0-9a-f]+/g) ?? [];
    const ids = [
      await ok(["inspect", "-f", "{{.Id}}", "temp"]),
      await ok(["inspect", "-f", "{{.Id}}", "pub"]),
    ];
    expect(await ruleset()).toContain(`${tempIp} . 80`);
    await ok(["rm", "-f", "temp", "pub"]);
    const after = await links();
    expect((after.match(/shv[0-9a-f]+/g) ?? []).length).toBe(vethsBefore.length - 2);
    // Port rules leave asynchronously (right after the exit); give them a moment, not more.
    let rules = await ruleset();
    for (let i = 0; i < 20 && rules.includes("18090"); i++) {
      await new Promise((r) => setTimeout(r, 100));
      rules = await ruleset();
    }
    expect(rules).not.toContain(tempIp);
    expect(rules).not.toContain(pubIp);
    expect(rules).not.toContain("18090");
    const blue = await api(d.socket, "GET", "/networks/blue");
    expect(JSON.stringify(blue.json())).not.toContain(tempIp);

    await ok(["network", "create", "--subnet", "10.77.3.0/24", "scratch"]);
    expect(await ruleset()).toContain("10.77.3.0/24");
    const bridge = (await api(d.socket, "GET", "/networks/scratch")).json<{ Id: string }>().Id.slice(0, 11);
    await ok(["network", "rm", "scratch"]);
    expect(await links()).not.toContain(`shb-${bridge}`);
    expect(await ruleset()).not.toContain("10.77.3.0/24");
    const mounts = await readFile("/proc/mounts", "utf8");
    for (const id of ids) expect(mounts).not.toContain(id);
  });

  it("after a daemon crash, what a container that died meanwhile held is given back", async () => {
    await ok([
      "run",
      "-d",
      "--name",
      "doomed",
      "--network",
      "blue",
      "-p",
      "18095:80",
      "busybox",
      "sleep",
      "300",
    ]);
    const ip = await ipOf("doomed", "blue");
    const pid = Number(await ok(["inspect", "-f", "{{.State.Pid}}", "doomed"]));
    await d.stop("SIGKILL");
    process.kill(pid, "SIGKILL");
    await new Promise((r) => setTimeout(r, 500));
    await d.restart();
    const rules = await ruleset();
    expect(rules).not.toContain("18095");
    expect(rules).not.toContain(ip);
    const state = await ok(["inspect", "-f", "{{.State.Status}}", "doomed"]);
    expect(state).toBe("exited");
    const networksFile = await readFile(join(d.dataRoot, "network", "networks.json"), "utf8");
    expect(networksFile).not.toContain(`"${ip}"`);
    // srv survived the crash and still answers by name.
    expect((await probe("blue", "wget", "-qO-", "http://srv/index.html")).out).toContain("hello-from-srv");
    // srv's address is still held after the restart: a container asking for it is refused.
    const srvIp = await ipOf("srv", "blue");
    const taken = await sh(["run", "--rm", "--network", "blue", "--ip", srvIp, "busybox", "true"]);
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toContain(srvIp);
    // The dead container's address is free again.
    const again = await sh(["run", "--rm", "--network", "blue", "--ip", ip, "busybox", "true"]);
    expect(again.code).toBe(0);
    await ok(["rm", "-f", "doomed"]);
  });
});
