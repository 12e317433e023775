// What is left of forwarding once workers have none: a follower manager sends its cluster writes
// to the leader over Node.Forward, and they work (create, update, remove a service); but even a manager's certificate cannot have another node run a
// membership change or an engine write through Forward. Two real shoald processes (the worker
// of test/helpers/two-nodes.ts promoted to a second manager).
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/cluster.js";
import { api, repoRoot, runFixtureIn } from "../helpers/daemon.js";
import { docker } from "../helpers/cli.js";
import { twoNodeCluster, type TwoNodes } from "../helpers/two-nodes.js";

const PERMISSION_DENIED = 7;

let c: TwoNodes;

interface Info {
  Swarm: { LocalNodeState: string; ControlAvailable: boolean };
}

beforeAll(async () => {
  c = await twoNodeCluster();
  const promote = await docker(c.manager.socket, ["node", "promote", c.workerId]);
  if (promote.code !== 0) throw new Error(`node promote failed: ${promote.stderr}`);
  // A new certificate, a Raft join as a learner, a catch-up and a promotion.
  await until(
    "the promoted node managing, with the first manager still leading",
    async () => {
      const info = (await api(c.worker.socket, "GET", "/info")).json<Info>();
      const nodes = (await api(c.manager.socket, "GET", "/nodes")).json<
        Array<{ ID: string; ManagerStatus?: { Leader?: boolean; Reachability: string } }>
      >();
      const follower = nodes.find((n) => n.ID === c.workerId)?.ManagerStatus;
      const leader = nodes.find((n) => n.ID === c.managerId)?.ManagerStatus;
      return info.Swarm.ControlAvailable && follower?.Reachability === "reachable" && leader?.Leader
        ? true
        : undefined;
    },
    60_000,
  );
}, 150_000);
afterAll(async () => {
  await c?.destroy();
}, 60_000);

describe("a follower manager", { timeout: 60_000 }, () => {
  it("creates, updates and removes a service through the leader", async () => {
    const follower = c.worker.socket;
    const leader = c.manager.socket;
    const create = await api(follower, "POST", "/services/create", {
      Name: "viafollower",
      TaskTemplate: { ContainerSpec: { Image: "busybox", Args: ["sleep", "1000"] } },
      Mode: { Replicated: { Replicas: 0 } },
    });
    expect(create.status, create.body.toString()).toBe(201);
    // The leader answered only once it had applied the write.
    const made = await api(leader, "GET", "/services/viafollower");
    expect(made.status).toBe(200);
    const s = made.json<{ Version: { Index: number }; Spec: Record<string, unknown> }>();
    const update = await api(follower, "POST", `/services/viafollower/update?version=${s.Version.Index}`, {
      ...s.Spec,
      Labels: { changed: "by-follower" },
    });
    expect(update.status, update.body.toString()).toBe(200);
    const atLeader = (await api(leader, "GET", "/services/viafollower")).json<{
      Spec: { Labels?: Record<string, string> };
    }>();
    expect(atLeader.Spec.Labels).toEqual({ changed: "by-follower" });
    // The follower's own store follows. (Reading it at once is not asserted: a forwarded write's
    // read barrier has been seen to let a read through before the write, before this change too.)
    await until("the update in the follower's store", async () => {
      const r = await api(follower, "GET", "/services/viafollower");
      return r.status === 200 && r.json<{ Spec: { Labels?: Record<string, string> } }>().Spec.Labels?.changed
        ? true
        : undefined;
    });
    const rm = await api(follower, "DELETE", "/services/viafollower");
    expect(rm.status, rm.body.toString()).toBe(200);
    expect((await api(leader, "GET", "/services/viafollower")).status).toBe(404);
  });
});

describe("a Forward call made with a manager's certificate", { timeout: 60_000 }, () => {
  it("runs a cluster read, but not a swarm leave, a container create or a local network create", async () => {
    const results = await runFixtureIn<
      Array<{ code: number; details: string; status: number; body: string }>
    >(c.worker.netns, join(repoRoot, "test/fixtures/forward-call.mjs"), {
      addr: c.managerAddr,
      certsDir: c.workerCertsDir,
      calls: [
        { method: "GET", url: "/nodes" },
        { method: "POST", url: "/swarm/leave?force=true" },
        { method: "POST", url: "/containers/create?name=pwned", body: JSON.stringify({ Image: "busybox" }) },
        { method: "POST", url: "/networks/create", body: JSON.stringify({ Name: "pwnet" }) },
      ],
    });
    const [read, leave, create, network] = results;
    expect(read.code, read.details).toBe(0);
    expect(read.status).toBe(200);
    for (const r of [leave, create, network]) expect(r.code, r.details).toBe(PERMISSION_DENIED);
    const info = (await api(c.manager.socket, "GET", "/info")).json<Info>();
    expect(info.Swarm).toMatchObject({ LocalNodeState: "active", ControlAvailable: true });
    const names = (await api(c.manager.socket, "GET", "/networks")).json<Array<{ Name: string }>>();
    expect(names.map((n) => n.Name)).not.toContain("pwnet");
  });
});
