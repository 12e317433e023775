// The cluster end to end on the lab: 3 managers and 2 workers (plus a spare host that joins
// later), each a real shoald in its own network namespace, linked over the lab's switch with
// mutual TLS; a registry on the switch. Tests run in order on one cluster, as an operator's day
// would: services spread, scale, honour constraints and drain, survive killed workers, a killed
// leader, a cut manager and a daemon killed with -9.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Lab } from "../../deploy/lab/lab.js";
import { formCluster, joinCluster } from "../../deploy/lab/cluster.js";
import { api, repoRoot } from "../helpers/daemon.js";
import { buildBusyboxArchive } from "../helpers/busybox.js";
import { docker, shoal } from "../helpers/cli.js";
import { until } from "../helpers/cluster.js";
import { pidAlive } from "../../agent/engine/container/run.js";

const shoald = join(repoRoot, "dist/daemon/main.js");
let lab: Lab;

interface Task {
  ID: string;
  NodeID: string;
  Slot: number;
  DesiredState: string;
  Status: { State: string; Err?: string; ContainerStatus?: { ContainerID?: string } };
}
interface NodeView {
  ID: string;
  Description: { Hostname: string };
  Spec: { Role: string; Availability: string };
  Status: { State: string };
  ManagerStatus?: { Leader?: boolean; Reachability: string };
}
interface ServiceView {
  ID: string;
  Version: { Index: number };
  Spec: Record<string, unknown> & { Mode: { Replicated?: { Replicas: number } } };
}

const sock = (host: string): string => lab.host(host).socket;
const dk = (host: string, args: string[]) => docker(sock(host), args);

async function nodes(via = "m1"): Promise<NodeView[]> {
  // A manager that cannot confirm its reads (no leader reachable) answers 503: it shows nothing.
  const r = await api(sock(via), "GET", "/nodes");
  return r.status === 200 ? r.json<NodeView[]>() : [];
}

/** Node id → lab host name (hostnames are the lab's host names). */
async function hostNames(via = "m1"): Promise<Map<string, string>> {
  return new Map((await nodes(via)).map((n) => [n.ID, n.Description.Hostname]));
}

/**
 * Wait until `via` shows `host` as a ready, reachable manager. On a timeout the error says what
 * `via` last showed and what the two daemons logged about Raft and sessions: these waits have
 * failed only under CI's load.
 */
async function reachableManager(host: string, via: string, what: string, ms = 40_000): Promise<void> {
  let last = "nothing";
  await until(
    what,
    async () => {
      const n = (await nodes(via).catch(() => [])).find((x) => x.Description.Hostname === host);
      last = JSON.stringify({ state: n?.Status.State, manager: n?.ManagerStatus });
      return n?.Status.State === "ready" && n.ManagerStatus?.Reachability === "reachable" ? true : undefined;
    },
    ms,
    () => `${host} as ${via} sees it: ${last}`,
  ).catch(async (e: unknown) => {
    const tail = async (h: string): Promise<string> =>
      (await readFile(join(lab.host(h).dir, "shoald.log"), "utf8").catch(() => ""))
        .split("\n")
        .filter((l) => /role|raft|member|learner|certificate|leader|session|heartbeat|warn|error/i.test(l))
        .slice(-25)
        .join("\n");
    throw new Error(`${String(e)}\n--- ${host} ---\n${await tail(host)}\n--- ${via} ---\n${await tail(via)}`);
  });
}

async function tasks(service: string, via = "m1"): Promise<Task[]> {
  const f = encodeURIComponent(JSON.stringify({ service: [service] }));
  const r = await api(sock(via), "GET", `/tasks?filters=${f}`);
  return r.status === 200 ? r.json<Task[]>() : [];
}

/**
 * The hosts (by name, sorted) of a service's running tasks, once exactly `n` run as they should
 * and `accept` agrees (a change the test made must have taken effect, not just any settled state).
 */
async function runningOn(
  service: string,
  n: number,
  via = "m1",
  accept: (hosts: string[]) => boolean = () => true,
  ms = 60_000,
): Promise<string[]> {
  let seen = "";
  return until(
    `${n} running tasks of ${service}`,
    async () => {
      const names = await hostNames(via).catch(() => new Map<string, string>());
      const all = await tasks(service, via).catch(() => []);
      seen = all
        .map(
          (t) => `${t.Slot} ${names.get(t.NodeID)} ${t.DesiredState}/${t.Status.State} ${t.Status.Err ?? ""}`,
        )
        .join("; ");
      const ts = all.filter((t) => t.DesiredState === "running");
      const running = ts.filter((t) => t.Status.State === "running");
      if (running.length !== n || ts.length !== n) return undefined;
      const hosts = running.map((t) => names.get(t.NodeID) ?? t.NodeID).sort();
      return accept(hosts) ? hosts : undefined;
    },
    ms,
  ).catch((e: unknown) => {
    throw new Error(`${String(e)}; tasks seen via ${via}: ${seen}`);
  });
}

async function createService(via: string, spec: Record<string, unknown>): Promise<string> {
  const r = await api(sock(via), "POST", "/services/create", spec);
  expect(r.status, r.body.toString()).toBe(201);
  return r.json<{ ID: string }>().ID;
}

async function scale(via: string, service: string, replicas: number): Promise<void> {
  const s = (await api(sock(via), "GET", `/services/${service}`)).json<ServiceView>();
  const spec = { ...s.Spec, Mode: { Replicated: { Replicas: replicas } } };
  const r = await api(sock(via), "POST", `/services/${service}/update?version=${s.Version.Index}`, spec);
  expect(r.status, r.body.toString()).toBe(200);
}

const sleeper = (name: string, extra: Record<string, unknown> = {}, replicas?: number) => ({
  Name: name,
  TaskTemplate: {
    ContainerSpec: { Image: "busybox:latest", Args: ["sleep", "100000"], StopGracePeriod: 1e9 },
    ...extra,
  },
  Mode: replicas === undefined ? { Global: {} } : { Replicated: { Replicas: replicas } },
});

async function leader(): Promise<string> {
  return until("a leader", async () => {
    for (const h of ["m1", "m2", "m3"]) {
      const ns = await nodes(h).catch(() => []);
      const l = ns.find((n) => n.ManagerStatus?.Leader);
      if (l) return l.Description.Hostname;
    }
    return undefined;
  });
}

async function nodeState(host: string, via: string): Promise<string | undefined> {
  return (await nodes(via).catch(() => [])).find((n) => n.Description.Hostname === host)?.Status.State;
}

/** Container ids and start times of a host's task containers. */
async function taskContainers(host: string): Promise<Map<string, string>> {
  const r = await api(
    sock(host),
    "GET",
    "/containers/json?filters=" + encodeURIComponent('{"label":["com.docker.swarm.task.id"]}'),
  );
  const out = new Map<string, string>();
  for (const c of r.json<Array<{ Id: string }>>()) {
    const inspect = (await api(sock(host), "GET", `/containers/${c.Id}/json`)).json<{
      State: { StartedAt: string };
    }>();
    out.set(c.Id, inspect.State.StartedAt);
  }
  return out;
}

beforeAll(async () => {
  lab = await Lab.up({
    name: `c${randomBytes(3).toString("hex")}`,
    managers: 3,
    workers: 3,
    root: await mkdtemp("/tmp/shoal-lab-"),
    octet: 100 + Math.floor(Math.random() * 100),
    shoald,
    registry: true,
  });
  // w3 stays out for now: it joins later (the global service must reach it).
  await formCluster(lab, ["m2", "m3", "w1", "w2"]);
  const archive = await buildBusyboxArchive();
  await Promise.all(
    lab.state.hosts.map(async (h) => {
      const r = await api(h.socket, "POST", "/images/load", archive);
      if (r.status !== 200) throw new Error(`loading busybox on ${h.name}: ${r.body.toString()}`);
    }),
  );
}, 240_000);

afterAll(async () => {
  await lab?.down();
}, 120_000);

describe("cluster on the lab", { timeout: 180_000 }, () => {
  it("has 3 managers with one leader and 2 workers, all ready; a worker's CLI gets Docker's refusal", async () => {
    const ns = await until("5 ready nodes", async () => {
      const n = await nodes();
      return n.length === 5 && n.every((x) => x.Status.State === "ready") ? n : undefined;
    });
    expect(ns.filter((n) => n.Spec.Role === "manager")).toHaveLength(3);
    expect(ns.filter((n) => n.ManagerStatus?.Leader)).toHaveLength(1);
    // A worker has no control API (swarmkit's rule): its socket refuses, a follower's answers.
    const onWorker = await dk("w1", ["node", "ls"]);
    expect(onWorker.code).not.toBe(0);
    expect(onWorker.stderr).toContain("Worker nodes can't be used to view or modify cluster state.");
    const ls = await dk("m2", ["node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}"]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.split("\n").filter(Boolean).sort()).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^w1 Ready $/),
        expect.stringMatching(/^m\d Ready (Leader|Reachable)$/),
      ]),
    );
  });

  it("refuses a wrong join token and one of another cluster, and writes nothing", async () => {
    const swarm = (await api(sock("m1"), "GET", "/swarm")).json<{ JoinTokens: { Worker: string } }>();
    const good = swarm.JoinTokens.Worker;
    const wrongSecret = good.slice(0, -25) + "0".repeat(25);
    const r1 = await joinCluster(lab, "w3", wrongSecret);
    expect(r1.status).toBe(403);
    expect(r1.body).toMatch(/token/);
    const otherCluster = `SWMTKN-1-${"1".repeat(50)}-${good.slice(-25)}`;
    const r2 = await joinCluster(lab, "w3", otherCluster);
    expect(r2.status).toBe(403);
    expect(r2.body).toContain("another cluster");
    expect(await nodes()).toHaveLength(5);
    const info = (await api(sock("w3"), "GET", "/info")).json<{ Swarm: { LocalNodeState: string } }>();
    expect(info.Swarm.LocalNodeState).toBe("inactive");
    const data = await readdir(join(lab.host("w3").dir, "data"));
    expect(data).not.toContain("swarm");
  });

  it("spreads 6 replicas over the nodes; scales to 12 and to 2", async () => {
    await createService("m2", sleeper("web", {}, 6));
    const on = await runningOn("web", 6);
    expect(new Set(on).size).toBe(5);
    await scale("m3", "web", 12);
    const twelve = await runningOn("web", 12, "m1", (h) => new Set(h).size === 5);
    for (const h of ["m1", "m2", "m3", "w1", "w2"])
      expect(twelve.filter((x) => x === h).length).toBeGreaterThanOrEqual(2);
    await scale("m2", "web", 2);
    await runningOn("web", 2);
  });

  it("honours constraints and drain", async () => {
    await createService("m1", sleeper("onworkers", { Placement: { Constraints: ["node.role==worker"] } }, 4));
    const on = await runningOn("onworkers", 4);
    expect(new Set(on)).toEqual(new Set(["w1", "w2"]));
    const w1 = (await nodes()).find((n) => n.Description.Hostname === "w1") as NodeView & {
      Version: { Index: number };
    };
    const drain = await dk("m2", ["node", "update", "--availability", "drain", w1.ID]);
    expect(drain.code, drain.stderr).toBe(0);
    expect(await runningOn("onworkers", 4, "m1", (h) => !h.includes("w1"))).toEqual(["w2", "w2", "w2", "w2"]);
    const active = await dk("m2", ["node", "update", "--availability", "active", w1.ID]);
    expect(active.code, active.stderr).toBe(0);
    await dk("m1", ["service", "rm", "onworkers"]);
  });

  it("runs a global service on every node, including one that joins later", async () => {
    await createService("m1", sleeper("everywhere"));
    expect(await runningOn("everywhere", 5)).toEqual(["m1", "m2", "m3", "w1", "w2"]);
    // The real docker CLI joins it, as an operator would.
    const token = (await dk("m2", ["swarm", "join-token", "-q", "worker"])).stdout.trim();
    const w3 = lab.host("w3");
    const join = await dk("w3", [
      "swarm",
      "join",
      "--token",
      token,
      "--advertise-addr",
      w3.address,
      `${lab.host("m2").address}:2377`,
    ]);
    expect(join.code, join.stderr).toBe(0);
    expect(join.stdout).toContain("This node joined a swarm as a worker");
    expect(await runningOn("everywhere", 6)).toEqual(["m1", "m2", "m3", "w1", "w2", "w3"]);
    // One task per node: shoal's `service ps` shows six slots, no history lines.
    const ps = await shoal(sock("m3"), ["service", "ps", "everywhere"]);
    expect(ps.code, ps.stderr).toBe(0);
    expect(ps.stdout.split("\n").filter((l) => l.includes("everywhere."))).toHaveLength(6);
    expect(ps.stdout).not.toContain("\\_");
  });

  it("starts a service whose image is only in the lab's registry on every node", async () => {
    const reg = lab.state.registry?.addr as string;
    const ref = `${reg}/e2e/busybox:1`;
    expect(
      (await api(sock("m1"), "POST", `/images/busybox:latest/tag?repo=${reg}/e2e/busybox&tag=1`)).status,
    ).toBe(201);
    const push = await dk("m1", ["push", ref]);
    expect(push.code, push.stderr).toBe(0);
    expect((await api(sock("m1"), "DELETE", `/images/${encodeURIComponent(ref)}`)).status).toBe(200);
    await createService("m2", {
      Name: "fromregistry",
      TaskTemplate: { ContainerSpec: { Image: ref, Args: ["sleep", "100000"], StopGracePeriod: 1e9 } },
      Mode: { Global: {} },
    });
    expect(await runningOn("fromregistry", 6)).toEqual(["m1", "m2", "m3", "w1", "w2", "w3"]);
    for (const h of ["m1", "w3"]) {
      const img = await api(sock(h), "GET", `/images/${encodeURIComponent(ref)}/json`);
      expect(img.status).toBe(200);
    }
    await dk("m1", ["service", "rm", "fromregistry", "everywhere"]);
  });

  it("replaces a killed worker's tasks elsewhere", async () => {
    await scale("m1", "web", 6);
    await runningOn("web", 6);
    await lab.kill("w2");
    const on = await runningOn("web", 6, "m1", (h) => !h.includes("w2"));
    expect(on).not.toContain("w2");
    expect(await nodeState("w2", "m1")).toBe("down");
    await lab.start("w2", shoald);
    await until("w2 ready again", async () => ((await nodeState("w2", "m1")) === "ready" ? true : undefined));
  });

  it("elects a new leader when the leader is killed; the API answers and tasks keep running", async () => {
    const old = await leader();
    const others = ["m1", "m2", "m3"].filter((h) => h !== old);
    const before = await taskContainers("w1");
    await lab.kill(old);
    const next = await until("a new leader", async () => {
      const l = await leader().catch(() => undefined);
      return l && l !== old ? l : undefined;
    });
    expect(others).toContain(next);
    // Writes work through any surviving manager.
    await scale(others[0], "web", 7);
    await runningOn("web", 7, others[1]);
    expect((await api(sock(others[1]), "GET", "/services")).json<unknown[]>().length).toBeGreaterThanOrEqual(
      1,
    );
    const after = await taskContainers("w1");
    for (const [id, started] of before) expect(after.get(id)).toBe(started);
    await lab.start(old, shoald);
    await reachableManager(old, next, `${old} back as a reachable manager`);
  });

  it("a cut manager loses nothing: the majority carries on, and it catches up after heal", async () => {
    const l = await leader();
    const cut = ["m1", "m2", "m3"].find((h) => h !== l) as string;
    const rest = ["m1", "m2", "m3"].filter((h) => h !== cut);
    await lab.cut(cut);
    try {
      await scale(rest[0], "web", 3);
      await runningOn("web", 3, rest[1]);
      await until(`${cut} unreachable`, async () => {
        const n = (await nodes(l)).find((x) => x.Description.Hostname === cut);
        return n?.ManagerStatus?.Reachability === "unreachable" ? true : undefined;
      });
    } finally {
      await lab.heal(cut);
    }
    await until(`${cut} caught up`, async () => {
      const r = await api(sock(cut), "GET", "/services/web");
      const s = r.status === 200 ? r.json<ServiceView>() : undefined;
      return s?.Spec.Mode.Replicated?.Replicas === 3 ? true : undefined;
    });
    await reachableManager(cut, l, `${cut} reachable again`);
  });

  it("kill -9 and restart of a shoald restarts none of its containers; its tasks report RUNNING again", async () => {
    await scale("m1", "web", 10);
    await runningOn("web", 10);
    const before = await taskContainers("w1");
    expect(before.size).toBeGreaterThan(0);
    // A restart must come back within the node-down grace (3 heartbeat periods), else its tasks
    // are rightly replaced. Under CI's load a shoald restart has taken more than 3 s, so this
    // test uses Swarm's default period of 5 s (15 s of grace) instead of the lab's 1 s, and
    // waits out one old period so the agents' deadlines follow it.
    const slow = await dk("m1", ["swarm", "update", "--dispatcher-heartbeat", "5s"]);
    expect(slow.code, slow.stderr).toBe(0);
    await sleep(2_500);
    const pid = lab.host("w1").pid as number;
    try {
      process.kill(pid, "SIGKILL");
      await until("w1's daemon gone", async () => ((await pidAlive(pid)) ? undefined : true));
      await lab.start("w1", shoald);
    } finally {
      await dk("m1", ["swarm", "update", "--dispatcher-heartbeat", "1s"]);
    }
    const after = await taskContainers("w1");
    expect([...after.entries()].sort()).toEqual([...before.entries()].sort());
    await runningOn("web", 10);
    const names = await hostNames();
    const onW1 = (await tasks("web")).filter(
      (t) => names.get(t.NodeID) === "w1" && t.DesiredState === "running",
    );
    expect(onW1.every((t) => t.Status.State === "running")).toBe(true);
    expect(onW1.map((t) => t.Status.ContainerStatus?.ContainerID).sort()).toEqual([...before.keys()].sort());
  });

  it("promotes a worker to a Raft member and demotes it again; refuses a demotion that breaks quorum", async () => {
    const promote = await dk("m1", ["node", "promote", "w1"]);
    expect(promote.code, promote.stderr).toBe(0);
    // A new certificate, a Raft join as a learner, a catch-up and a promotion: on CI's loaded
    // machine this has taken over 20 s.
    await reachableManager("w1", "m1", "w1 a reachable manager");
    // w1 now answers cluster reads from its own store.
    const info = (await api(sock("w1"), "GET", "/info")).json<{ Swarm: { ControlAvailable: boolean } }>();
    expect(info.Swarm.ControlAvailable).toBe(true);
    const demote = await dk("m2", ["node", "demote", "w1"]);
    expect(demote.code, demote.stderr).toBe(0);
    await until("w1 a worker again", async () => {
      const n = (await nodes()).find((x) => x.Description.Hostname === "w1");
      const i = (await api(sock("w1"), "GET", "/info")).json<{ Swarm: { ControlAvailable: boolean } }>();
      return n && !n.ManagerStatus && !i.Swarm.ControlAvailable ? true : undefined;
    });
    // With one of three managers cut off, demoting another would leave one of two: refused.
    const l = await leader();
    const [cut, other] = ["m1", "m2", "m3"].filter((h) => h !== l);
    await lab.cut(cut);
    try {
      await until(`${cut} down`, async () => ((await nodeState(cut, l)) === "down" ? true : undefined));
      const refused = await dk(l, ["node", "demote", other]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/quorum/);
    } finally {
      await lab.heal(cut);
    }
    await until(`${cut} ready`, async () => ((await nodeState(cut, l)) === "ready" ? true : undefined));
  });

  it("a worker leaves with docker swarm leave; node rm takes it out of the list", async () => {
    const leave = await dk("w3", ["swarm", "leave"]);
    expect(leave.code, leave.stderr).toBe(0);
    const info = (await api(sock("w3"), "GET", "/info")).json<{ Swarm: { LocalNodeState: string } }>();
    expect(info.Swarm.LocalNodeState).toBe("inactive");
    await until("w3 down", async () => ((await nodeState("w3", "m1")) === "down" ? true : undefined));
    const rm = await dk("m2", ["node", "rm", "w3"]);
    expect(rm.code, rm.stderr).toBe(0);
    // Read through the manager that took the write (it waits for its own store to have it).
    expect((await nodes("m2")).map((n) => n.Description.Hostname)).not.toContain("w3");
  });
});
