// Attachable overlay networks for plain containers on the lab (three hosts: m1 manages, w1 and
// w2 work): `docker run --network app` on a worker that has no part in the network yet gets an
// address from the leader, reaches a service whose tasks run on the other hosts by name, VIP and
// tasks.<name>, and a service task on another host reaches the container by its name and alias.
// `docker rm -f` gives the address back and the worker's devices for the network go; bad input
// and an unreachable leader are refused at create without leaving a container; `node rm` takes
// the removed node's attachments with it. Probes from the cluster side are one-shot services
// read back through `service logs`; busybox's wget crashes here, so nslookup and nc it is.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Lab } from "../../deploy/lab/lab.js";
import { api, shoaldPath } from "../helpers/daemon.js";
import { until } from "../helpers/cluster.js";
import { LabDocker, lookup, overlayLab, resolved, servedBy } from "../helpers/overlay-lab.js";
import { overlayBridgeName, overlayVxlanName } from "../../agent/engine/network/overlay/names.js";

let lab: Lab;
const cli = new LabDocker(() => lab);
const sock = (host: string): string => cli.sock(host);
const dk = cli.dk.bind(cli);
const ok = cli.ok.bind(cli);
const serviceProbe = cli.probe.bind(cli);

interface Task {
  NodeID: string;
  DesiredState: string;
  Status: { State: string };
  NetworksAttachments?: Array<{ Network: { ID: string }; Addresses: string[] }>;
}

const HTTPD = (text: string): string[] => [
  "sh",
  "-c",
  `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 80 -h /www`,
];
const WEB = ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"];

const get = (target: string): string =>
  `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${target} 80 | tail -1; echo`;
const fetchTimes = (name: string, times: number): string =>
  `ip=$(nslookup ${name} | sed -n '/^Name:/,$p' | awk '/^Address/{print $2}' | head -1); ` +
  `for i in $(seq 1 ${times}); do ${get("$ip")}; done`;
const ipOf = async (host: string, name: string): Promise<string> =>
  (await ok(host, ["inspect", "-f", '{{(index .NetworkSettings.Networks "app").IPAddress}}', name])).trim();

/** Whether a host has its bridge or VXLAN device for a network. */
async function hasDevices(host: string, networkId: string): Promise<boolean> {
  const links = (await lab.exec(host, ["ip", "-o", "link"])).stdout;
  return links.includes(overlayBridgeName(networkId)) || links.includes(overlayVxlanName(networkId));
}

async function localNetworks(host: string): Promise<string[]> {
  return (await ok(host, ["network", "ls", "--format", "{{.Name}}"])).split("\n").filter(Boolean);
}

/** A container on w2 asking for `ip` on app starts: the address is free in the cluster. */
const addressFree = async (host: string, ip: string): Promise<true | undefined> =>
  (await dk(host, ["run", "--rm", "--network", "app", "--ip", ip, "busybox", "true"])).code === 0
    ? true
    : undefined;

let appId = "";

beforeAll(async () => {
  lab = await overlayLab("a");
  appId = (
    await ok("m1", ["network", "create", "-d", "overlay", "--attachable", "--subnet", "10.212.0.0/24", "app"])
  ).trim();
  await ok("m1", ["network", "create", "-d", "overlay", "--subnet", "10.213.0.0/24", "closed"]);
  // Two web tasks, on m1 and w1: none on w2, where the plain containers run.
  await ok("m1", [
    "service",
    "create",
    "--detach",
    "--name",
    "web",
    "--replicas",
    "2",
    "--network",
    "app",
    "--constraint",
    "node.hostname!=w2",
    "--stop-grace-period",
    "1s",
    "busybox",
    ...WEB,
  ]);
  await until(
    "2 web tasks running",
    async () => {
      const f = encodeURIComponent(JSON.stringify({ service: ["web"] }));
      const ts = (await api(sock("m1"), "GET", `/tasks?filters=${f}`)).json<Task[]>();
      const live = ts.filter((t) => t.DesiredState === "running" && t.Status.State === "running");
      return live.length === 2 ? true : undefined;
    },
    90_000,
  );
}, 300_000);

afterAll(async () => {
  await lab?.down();
}, 120_000);

describe("plain containers on an attachable overlay network, across the lab", { timeout: 240_000 }, () => {
  it("bad input on a worker is refused at create (403 naming the fix) and leaves no container", async () => {
    const r = await dk("w2", ["run", "-d", "--name", "bad", "--network", "closed", "busybox", "true"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("network closed is not manually attachable");
    const raw = await api(sock("w2"), "POST", "/containers/create?name=bad", {
      Image: "busybox",
      HostConfig: { NetworkMode: "closed" },
    });
    expect(raw.status).toBe(403);
    expect(await ok("w2", ["ps", "-a", "--filter", "name=bad", "--format", "{{.Names}}"])).toBe("");
    expect(await localNetworks("w2")).not.toContain("closed");
  });

  it("docker run --network app on a worker: it reaches web by name, VIP and tasks.web on the other hosts; a task on another host reaches it by name", async () => {
    expect(await localNetworks("w2")).not.toContain("app");
    await ok("w2", [
      "run",
      "-d",
      "--name",
      "c1",
      "--network",
      "app",
      "--network-alias",
      "cee",
      "busybox",
      ...HTTPD("c1-ok"),
    ]);
    const c1 = await ipOf("w2", "c1");
    expect(c1).toMatch(/^10\.212\.0\.\d+$/);
    // The worker shows the network now that a local container uses it; the manager still inspects it.
    expect(await localNetworks("w2")).toContain("app");
    expect(await hasDevices("w2", appId)).toBe(true);
    const inspect = JSON.parse(await ok("m1", ["network", "inspect", "app"])) as Array<{
      Id: string;
      Attachable: boolean;
      Scope: string;
    }>;
    expect(inspect[0]).toMatchObject({ Id: appId, Attachable: true, Scope: "swarm" });

    const service = (await api(sock("m1"), "GET", "/services/web")).json<{
      Endpoint: { VirtualIPs: Array<{ NetworkID: string; Addr: string }> };
    }>();
    const vip = service.Endpoint.VirtualIPs.find((v) => v.NetworkID === appId)!.Addr.split("/")[0];
    const f = encodeURIComponent(JSON.stringify({ service: ["web"], "desired-state": ["running"] }));
    const taskIps = (await api(sock("m1"), "GET", `/tasks?filters=${f}`))
      .json<Task[]>()
      .flatMap((t) => t.NetworksAttachments ?? [])
      .filter((a) => a.Network.ID === appId)
      .map((a) => a.Addresses[0].split("/")[0])
      .sort();
    expect(taskIps).toHaveLength(2);

    const out = await ok("w2", [
      "run",
      "--rm",
      "--network",
      "app",
      "busybox",
      "sh",
      "-c",
      `${lookup("web")}; ${lookup("tasks.web")}; ${fetchTimes("web", 8)}; ${get(vip)}; ${get(taskIps[0])}; ${get(taskIps[1])}`,
    ]);
    expect(resolved(out, "web")).toEqual([vip]);
    expect(resolved(out, "tasks.web")).toEqual(taskIps);
    // Both tasks answer through the VIP and directly.
    expect(servedBy(out).size).toBe(2);

    const logs = await serviceProbe("w1", "app", `${lookup("c1")}; ${lookup("cee")}; ${get("c1")}`);
    expect(resolved(logs, "c1")).toEqual([c1]);
    expect(resolved(logs, "cee")).toEqual([c1]);
    expect(logs).toContain("c1-ok");
  });

  it("docker rm -f gives the address back and the worker's devices for the network go", async () => {
    const c1 = await ipOf("w2", "c1");
    await ok("w2", ["rm", "-f", "c1"]);
    await until("w2 without app", async () =>
      !(await hasDevices("w2", appId)) && !(await localNetworks("w2")).includes("app") ? true : undefined,
    );
    // Anyone in the cluster may have the address now.
    await until("c1's address free", () => addressFree("w1", c1), 30_000);
    await until("w2 still without app", async () => (!(await hasDevices("w2", appId)) ? true : undefined));
  });

  it("with the leader unreachable, docker run on a worker is a 503 saying so and leaves no container", async () => {
    await lab.stop("m1");
    try {
      // The worker's session ends with the manager's port.
      await new Promise((r) => setTimeout(r, 2000));
      const r = await dk("w2", ["run", "-d", "--name", "lonely", "--network", "app", "busybox", "true"]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("no connection to the cluster's leader");
      expect(await ok("w2", ["ps", "-a", "--filter", "name=lonely", "--format", "{{.Names}}"])).toBe("");
    } finally {
      await lab.start("m1", shoaldPath);
    }
    await until(
      "w2 ready again",
      async () => {
        const r = await dk("w2", ["run", "--rm", "--network", "app", "busybox", "true"]);
        return r.code === 0 ? true : undefined;
      },
      90_000,
    );
  });

  it("node rm takes a removed node's attachments with it", async () => {
    await ok("w2", ["run", "-d", "--name", "c3", "--network", "app", "busybox", "sleep", "100000"]);
    const c3 = await ipOf("w2", "c3");
    await lab.kill("w2");
    await until(
      "w2 down",
      async () => {
        const nodes = (await api(sock("m1"), "GET", "/nodes")).json<
          Array<{ Description: { Hostname: string }; Status: { State: string } }>
        >();
        return nodes.find((n) => n.Description.Hostname === "w2")?.Status.State === "down" ? true : undefined;
      },
      30_000,
    );
    // Still held while the node is only down (it may come back with its container).
    expect(await addressFree("w1", c3)).toBeUndefined();
    await ok("m1", ["node", "rm", "w2"]);
    await until("c3's address free", () => addressFree("w1", c3), 30_000);
  });
});
