// Real processes, three members: `node dist/test/raft/kv/server.js` each, gRPC on loopback, WAL
// on disk. Concurrent clients run throughout each fault; afterwards every acknowledged write must
// be there and the recorded history must be linearizable. Needs `npm run build` first.
// Ticks are short (20 ms, election after 10) so faults resolve quickly; nothing here asserts how
// long anything takes, only that it happens (with generous liveness deadlines).
import { afterEach, describe, expect, it } from "vitest";
import { ProcessCluster } from "./helpers/process-cluster.js";
import { Workload } from "./helpers/process-client.js";
import { verifyCluster } from "./helpers/process-check.js";

const KEYS = ["a", "b", "c", "d"];
let cluster: ProcessCluster | undefined;
let workload: Workload | undefined;

afterEach(async (ctx) => {
  if (ctx.task.result?.state === "fail" && cluster) process.stderr.write(`${cluster.logs()}\n`);
  await workload?.close();
  await cluster?.stop();
  workload = undefined;
  cluster = undefined;
});

async function setup(
  seed: number,
  extra: { snapshotEntries?: number; catchUpEntries?: number } = {},
): Promise<{
  c: ProcessCluster;
  w: Workload;
}> {
  cluster = await ProcessCluster.start({ size: 3, proxied: true, ...extra });
  workload = new Workload(cluster, { clients: 6, keys: KEYS, seed });
  workload.start();
  await workload.progress(50, "before the fault");
  return { c: cluster, w: workload };
}

// Generous: five processes starting and restarting on a loaded 2-core CI machine take a while.
describe("raft kv server, 3 processes", { timeout: 120_000 }, () => {
  it("kill -9 of the leader under load, then its restart", async () => {
    const { c, w } = await setup(1, { snapshotEntries: 200, catchUpEntries: 50 });
    const old = await c.waitForLeader();
    await c.kill(old);
    const next = await c.waitForLeader([old]);
    expect(next).not.toBe(old);
    await w.progress(100, "under the new leader");
    await c.restart(old);
    await w.progress(100, "after the old leader came back");
    await verifyCluster(c, w, "3: kill leader");
  });

  it("kill -9 of a follower, then its restart (catching up by snapshot)", async () => {
    // Small snapshot interval and catch-up tail: the follower falls behind the leader's
    // compacted log while down, so it must be sent a snapshot.
    const { c, w } = await setup(2, { snapshotEntries: 100, catchUpEntries: 20 });
    const lead = await c.waitForLeader();
    const follower = c.ids().find((id) => id !== lead) as number;
    await c.kill(follower);
    await w.progress(400, "with one follower down");
    await c.restart(follower);
    await w.progress(100, "after the follower came back");
    await verifyCluster(c, w, "3: kill follower");
    expect(c.logged("snapshot sent to a peer"), "the restarted follower was sent a snapshot").toBe(true);
  });

  it("a leader paused (SIGSTOP) past the election timeout steps down when it resumes", async () => {
    const { c, w } = await setup(3);
    const old = await c.waitForLeader();
    c.pause(old);
    const next = await c.waitForLeader([old]);
    expect(next).not.toBe(old);
    await w.progress(100, "while the old leader is paused");
    c.resume(old);
    await c.waitFor(async () => {
      const s = await c.status(old);
      return s !== undefined && s.role !== "leader";
    }, "the resumed old leader to step down");
    await w.progress(100, "after the old leader resumed");
    await verifyCluster(c, w, "3: pause leader");
  });

  it("a leader cut off by the proxies (connections reset) loses leadership; the rest carries on", async () => {
    const { c, w } = await setup(4);
    const old = await c.waitForLeader();
    c.isolate(old, "drop");
    const next = await c.waitForLeader([old]);
    expect(next).not.toBe(old);
    // CheckQuorum: the isolated leader notices it lost its quorum and stops serving.
    await c.waitFor(async () => (await c.status(old))?.role !== "leader", "the isolated leader to step down");
    await w.progress(100, "with the old leader isolated");
    c.heal();
    await w.progress(100, "after healing");
    await verifyCluster(c, w, "3: isolate leader (drop)");
  });

  it("a follower behind a black hole (stalled links) rejoins without disturbing the leader", async () => {
    const { c, w } = await setup(5);
    const lead = await c.waitForLeader();
    const follower = c.ids().find((id) => id !== lead) as number;
    c.isolate(follower, "stall");
    await w.progress(200, "with a follower unreachable");
    c.heal();
    await w.progress(100, "after healing");
    await verifyCluster(c, w, "3: isolate follower (stall)");
    // PreVote: the cut-off follower could not win, and could not disrupt the leader on return.
    expect(await c.leader()).toBe(lead);
  });
});
