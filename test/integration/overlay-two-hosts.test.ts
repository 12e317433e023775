// Overlay networks between two real "hosts": two network namespaces joined by a veth (the
// underlay), each running the built OverlayDriver (test/fixtures/overlay-apply.mjs) on a
// hand-made NetworkState. "Containers" are more namespaces with a veth into an overlay bridge,
// carrying the task's address and MAC, as the engine wires them. Real traffic through busybox
// shows VXLAN between hosts, isolation between overlay networks, the VIP spread over two
// backends (the LB table in the client's own namespace), the routing mesh answering on a host
// without the task, and that removing everything leaves nothing of ours behind.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { deleteNetns, inNetns, makeNetns, repoRoot, runFixtureIn } from "../helpers/daemon.js";
import type { NetworkState, TaskEndpoint } from "../../shared/network-state.js";
import { macForAddress } from "../../agent/engine/network/host-links.js";
import { overlayBridgeName } from "../../agent/engine/network/overlay/names.js";

const run = promisify(execFile);
const tag = randomBytes(3).toString("hex");
const hostA = `shoal-ovA-${tag}`;
const hostB = `shoal-ovB-${tag}`;
const A = { nodeId: "nodeA", hostAddr: "192.168.77.1" };
const B = { nodeId: "nodeB", hostAddr: "192.168.77.2" };
const NET1 = `1111111111${tag}aaaa`;
const NET2 = `2222222222${tag}bbbb`;
const INGRESS = `3333333333${tag}cccc`;
const fixture = join(repoRoot, "test/fixtures/overlay-apply.mjs");

/** Test "containers": name → its namespace. */
const containers = new Map<string, string>();
const children: ChildProcess[] = [];
let www: string;

function taskOn(
  taskId: string,
  serviceId: string,
  networkId: string,
  node: typeof A,
  address: string,
  running = true,
): TaskEndpoint {
  return {
    networkId,
    taskId,
    serviceId,
    nodeId: node.nodeId,
    hostAddr: node.hostAddr,
    address,
    names: [taskId],
    running,
  };
}

function fullState(version: number): NetworkState {
  return {
    version,
    networks: [
      { id: NET1, name: "front", vni: 5001, subnet: "10.70.1.0/24", ingress: false, attachable: false },
      { id: NET2, name: "back", vni: 5002, subnet: "10.70.2.0/24", ingress: false, attachable: false },
      { id: INGRESS, name: "ingress", vni: 5000, subnet: "10.70.0.0/24", ingress: true, attachable: false },
    ],
    nodes: [
      { networkId: NET1, nodeId: "nodeA", hostAddr: A.hostAddr, address: "10.70.1.2" },
      { networkId: NET1, nodeId: "nodeB", hostAddr: B.hostAddr, address: "10.70.1.3" },
      { networkId: NET2, nodeId: "nodeA", hostAddr: A.hostAddr, address: "10.70.2.2" },
      { networkId: NET2, nodeId: "nodeB", hostAddr: B.hostAddr, address: "10.70.2.3" },
      { networkId: INGRESS, nodeId: "nodeA", hostAddr: A.hostAddr, address: "10.70.0.2" },
      { networkId: INGRESS, nodeId: "nodeB", hostAddr: B.hostAddr, address: "10.70.0.3" },
    ],
    tasks: [
      // The client on A; web.1 on B, web.2 on A (both on front); web.1 also on ingress (on B);
      // "other" on B and "backa" on A on the back network; "idle" has a VIP and nothing running.
      taskOn("client", "client", NET1, A, "10.70.1.10"),
      taskOn("web1", "web", NET1, B, "10.70.1.20"),
      taskOn("web2", "web", NET1, A, "10.70.1.21"),
      taskOn("web1", "web", INGRESS, B, "10.70.0.20"),
      taskOn("other", "other", NET2, B, "10.70.2.20"),
      taskOn("backa", "backa", NET2, A, "10.70.2.10"),
    ],
    services: [
      {
        id: "web",
        name: "web",
        mode: "vip",
        vips: [{ networkId: NET1, address: "10.70.1.5" }],
        ports: [{ protocol: "tcp", publishedPort: 8080, targetPort: 80 }],
      },
      { id: "idle", name: "idle", mode: "vip", vips: [{ networkId: NET1, address: "10.70.1.6" }], ports: [] },
      {
        id: "other",
        name: "other",
        mode: "vip",
        vips: [{ networkId: NET2, address: "10.70.2.5" }],
        ports: [],
      },
      { id: "client", name: "client", mode: "vip", vips: [], ports: [] },
      { id: "backa", name: "backa", mode: "vip", vips: [], ports: [] },
    ],
  };
}

const EMPTY: NetworkState = { version: 99, networks: [], nodes: [], tasks: [], services: [] };

interface ApplyOutput {
  version: number;
  networks: Array<{ id: string; bridge: string; vxlan: string; address: string }>;
  changes: { ip: string[]; bridge: string[]; createdBridges: string[]; removedLinks: string[] };
}

/** Run the fixture in a host namespace. */
function apply(
  host: string,
  self: typeof A,
  state: NetworkState,
  lb: Array<{ netns: string; networks: string[] }> = [],
): Promise<ApplyOutput> {
  return runFixtureIn<ApplyOutput>(host, fixture, { state, self, firewall: true, lb });
}

async function sh(netns: string, cmd: string): Promise<void> {
  await run("ip", ["-n", netns, ...cmd.split(" ")]);
}

/** A "container": a namespace with a veth into the overlay bridge on `host`, as the engine wires one. */
async function container(
  name: string,
  host: string,
  eps: Array<{ network: string; address: string; gateway?: string }>,
): Promise<string> {
  const ns = `shoal-ovc-${name}-${tag}`.slice(0, 40);
  await makeNetns(ns);
  containers.set(name, ns);
  let i = 0;
  for (const ep of eps) {
    const hostIf = `shvt${tag}${name.slice(0, 3)}${i}`.slice(0, 15);
    const inner = `eth${i}`;
    await run("ip", [
      "-n",
      host,
      "link",
      "add",
      hostIf,
      "mtu",
      "1450",
      "type",
      "veth",
      "peer",
      "name",
      inner,
      "mtu",
      "1450",
      "address",
      macForAddress(ep.address),
      "netns",
      ns,
    ]);
    await sh(host, `link set ${hostIf} master ${overlayBridgeName(ep.network)}`);
    await sh(host, `link set ${hostIf} up`);
    await sh(ns, `addr add ${ep.address}/24 dev ${inner}`);
    await sh(ns, `link set ${inner} up`);
    if (ep.gateway) await sh(ns, `route add default via ${ep.gateway}`);
    i++;
  }
  return ns;
}

function bb(ns: string, args: string[], timeoutMs = 10_000) {
  return inNetns(ns, "busybox", args, timeoutMs);
}

/**
 * An HTTP GET through busybox nc (the host's static busybox wget crashes outside a container):
 * the page's body, or the error nc printed.
 */
function wget(ns: string, url: string): Promise<{ code: number; out: string }> {
  const m = /^http:\/\/([\d.]+)(?::(\d+))?\//.exec(url);
  if (!m) throw new Error(`bad url ${url}`);
  return new Promise((resolve) => {
    const child = spawn(
      "nsenter",
      [`--net=/run/netns/${ns}`, "busybox", "nc", "-w", "3", m[1], m[2] ?? "80"],
      {
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    let out = "";
    let err = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 8000);
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.once("close", (code) => {
      clearTimeout(timer);
      const ok = code === 0 && out.startsWith("HTTP/1.1 200");
      resolve({
        code: ok ? 0 : (code ?? 1) || 1,
        out: ok ? out.split("\r\n\r\n").slice(1).join("").trim() : (out + err).trim(),
      });
    });
    // nc may exit before it reads the request (a refused connection): no EPIPE for the test.
    child.stdin.on("error", () => undefined);
    child.stdin.end(`GET / HTTP/1.0\r\nHost: ${m[1]}\r\n\r\n`);
  });
}

/** busybox httpd serving a page that names the task, in a container's namespace. */
async function httpd(name: string, ns: string): Promise<void> {
  const dir = join(www, name);
  await run("mkdir", ["-p", dir]);
  await writeFile(join(dir, "index.html"), `${name}\n`);
  const child = spawn(
    "nsenter",
    [`--net=/run/netns/${ns}`, "busybox", "httpd", "-f", "-p", "80", "-h", dir],
    {
      stdio: "ignore",
    },
  );
  children.push(child);
}

async function ours(host: string): Promise<{ links: string; fdb: string; neigh: string; tables: string }> {
  const links = (await inNetns(host, "ip", ["-o", "link"])).stdout
    .split("\n")
    .filter((l) => /shov|shox/.test(l))
    .join("\n");
  const fdb = (await inNetns(host, "bridge", ["fdb", "show"])).stdout
    .split("\n")
    .filter((l) => /shox|shov/.test(l))
    .join("\n");
  const neigh = (await inNetns(host, "ip", ["neigh", "show"])).stdout
    .split("\n")
    .filter((l) => /shox|shov/.test(l))
    .join("\n");
  const tables = (await inNetns(host, "nft", ["list", "tables"])).stdout;
  return { links, fdb, neigh, tables };
}

const lbA = () => [{ netns: `/run/netns/${containers.get("client")}`, networks: [NET1] }];

beforeAll(async () => {
  www = await mkdtemp("/tmp/shoal-overlay-www-");
  await makeNetns(hostA);
  await makeNetns(hostB);
  await run("ip", [
    "-n",
    hostA,
    "link",
    "add",
    `shu${tag}`,
    "type",
    "veth",
    "peer",
    "name",
    "eth0",
    "netns",
    hostB,
  ]);
  await sh(hostA, `addr add ${A.hostAddr}/24 dev shu${tag}`);
  await sh(hostA, `link set shu${tag} up`);
  await sh(hostB, `addr add ${B.hostAddr}/24 dev eth0`);
  await sh(hostB, "link set eth0 up");
  // As the daemon does (--ip-forward): egress and the routing mesh are routed by the host.
  for (const h of [hostA, hostB]) await inNetns(h, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);

  await apply(hostA, A, fullState(1));
  await apply(hostB, B, fullState(1));
  const client = await container("client", hostA, [
    { network: NET1, address: "10.70.1.10", gateway: "10.70.1.2" },
  ]);
  const web1 = await container("web1", hostB, [
    { network: NET1, address: "10.70.1.20", gateway: "10.70.1.3" },
    { network: INGRESS, address: "10.70.0.20" },
  ]);
  const web2 = await container("web2", hostA, [
    { network: NET1, address: "10.70.1.21", gateway: "10.70.1.2" },
  ]);
  const other = await container("other", hostB, [
    { network: NET2, address: "10.70.2.20", gateway: "10.70.2.3" },
  ]);
  await container("back_a", hostA, [{ network: NET2, address: "10.70.2.10", gateway: "10.70.2.2" }]);
  await httpd("web1", web1);
  await httpd("web2", web2);
  await httpd("other", other);
  // The LB table goes into the client's namespace with the next apply, as the engine does it.
  await apply(hostA, A, fullState(2), lbA());
  await apply(hostB, B, fullState(2));
  void client;
  await sleep(300);
}, 60_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  for (const ns of containers.values()) await deleteNetns(ns);
  await deleteNetns(hostA);
  await deleteNetns(hostB);
  await rm(www, { recursive: true, force: true });
});

describe("overlay networks across two hosts", () => {
  it("builds the devices and entries, and a second apply of the same state changes nothing", async () => {
    const links = (await inNetns(hostA, "ip", ["-d", "link", "show", `shox${NET1.slice(0, 10)}`])).stdout;
    expect(links).toMatch(/vxlan id 5001 local 192\.168\.77\.1 .*dstport 4789 nolearning/s);
    expect(links).toMatch(/proxy/);
    expect(links).toMatch(/mtu 1450/);
    const fdb = (await inNetns(hostA, "bridge", ["fdb", "show", "dev", `shox${NET1.slice(0, 10)}`])).stdout;
    expect(fdb).toContain(`${macForAddress("10.70.1.20")} dst 192.168.77.2`);
    const again = await apply(hostA, A, fullState(2), lbA());
    expect(again.changes).toEqual({ ip: [], bridge: [], createdBridges: [], removedLinks: [] });
    expect(again.version).toBe(2);
  });

  it("a task on host A reaches a task on host B over VXLAN", async () => {
    const ping = await bb(containers.get("client") as string, ["ping", "-c", "2", "-W", "2", "10.70.1.20"]);
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);
    const page = await wget(containers.get("client") as string, "http://10.70.1.20/");
    expect(page).toEqual({ code: 0, out: "web1" });
  });

  it("an endpoint on another overlay network cannot be reached, by L2 or through the host", async () => {
    const client = containers.get("client") as string;
    // Routed through host A (client's gateway) towards the back network: isolated.
    const r1 = await wget(client, "http://10.70.2.20/");
    expect(r1.code).not.toBe(0);
    // A container on "back" on host A does reach "other" on B: the network itself works.
    const r2 = await wget(containers.get("back_a") as string, "http://10.70.2.20/");
    expect(r2).toEqual({ code: 0, out: "other" });
    // ...and not the front network's tasks.
    const r3 = await wget(containers.get("back_a") as string, "http://10.70.1.20/");
    expect(r3.code).not.toBe(0);
  });

  it("the VIP spreads connections over both backends, on either host; an idle VIP refuses at once", async () => {
    const client = containers.get("client") as string;
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push((await wget(client, "http://10.70.1.5/")).out);
    expect(seen.filter((s) => s === "web1").length).toBe(3);
    expect(seen.filter((s) => s === "web2").length).toBe(3);
    const started = Date.now();
    const idle = await wget(client, "http://10.70.1.6/");
    expect(idle.code).not.toBe(0);
    expect(idle.out).toMatch(/refused/i);
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it("a stopped task leaves the VIP at the next apply", async () => {
    const s = fullState(3);
    s.tasks = s.tasks.map((t) => (t.taskId === "web2" ? { ...t, running: false } : t));
    await apply(hostA, A, s, lbA());
    const client = containers.get("client") as string;
    for (let i = 0; i < 4; i++) expect((await wget(client, "http://10.70.1.5/")).out).toBe("web1");
    await apply(hostA, A, fullState(4), lbA());
  });

  it("the routing mesh answers on host A's underlay address for a task on host B", async () => {
    // From host B's namespace (another machine on the underlay) to A's address: prerouting.
    expect(await wget(hostB, `http://${A.hostAddr}:8080/`)).toEqual({ code: 0, out: "web1" });
    // From host A itself: output.
    expect(await wget(hostA, `http://${A.hostAddr}:8080/`)).toEqual({ code: 0, out: "web1" });
    // The task saw host A's ingress address, not the client: replies went back over VXLAN.
  });

  it("removing everything leaves no device, entry or table of ours", async () => {
    for (const ns of containers.values()) await deleteNetns(ns);
    const lbGone = await apply(hostA, A, EMPTY);
    await apply(hostB, B, EMPTY);
    expect(lbGone.networks).toEqual([]);
    for (const h of [hostA, hostB]) {
      const left = await ours(h);
      expect(left.links, h).toBe("");
      expect(left.fdb, h).toBe("");
      expect(left.neigh, h).toBe("");
      expect(left.tables, h).not.toMatch(/shoal/);
    }
    // The underlay is untouched.
    const ping = await bb(hostB, ["ping", "-c", "1", "-W", "2", A.hostAddr]);
    expect(ping.code).toBe(0);
  });
});
