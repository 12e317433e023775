// Roles on the cluster port with real managers: three managers and two workers on the lab (real
// shoalds in network namespaces). A manager's certificate speaking for another Raft member is
// refused and the leader stays; a worker promoted and a manager demoted go through the real
// role-change path (renewal, JoinRaft, LeaveRaft) with the guard in place; afterwards the demoted
// manager's saved certificate opens neither Raft, JoinRaft nor Forward.
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile } from "node:fs/promises";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lab, type LabHost } from "../../deploy/lab/lab.js";
import { clusterAddr, formCluster, hostApi } from "../../deploy/lab/cluster.js";
import type { TlsIdentity } from "../../shared/grpc-tls.js";
import { until } from "../helpers/cluster.js";
import { shoaldPath } from "../helpers/daemon.js";
import { probeOne, type ProbeCall } from "../helpers/grpc-probe.js";

let lab: Lab;

beforeAll(async () => {
  lab = await Lab.up({
    name: `rg${randomBytes(3).toString("hex")}`,
    managers: 3,
    workers: 2,
    root: await mkdtemp("/tmp/shoal-lab-"),
    octet: 100 + Math.floor(Math.random() * 100),
    shoald: shoaldPath,
  });
  try {
    await formCluster(lab);
  } catch (e) {
    await lab.down().catch(() => undefined);
    throw e;
  }
}, 120_000);

afterAll(async () => {
  if (process.env.SHOW_REFUSALS)
    for (const h of lab?.state.hosts ?? []) {
      const log = await readFile(join(h.dir, "shoald.log"), "utf8").catch(() => "");
      for (const l of log.split("\n"))
        if (/refused|PERMISSION|UNAUTH/.test(l)) console.log(h.name, l.slice(0, 400));
    }
  await lab?.down();
});

interface NodeView {
  ID: string;
  Description: { Hostname: string };
  Spec: { Role: string };
  ManagerStatus?: { Leader?: boolean; Reachability: string };
}

async function nodes(): Promise<NodeView[]> {
  const r = await hostApi(lab.host("m1").socket, "GET", "/nodes");
  if (r.status !== 200) throw new Error(`GET /nodes: ${r.status} ${r.body}`);
  return r.json<NodeView[]>();
}

async function swarmOf(h: LabHost): Promise<{ raftId: number; nodeId: string; identity: TlsIdentity }> {
  const dir = join(h.dir, "data", "swarm");
  const state = JSON.parse(await readFile(join(dir, "state.json"), "utf8")) as {
    raftId: number;
    nodeId: string;
  };
  const read = (f: string) => readFile(join(dir, "certs", f), "utf8");
  return {
    raftId: state.raftId,
    nodeId: state.nodeId,
    identity: {
      caPem: await read("ca.crt"),
      certPem: await read("node.crt"),
      keyPem: await read("node.key"),
    },
  };
}

async function leaderName(): Promise<string> {
  return until(
    "a leader",
    async () => (await nodes()).find((n) => n.ManagerStatus?.Leader)?.Description.Hostname,
    30_000,
  );
}

const raftMessage = (to: number, from: number): ProbeCall => ({
  service: "Raft",
  method: "send",
  type: "RaftMessage",
  // An append of a far newer term: taken, it would depose the leader.
  requests: [{ type: 4, to, from, term: 1_000_000, logTerm: 1_000_000, index: 1 }],
});

describe("three managers and two workers", () => {
  it("refuse a Raft message whose sender is another member, sent with a valid manager certificate", async () => {
    const before = await leaderName();
    const m1 = await swarmOf(lab.host("m1"));
    const m2 = await swarmOf(lab.host("m2"));
    const m3 = await swarmOf(lab.host("m3"));
    const r = await probeOne(lab.host("m2").netns, raftMessage(m1.raftId, m3.raftId), {
      identity: m2.identity,
      addr: clusterAddr(lab.host("m1")),
    });
    expect(r.code, r.details).toBe(grpc.status.PERMISSION_DENIED);
    expect(r.details).toContain(`as member ${m3.raftId}`);
    expect(await leaderName()).toBe(before);
    const write = await hostApi(lab.host("m1").socket, "POST", "/networks/create", {
      Name: "afterforgery",
      Driver: "overlay",
    });
    expect(write.status, write.body.toString()).toBeLessThan(300);
  }, 60_000);

  it("promote and demote still work; the demoted manager's saved certificate opens no manager call", async () => {
    const m3host = lab.host("m3");
    const saved = await swarmOf(m3host);
    const byName = async (name: string) => (await nodes()).find((n) => n.Description.Hostname === name);
    const w1Id = (await byName("w1"))?.ID ?? "";
    const promote = await hostApi(lab.host("m1").socket, "GET", `/nodes/${w1Id}`);
    const version = promote.json<{ Version: { Index: number } }>().Version.Index;
    const spec = promote.json<{ Spec: Record<string, unknown> }>().Spec;
    const up = await hostApi(lab.host("m1").socket, "POST", `/nodes/${w1Id}/update?version=${version}`, {
      ...spec,
      Role: "manager",
    });
    expect(up.status, up.body.toString()).toBeLessThan(300);
    await until(
      "w1 a reachable manager",
      async () => (await byName("w1"))?.ManagerStatus?.Reachability === "reachable" || undefined,
      60_000,
    );

    // A manager may run requests on a worker (logs, for one)...
    const onWorker = {
      identity: saved.identity,
      addr: clusterAddr(lab.host("w2")),
      tlsName: (await swarmOf(lab.host("w2"))).nodeId,
    };
    const listing: ProbeCall = {
      service: "Node",
      method: "forward",
      type: "HttpRequest",
      // A task log read (what a manager may run on a worker): the worker's engine answers, here
      // with "no such container", which shows the certificate opened the call.
      request: { method: "GET", url: "/containers/no-such-task/logs?stdout=1", headers: [] },
    };
    const allowed = await probeOne(m3host.netns, listing, onWorker);
    expect(allowed.code, allowed.details).toBe(grpc.status.OK);
    expect(allowed.response?.status).toBe(404);

    const m3 = await hostApi(lab.host("m1").socket, "GET", `/nodes/${saved.nodeId}`);
    const down = await hostApi(
      lab.host("m1").socket,
      "POST",
      `/nodes/${saved.nodeId}/update?version=${m3.json<{ Version: { Index: number } }>().Version.Index}`,
      { ...m3.json<{ Spec: Record<string, unknown> }>().Spec, Role: "worker" },
    );
    expect(down.status, down.body.toString()).toBeLessThan(300);
    await until(
      "m3 out of the managers",
      async () => {
        const n = await byName("m3");
        return (n?.Spec.Role === "worker" && !n.ManagerStatus) || undefined;
      },
      60_000,
    );
    // It became a worker and renewed its certificate as one.
    await until(
      "m3 holding a worker certificate",
      async () => (await swarmOf(m3host)).identity.certPem !== saved.identity.certPem || undefined,
      30_000,
    );

    const m1 = await swarmOf(lab.host("m1"));
    const at = { identity: saved.identity, addr: clusterAddr(lab.host("m1")) };
    const raft = await probeOne(m3host.netns, raftMessage(m1.raftId, saved.raftId), at);
    expect(raft.code, raft.details).toBe(grpc.status.PERMISSION_DENIED);
    const join = await probeOne(
      m3host.netns,
      {
        service: "Node",
        method: "joinRaft",
        type: "JoinRaftRequest",
        request: { raftId: saved.raftId, addr: clusterAddr(m3host) },
      },
      at,
    );
    expect(join.code, join.details).toBe(grpc.status.PERMISSION_DENIED);
    const fwd = await probeOne(
      m3host.netns,
      {
        service: "Node",
        method: "forward",
        type: "HttpRequest",
        request: { method: "GET", url: "/containers/no-such-task/logs?stdout=1", headers: [] },
      },
      at,
    );
    expect(fwd.code, fwd.details).toBe(grpc.status.PERMISSION_DENIED);
    // ...and once demoted, its old certificate no longer opens a worker either (w2 heard it
    // is no manager from its dispatcher session).
    await until(
      "w2 refusing the old manager certificate",
      async () =>
        (await probeOne(m3host.netns, listing, onWorker)).code === grpc.status.PERMISSION_DENIED || undefined,
      10_000,
    );
    // The cluster kept working through both changes.
    expect(
      (await nodes())
        .filter((n) => n.ManagerStatus?.Reachability === "reachable")
        .map((n) => n.Description.Hostname)
        .sort(),
    ).toEqual(["m1", "m2", "w1"]);
  }, 180_000);
});
