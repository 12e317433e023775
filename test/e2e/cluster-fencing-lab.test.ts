// Reads, deadlines and leadership fencing on the lab: 3 managers, each a real shoald in its own
// network namespace. (a) A read on a follower right after a write acknowledged through another
// manager sees it; a manager cut off from the others refuses reads it cannot confirm (unless a
// stale read is asked for by name) and answers writes within their deadline with a 503. (b) The
// leader is demoted while its orchestrator and allocator are busy with many services: once
// settled, every slot has exactly one task and no address is handed out twice.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Lab } from "../../deploy/lab/lab.js";
import { formCluster } from "../../deploy/lab/cluster.js";
import { api, repoRoot } from "../helpers/daemon.js";
import { until } from "../helpers/cluster.js";

const shoald = join(repoRoot, "dist/daemon/main.js");
const MANAGERS = ["m1", "m2", "m3"];
const STALE = { "X-Shoal-Stale-Read": "1" };
let lab: Lab;

interface NodeView {
  ID: string;
  Version: { Index: number };
  Description: { Hostname: string };
  Spec: { Role: string; Availability: string };
  ManagerStatus?: { Leader?: boolean; Reachability: string };
}
interface ServiceView {
  ID: string;
  Version: { Index: number };
  Spec: Record<string, unknown> & { Name: string; Mode: { Replicated?: { Replicas: number } } };
  Endpoint?: { VirtualIPs?: Array<{ NetworkID: string; Addr: string }> };
}
interface TaskView {
  ID: string;
  ServiceID: string;
  Slot: number;
  DesiredState: string;
  Status: { State: string };
  NetworksAttachments?: Array<{ Network: { ID: string }; Addresses: string[] }>;
}

const sock = (host: string): string => lab.host(host).socket;

async function nodes(via: string): Promise<NodeView[]> {
  const r = await api(sock(via), "GET", "/nodes");
  return r.status === 200 ? r.json<NodeView[]>() : [];
}

/** The leading manager's host name, as a manager that can confirm its reads sees it. */
async function leader(among = MANAGERS): Promise<string> {
  return until("a leader", async () => {
    for (const h of among) {
      const l = (await nodes(h).catch(() => [])).find((n) => n.ManagerStatus?.Leader);
      if (l) return l.Description.Hostname;
    }
    return undefined;
  });
}

const spec = (name: string, replicas: number, extra: Record<string, unknown> = {}) => ({
  Name: name,
  TaskTemplate: { ContainerSpec: { Image: "busybox:latest", Args: ["sleep", "100000"] }, ...extra },
  Mode: { Replicated: { Replicas: replicas } },
});

/** Set a service's replicas through `via`, reading it again after a refused or unanswered write. */
async function scaleTo(via: string, name: string, replicas: number): Promise<void> {
  await until(
    `${name} scaled to ${replicas} through ${via}`,
    async () => {
      const got = await api(sock(via), "GET", `/services/${name}`).catch(() => undefined);
      if (got?.status !== 200) return undefined;
      const s = got.json<ServiceView>();
      if (s.Spec.Mode.Replicated?.Replicas === replicas) return true;
      const r = await api(sock(via), "POST", `/services/${s.ID}/update?version=${s.Version.Index}`, {
        ...s.Spec,
        Mode: { Replicated: { Replicas: replicas } },
      }).catch(() => undefined);
      return r?.status === 200 ? true : undefined;
    },
    60_000,
  );
}

async function logLines(host: string, pattern: RegExp): Promise<string[]> {
  const text = await readFile(join(lab.host(host).dir, "shoald.log"), "utf8").catch(() => "");
  return text.split("\n").filter((l) => pattern.test(l));
}

beforeAll(async () => {
  lab = await Lab.up({
    name: `f${randomBytes(3).toString("hex")}`,
    managers: 3,
    workers: 0,
    root: await mkdtemp("/tmp/shoal-lab-"),
    // The other lab tests draw theirs from 100-199.
    octet: 61,
    shoald,
  });
  await formCluster(lab);
  for (const m of MANAGERS)
    await until(
      `${m} a reachable manager`,
      async () => {
        const ns = await nodes(await leader());
        const n = ns.find((x) => x.Description.Hostname === m);
        return n?.ManagerStatus?.Reachability === "reachable" ? true : undefined;
      },
      60_000,
    );
}, 240_000);

afterAll(async () => {
  await lab?.down();
}, 120_000);

describe("cluster reads and deadlines on the lab", { timeout: 180_000 }, () => {
  it("a read on a follower right after a write acknowledged through another manager sees the write", async () => {
    const l = await leader();
    const [f1, f2] = MANAGERS.filter((h) => h !== l);
    for (let i = 0; i < 20; i++) {
      const name = `fresh${i}`;
      const created = await api(sock(f1), "POST", "/services/create", spec(name, 0));
      expect(created.status, created.body.toString()).toBe(201);
      const read = await api(sock(f2), "GET", `/services/${name}`);
      expect(read.status, `read ${name} on ${f2} right after its create through ${f1}`).toBe(200);
      const listed = (await api(sock(l), "GET", "/services")).json<ServiceView[]>();
      expect(listed.map((s) => s.Spec.Name)).toContain(name);
    }
  });

  it("a cut-off manager refuses reads it cannot confirm (stale only on request) and answers writes with a 503", async () => {
    const l = await leader();
    const cut = MANAGERS.find((h) => h !== l) as string;
    const rest = MANAGERS.filter((h) => h !== cut);
    await lab.cut(cut);
    try {
      // A write sent in the first moments after the cut answers (within its deadline) with a 503.
      const write = await api(sock(cut), "POST", "/services/create", spec("during-cut", 0));
      expect(write.status, write.body.toString()).toBe(503);
      const writeMessage = write.json<{ message: string }>().message;
      console.log(`a write to the cut-off ${cut}: 503 ${writeMessage}`);

      const read = await api(sock(cut), "GET", "/services");
      expect(read.status, read.body.toString()).toBe(503);
      expect(read.json<{ message: string }>().message).toMatch(
        /^no leader is reachable: this manager cannot confirm its data is current; retry, or add header X-Shoal-Stale-Read: 1/,
      );
      expect((await api(sock(cut), "GET", "/nodes")).status).toBe(503);
      const stale = await api(sock(cut), "GET", "/services", undefined, STALE);
      expect(stale.status).toBe(200);
      expect(stale.json<ServiceView[]>().map((s) => s.Spec.Name)).toContain("fresh0");

      // The majority carries on, and shows the cut manager as unreachable.
      const afterCut = await api(sock(rest[0]), "POST", "/services/create", spec("after-cut", 0));
      expect(afterCut.status, afterCut.body.toString()).toBe(201);
      await until(`${cut} shown unreachable`, async () => {
        const n = (await nodes(await leader(rest))).find((x) => x.Description.Hostname === cut);
        return n?.ManagerStatus?.Reachability === "unreachable" ? true : undefined;
      });
      // Its stale view does not have what the majority wrote since.
      const frozen = (await api(sock(cut), "GET", "/services", undefined, STALE)).json<ServiceView[]>();
      expect(frozen.map((s) => s.Spec.Name)).not.toContain("after-cut");

      await lab.heal(cut);
      // Back with the majority: its reads are confirmed again and show what was written meanwhile.
      const names = await until(
        `${cut} serving confirmed reads again`,
        async () => {
          const r = await api(sock(cut), "GET", "/services");
          return r.status === 200 ? r.json<ServiceView[]>().map((s) => s.Spec.Name) : undefined;
        },
        60_000,
      );
      expect(names).toContain("after-cut");
      // A write refused as "not applied" never shows up.
      if (/^not applied/.test(writeMessage)) expect(names).not.toContain("during-cut");
    } finally {
      await lab.heal(cut);
    }
  });
});

describe("leadership fencing on the lab", { timeout: 240_000 }, () => {
  const SERVICES = 20;
  const REPLICAS = 10;

  it("demoting the leader in the middle of long passes leaves one task per slot and no address given twice", async () => {
    const l = await leader();
    const via = MANAGERS.find((h) => h !== l) as string;
    const net = await api(sock(l), "POST", "/networks/create", {
      Name: "fencenet",
      Driver: "overlay",
      IPAM: { Config: [{ Subnet: "10.230.0.0/22" }] },
    });
    expect(net.status, net.body.toString()).toBe(201);
    const netId = net.json<{ Id: string }>().Id;
    // Tasks nobody can place: they stay pending with their addresses, and the lab stays light.
    const extra = {
      Networks: [{ Target: "fencenet" }],
      Placement: { Constraints: ["node.labels.fence==nowhere"] },
    };
    const names = Array.from({ length: SERVICES }, (_, i) => `fence${i}`);
    for (const n of names) {
      const r = await api(sock(l), "POST", "/services/create", spec(n, 0, extra));
      expect(r.status, r.body.toString()).toBe(201);
    }
    const leaderNode = (await nodes(l)).find((n) => n.Description.Hostname === l) as NodeView;

    // Scale the services up and down through a follower, over and over, while the leader is
    // demoted: its loops are in the middle of passes over the services (one batch each) when
    // leadership moves to another manager. The churn goes on a little after the move, then
    // every service is set to REPLICAS.
    const managers = MANAGERS.filter((h) => h !== l);
    let moved = false;
    const churn = (async () => {
      for (let round = 0; !moved; round++)
        for (const n of names) await scaleTo(via, n, round % 2 === 0 ? REPLICAS : REPLICAS + 5);
      for (const n of names) await scaleTo(via, n, REPLICAS);
    })();
    await until(`the first services scaled through ${via}`, async () => {
      const s = await api(sock(via), "GET", `/services/${names[1]}`);
      return s.status === 200 && s.json<ServiceView>().Spec.Mode.Replicated?.Replicas === REPLICAS
        ? true
        : undefined;
    });
    const demote = await api(
      sock(via),
      "POST",
      `/nodes/${leaderNode.ID}/update?version=${leaderNode.Version.Index}`,
      { ...leaderNode.Spec, Role: "worker" },
    );
    expect(demote.status, demote.body.toString()).toBe(200);
    const next = await until(
      "a new leader among the remaining managers",
      async () => {
        const h = await leader(managers);
        return h !== l ? h : undefined;
      },
      60_000,
    );
    moved = true;
    await churn;

    // Settled: every slot of every service has its task, pending with an address on the network.
    let tasks: TaskView[] = [];
    let seen = "";
    await until(
      "every slot's task pending with an address",
      async () => {
        const r = await api(sock(next), "GET", "/tasks");
        if (r.status !== 200) return undefined;
        tasks = r.json<TaskView[]>().filter((t) => t.DesiredState === "running");
        const ready = tasks.filter(
          (t) =>
            t.Status.State === "pending" &&
            (t.NetworksAttachments ?? []).some((a) => a.Network.ID === netId && a.Addresses.length > 0),
        );
        seen = `${tasks.length} desired running, ${ready.length} pending with an address`;
        return tasks.length >= SERVICES * REPLICAS && ready.length === tasks.length ? true : undefined;
      },
      120_000,
      () => seen,
    );

    const services = (await api(sock(next), "GET", "/services")).json<ServiceView[]>();
    const byName = new Map(services.map((s) => [s.Spec.Name, s]));
    for (const n of names) {
      const s = byName.get(n) as ServiceView;
      const slots = tasks
        .filter((t) => t.ServiceID === s.ID)
        .map((t) => t.Slot)
        .sort((a, b) => a - b);
      expect(slots, `${n}: one task per slot`).toEqual(Array.from({ length: REPLICAS }, (_, i) => i + 1));
    }
    const addresses = [
      ...tasks.flatMap((t) =>
        (t.NetworksAttachments ?? []).filter((a) => a.Network.ID === netId).flatMap((a) => a.Addresses),
      ),
      ...services.flatMap((s) =>
        (s.Endpoint?.VirtualIPs ?? []).filter((v) => v.NetworkID === netId).map((v) => v.Addr),
      ),
    ].map((a) => a.split("/")[0]);
    const twice = addresses.filter((a, i) => addresses.indexOf(a) !== i);
    expect(twice, "addresses handed out twice").toEqual([]);
    expect(addresses.length).toBeGreaterThanOrEqual(SERVICES * REPLICAS);

    // What the old leader logged about its stopped loops and refused batches (for the record).
    const fenced = await logLines(
      l,
      /no longer leads|refused a deposed leader|marker was not applied|pass failed/,
    );
    console.log(
      `old leader ${l}, new leader ${next}; the old leader logged:\n${fenced.slice(0, 8).join("\n")}`,
    );
  });
});
