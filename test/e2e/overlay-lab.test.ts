// Overlay networks end to end on the lab (issue 7): services on different hosts reach each other
// by name over VXLAN, the VIP spreads requests over every task, tasks.<name> lists them, DNS
// and VIP follow scaling and a killed host, the routing mesh answers on every node, two overlay
// networks are isolated, a UDP flow leaves a killed task, and removing everything leaves
// nothing behind. Probes are one-shot services pinned to a host; what they saw is read back
// through `service logs`.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import type { Lab } from "../../deploy/lab/lab.js";
import { api, shoaldPath } from "../helpers/daemon.js";
import { shoal } from "../helpers/cli.js";
import { until } from "../helpers/cluster.js";
import { LabDocker, lookup, overlayLab, resolved, servedBy } from "../helpers/overlay-lab.js";
import { overlayBridgeName, overlayVxlanName } from "../../agent/engine/network/overlay/names.js";

let lab: Lab;
const cli = new LabDocker(() => lab);
const sock = (host: string): string => cli.sock(host);
const dk = cli.dk.bind(cli);
const ok = cli.ok.bind(cli);
const probe = cli.probe.bind(cli);

interface Task {
  ID: string;
  NodeID: string;
  DesiredState: string;
  Status: { State: string; Err?: string; ContainerStatus?: { ContainerID: string } };
  NetworksAttachments?: Array<{ Network: { ID: string; Spec?: { Name?: string } }; Addresses: string[] }>;
}

async function tasks(service: string): Promise<Task[]> {
  const f = encodeURIComponent(JSON.stringify({ service: [service], "desired-state": ["running"] }));
  const r = await api(sock("m1"), "GET", `/tasks?filters=${f}`);
  return r.status === 200 ? r.json<Task[]>() : [];
}

async function running(service: string, n: number): Promise<Task[]> {
  return until(
    `${n} running tasks of ${service}`,
    async () => {
      const ts = (await tasks(service)).filter((t) => t.DesiredState === "running");
      return ts.length === n && ts.every((t) => t.Status.State === "running") ? ts : undefined;
    },
    60_000,
  );
}

/** The task addresses of a service on a network (no prefix), sorted. */
function addresses(ts: Task[], network: string): string[] {
  return ts
    .flatMap((t) => t.NetworksAttachments ?? [])
    .filter((a) => a.Network.Spec?.Name === network)
    .map((a) => a.Addresses[0].split("/")[0])
    .sort();
}

/**
 * Shell that fetches http://<name>/ `times` times and prints each answer's last line. busybox's
 * static wget crashes in glibc's resolver, so the name goes through nslookup and the request
 * through nc.
 */
const fetch = (name: string, times: number): string =>
  `ip=$(nslookup ${name} | sed -n '/^Name:/,$p' | awk '/^Address/{print $2}' | head -1); ` +
  `for i in $(seq 1 ${times}); do printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $ip 80 | tail -1; echo; done`;

/** An HTTP GET from inside a lab host's namespace (the host's busybox nc). */
async function hostGet(from: string, addr: string, port: number): Promise<string> {
  const r = await lab
    .exec(from, ["sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | busybox nc -w 3 ${addr} ${port}`], 10_000)
    .catch(() => ({ stdout: "" }));
  return r.stdout;
}

beforeAll(async () => {
  lab = await overlayLab("o");
}, 240_000);

/**
 * Two sleeping tasks of a service (not replaced when they die) off w2, a UDP server run by the
 * test in each task's namespace, and a client on w2 that sends from one socket every 100 ms:
 * to the VIP from a task on w2 ("vip"), or to w2's own published port from w2's namespace
 * ("mesh"). NAT picks a backend once per flow, so unless the flow's conntrack entry is
 * forgotten when its task leaves, the client keeps sending to the dead task for as long as it
 * sends. Kills the task the flow went to and waits for the other to answer.
 */
async function udpFlowLeavesKilledTask(mode: "vip" | "mesh"): Promise<void> {
  const name = `udp${mode}`;
  const create = (service: string, args: string[]): Promise<string> =>
    ok("m1", ["service", "create", "--detach", "--name", service, ...args]);
  await create(name, [
    ...(mode === "vip" ? ["--network", "appnet"] : ["--publish", "published=5353,target=5000,protocol=udp"]),
    "--replicas",
    "2",
    "--restart-condition",
    "none",
    "--constraint",
    "node.hostname!=w2",
    "busybox",
    "sleep",
    "100000",
  ]);
  const clientService = `${name}client`;
  if (mode === "vip")
    await create(clientService, [
      "--network",
      "appnet",
      "--constraint",
      "node.hostname==w2",
      "busybox",
      "sleep",
      "100000",
    ]);
  try {
    const hostOf = new Map(
      (await api(sock("m1"), "GET", "/nodes"))
        .json<Array<{ ID: string; Description: { Hostname: string } }>>()
        .map((n) => [n.ID, n.Description.Hostname]),
    );
    const where = async (t: Task): Promise<{ host: string; cid: string; pid: number }> => {
      const host = hostOf.get(t.NodeID) as string;
      const cid = t.Status.ContainerStatus?.ContainerID as string;
      const c = (await api(sock(host), "GET", `/containers/${cid}/json`)).json<{ State: { Pid: number } }>();
      return { host, cid, pid: c.State.Pid };
    };
    const backends = await Promise.all((await running(name, 2)).map(where));
    let clientNetns: string;
    let target: string;
    if (mode === "vip") {
      const [client] = await Promise.all((await running(clientService, 1)).map(where));
      clientNetns = `/proc/${client.pid}/ns/net`;
      const netId = JSON.parse(await ok("m1", ["network", "inspect", "appnet"]))[0].Id as string;
      target = JSON.parse(await ok("m1", ["service", "inspect", name]))[0]
        .Endpoint.VirtualIPs.find((v: { NetworkID: string }) => v.NetworkID === netId)
        .Addr.split("/")[0] as string;
    } else {
      clientNetns = `/run/netns/${lab.host("w2").netns}`;
      target = lab.host("w2").address;
    }
    const port = mode === "vip" ? 5000 : 5353;
    const inNetns = (netns: string, code: string): ChildProcess => {
      const child = spawn("nsenter", [`--net=${netns}`, process.execPath, "-e", code], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      children.push(child);
      return child;
    };
    const servers = backends.map((b) =>
      inNetns(
        `/proc/${b.pid}/ns/net`,
        `const s = require("dgram").createSocket("udp4");` +
          `s.on("message", (m, r) => s.send(${JSON.stringify(b.cid.slice(0, 12))}, r.port, r.address));` +
          `s.bind(5000);`,
      ),
    );
    const sender = inNetns(
      clientNetns,
      `const s = require("dgram").createSocket("udp4");` +
        `s.on("message", (m) => console.log(m.toString()));` +
        `setInterval(() => s.send("ping", ${port}, ${JSON.stringify(target)}), 100);`,
    );
    let heard = "";
    sender.stdout?.on("data", (c: Buffer) => (heard += c.toString()));
    const answers = (): string[] => heard.split("\n").filter((l) => l !== "");
    const first = await until(`the first answer through the ${mode}`, async () => answers()[0], 30_000);
    const pinned = backends.findIndex((b) => b.cid.startsWith(first));
    expect(pinned).toBeGreaterThanOrEqual(0);
    const other = backends[1 - pinned];
    // Every answer so far came from the one backend the flow was given.
    expect(new Set(answers())).toEqual(new Set([first]));

    servers[pinned].kill("SIGKILL");
    await ok(backends[pinned].host, ["kill", backends[pinned].cid]);
    const before = answers().length;
    await until(
      "an answer from the live task",
      async () => (answers().slice(before).includes(other.cid.slice(0, 12)) ? true : undefined),
      30_000,
    );
  } finally {
    for (const c of children.splice(0)) c.kill("SIGKILL");
    await dk("m1", ["service", "rm", name, ...(mode === "vip" ? [clientService] : [])]);
  }
}

/** Processes a test runs inside containers' namespaces: killed whatever the test's outcome. */
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
  await lab?.down();
}, 120_000);

describe("overlay networks on the lab", { timeout: 240_000 }, () => {
  it("a client on one host reaches a service on the others by name; the VIP spreads; tasks.<name> lists them", async () => {
    await ok("m1", ["network", "create", "-d", "overlay", "--subnet", "10.210.0.0/24", "appnet"]);
    await ok("m1", [
      "service",
      "create",
      "--detach",
      "--name",
      "web",
      "--replicas",
      "2",
      "--network",
      "appnet",
      "--constraint",
      "node.hostname!=w2",
      "busybox",
      "sh",
      "-c",
      "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    const web = await running("web", 2);
    const taskIps = addresses(web, "appnet");
    expect(taskIps).toHaveLength(2);
    const out = await probe("w2", "appnet", `${fetch("web", 8)}; ${lookup("tasks.web")}; ${lookup("web")}`);
    expect(servedBy(out).size).toBe(2);
    expect(resolved(out, "tasks.web")).toEqual(taskIps);
    const vip = resolved(out, "web");
    expect(vip).toHaveLength(1);
    expect(taskIps).not.toContain(vip[0]);
  });

  it("a host whose overlay devices drifted is corrected", async () => {
    const appnet = (await ok("m1", ["network", "inspect", "-f", "{{.Id}}", "appnet"])).trim();
    const vxlan = overlayVxlanName(appnet);
    await lab.exec("w1", ["ip", "link", "del", vxlan]);
    await until(
      `${vxlan} back on w1`,
      async () => ((await lab.exec("w1", ["ip", "-o", "link"])).stdout.includes(vxlan) ? true : undefined),
      30_000,
    );
    const out = await probe("w2", "appnet", fetch("web", 6));
    expect(servedBy(out).size).toBe(2);
  });

  it("shoal service create --network --endpoint-mode dnsrr: the name resolves to every task", async () => {
    const r = await shoal(sock("m1"), [
      "service",
      "create",
      "--detach",
      "--name",
      "rr",
      "--replicas",
      "2",
      "--network",
      "name=appnet,alias=roundrobin",
      "--endpoint-mode",
      "dnsrr",
      "busybox",
      "sleep",
      "100000",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const ips = addresses(await running("rr", 2), "appnet");
    const out = await probe("w2", "appnet", `${lookup("rr")}; ${lookup("roundrobin")}`);
    expect(resolved(out, "rr")).toEqual(ips);
    expect(resolved(out, "roundrobin")).toEqual(ips);
    await ok("m1", ["service", "rm", "rr"]);
  });

  it("after scaling, DNS and the VIP answer only live tasks on every host", async () => {
    await ok("m1", ["service", "scale", "--detach", "web=3"]);
    const three = addresses(await running("web", 3), "appnet");
    for (const host of ["m1", "w2"]) {
      const out = await probe(host, "appnet", lookup("tasks.web"));
      expect(resolved(out, "tasks.web")).toEqual(three);
    }
    await ok("m1", ["service", "scale", "--detach", "web=1"]);
    const one = addresses(await running("web", 1), "appnet");
    const out = await probe("w2", "appnet", `${lookup("tasks.web")}; ${fetch("web", 4)}`);
    expect(resolved(out, "tasks.web")).toEqual(one);
    expect(servedBy(out).size).toBe(1);
  });

  it("scaling down drops no request: a task leaves every host's rules before it is stopped", async () => {
    await ok("m1", ["service", "scale", "--detach", "web=3"]);
    await running("web", 3);
    // A client that asks the VIP every 100 ms for about 6 s, pinned to the host without web tasks.
    await ok("m1", [
      "service",
      "create",
      "--detach",
      "--name",
      "hammer",
      "--network",
      "appnet",
      "--constraint",
      "node.hostname==w2",
      "--restart-condition",
      "none",
      "busybox",
      "sh",
      "-c",
      `ip=$(nslookup web | sed -n '/^Name:/,$p' | awk '/^Address/{print $2}' | head -1); ` +
        `for i in $(seq 1 60); do printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $ip 80 | tail -1; echo; usleep 100000; done; echo HAMMER-DONE`,
    ]);
    await running("hammer", 1);
    await ok("m1", ["service", "scale", "--detach", "web=1"]);
    const out = await until(
      "hammer done",
      async () => {
        const r = await dk("m1", ["service", "logs", "--raw", "hammer"]);
        return r.stdout.includes("HAMMER-DONE") ? r.stdout : undefined;
      },
      60_000,
    );
    await dk("m1", ["service", "rm", "hammer"]);
    const answers = out.split("\n").filter((l) => /^[0-9a-f]{12}$/.test(l.trim()));
    expect(answers).toHaveLength(60);
  });

  it("after a task's host is killed, DNS and the VIP answer only live tasks on every host", async () => {
    // Three tasks on two eligible hosts (w2 is excluded): spread puts some on each.
    await ok("m1", ["service", "scale", "--detach", "web=3"]);
    await until("web on m1 and w1", async () => {
      const ts = await running("web", 3);
      const nodes = await api(sock("m1"), "GET", "/nodes");
      const names = new Map(
        nodes
          .json<Array<{ ID: string; Description: { Hostname: string } }>>()
          .map((n) => [n.ID, n.Description.Hostname]),
      );
      const on = new Set(ts.map((t) => names.get(t.NodeID)));
      return on.has("m1") && on.has("w1") ? true : undefined;
    });
    await lab.kill("w1");
    try {
      // Its task is replaced on m1 (w2 is excluded by the constraint).
      let seen = "";
      const live = await until(
        "web replaced",
        async () => {
          const ts = (await tasks("web")).filter(
            (t) => t.DesiredState === "running" && t.Status.State === "running",
          );
          const nodes = await api(sock("m1"), "GET", "/nodes");
          const w1 = nodes
            .json<Array<{ ID: string; Description: { Hostname: string } }>>()
            .find((n) => n.Description.Hostname === "w1");
          seen = JSON.stringify(
            (await tasks("web")).map((t) => [
              t.NodeID === w1?.ID ? "w1" : t.NodeID.slice(0, 4),
              t.DesiredState,
              t.Status.State,
              addresses([t], "appnet"),
            ]),
          );
          return ts.length === 3 && ts.every((t) => t.NodeID !== w1?.ID)
            ? addresses(ts, "appnet")
            : undefined;
        },
        30_000,
      ).catch((e: unknown) => {
        throw new Error(`${String(e)}: ${seen}`);
      });
      expect(live).toHaveLength(3);
      for (const host of ["m1", "w2"]) {
        const out = await probe(host, "appnet", `${lookup("tasks.web")}; ${fetch("web", 9)}`);
        expect(resolved(out, "tasks.web")).toEqual(live);
        expect(servedBy(out).size).toBe(3);
      }
    } finally {
      await lab.start("w1", shoaldPath);
    }
    await until("w1 ready", async () => {
      const nodes = (await api(sock("m1"), "GET", "/nodes")).json<
        Array<{ Description: { Hostname: string }; Status: { State: string } }>
      >();
      return nodes.find((n) => n.Description.Hostname === "w1")?.Status.State === "ready" ? true : undefined;
    });
  });

  it("the routing mesh answers on every node, including nodes without a task", async () => {
    await ok("m1", [
      "service",
      "create",
      "--detach",
      "--name",
      "mesh",
      "--replicas",
      "1",
      "--publish",
      "8080:80",
      "--constraint",
      "node.hostname==w1",
      "busybox",
      "sh",
      "-c",
      "mkdir -p /www && echo mesh-ok > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    await running("mesh", 1);
    for (const h of lab.state.hosts) {
      // Asked from another host, and from the host itself.
      const answer = await until(`mesh on ${h.name}`, async () => {
        const [there, here] = [await hostGet("m1", h.address, 8080), await hostGet(h.name, h.address, 8080)];
        return there.includes("mesh-ok") && here.includes("mesh-ok") ? there : undefined;
      });
      expect(answer).toContain("mesh-ok");
    }
  });

  it("two overlay networks are isolated from each other", async () => {
    await ok("m1", ["network", "create", "-d", "overlay", "--subnet", "10.211.0.0/24", "othernet"]);
    const webIp = addresses(await running("web", 3), "appnet")[0];
    const out = await probe(
      "w2",
      "othernet",
      `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 ${webIp} 80 | grep -q 200 && echo REACHED || echo UNREACHABLE`,
    );
    expect(out).toContain("UNREACHABLE");
    expect(out).not.toContain("REACHED\n");
  });

  it("a UDP flow to the VIP moves to a live task when its task is killed: its conntrack entry is forgotten", async () => {
    await udpFlowLeavesKilledTask("vip");
  });

  it("a UDP flow through the routing mesh moves to a live task when its task is killed", async () => {
    await udpFlowLeavesKilledTask("mesh");
  });

  it("removing everything leaves no VXLAN device, bridge, nftables rule or address behind", async () => {
    for (const s of ["web", "mesh"]) await ok("m1", ["service", "rm", s]);
    await until("tasks gone", async () => ((await tasks("web")).length === 0 ? true : undefined));
    await until("appnet removable", async () =>
      (await dk("m1", ["network", "rm", "appnet"])).code === 0 ? true : undefined,
    );
    await ok("m1", ["network", "rm", "othernet"]);
    // Only the ingress network stays (every node keeps its endpoint on it).
    const ingress = (await ok("m1", ["network", "inspect", "-f", "{{.Id}}", "ingress"])).trim();
    const kept = [overlayBridgeName(ingress), overlayVxlanName(ingress)];
    for (const h of lab.state.hosts) {
      await until(`${h.name} clean`, async () => {
        const links = (await lab.exec(h.name, ["ip", "-o", "link"])).stdout;
        const ours = [...links.matchAll(/^\d+: (sho[vx][0-9a-f]+)[@:]/gm)].map((m) => m[1]).sort();
        const rules = (await lab.exec(h.name, ["nft", "list", "ruleset"])).stdout;
        return JSON.stringify(ours) === JSON.stringify([...kept].sort()) &&
          !rules.includes("10.210.") &&
          !rules.includes("10.211.") &&
          !/dport 8080/.test(rules)
          ? true
          : undefined;
      });
    }
    const ls = await ok("m1", ["network", "ls", "--filter", "driver=overlay", "--format", "{{.Name}}"]);
    expect(ls.split("\n").filter(Boolean)).toEqual(["ingress"]);
  });
});
