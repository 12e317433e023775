// Real processes, five members (see process-3.test.ts for the set-up and the checks).
import { afterEach, describe, expect, it } from "vitest";
import { ProcessCluster } from "./helpers/process-cluster.js";
import { Workload } from "./helpers/process-client.js";
import { verifyCluster } from "./helpers/process-check.js";

const KEYS = ["a", "b", "c"];
let cluster: ProcessCluster | undefined;
let workload: Workload | undefined;

afterEach(async (ctx) => {
  if (ctx.task.result?.state === "fail" && cluster) process.stderr.write(`${cluster.logs()}\n`);
  await workload?.close();
  await cluster?.stop();
  workload = undefined;
  cluster = undefined;
});

async function setup(seed: number): Promise<{ c: ProcessCluster; w: Workload }> {
  cluster = await ProcessCluster.start({ size: 5, proxied: true, snapshotEntries: 150, catchUpEntries: 30 });
  workload = new Workload(cluster, { clients: 6, keys: KEYS, seed });
  workload.start();
  await workload.progress(50, "before the fault");
  return { c: cluster, w: workload };
}

describe("raft kv server, 5 processes", { timeout: 120_000 }, () => {
  it("kill -9 of the leader and a follower at once, then both restart", async () => {
    const { c, w } = await setup(11);
    const old = await c.waitForLeader();
    const follower = c.ids().find((id) => id !== old) as number;
    await Promise.all([c.kill(old), c.kill(follower)]);
    await c.waitForLeader([old, follower]);
    await w.progress(200, "with two of five down");
    await c.restart(old);
    await c.restart(follower);
    await w.progress(100, "after both came back");
    await verifyCluster(c, w, "5: kill leader + follower");
  });

  it("a partition isolating the leader with one follower (stalled links): the majority side elects, heals", async () => {
    const { c, w } = await setup(12);
    const old = await c.waitForLeader();
    const buddy = c.ids().find((id) => id !== old) as number;
    const majority = c.ids().filter((id) => id !== old && id !== buddy);
    c.partition([[old, buddy], majority], "stall");
    const next = await c.waitForLeader([old, buddy]);
    expect(majority).toContain(next);
    await c.waitFor(async () => (await c.status(old))?.role !== "leader", "the minority leader to step down");
    await w.progress(100, "on the majority side");
    c.heal();
    await w.progress(100, "after healing");
    await verifyCluster(c, w, "5: minority partition (stall)");
  });

  it("a paused leader (SIGSTOP) while two followers cannot reach each other", async () => {
    const { c, w } = await setup(13);
    const old = await c.waitForLeader();
    const [f1, f2] = c.ids().filter((id) => id !== old);
    // A partial partition: only the link between f1 and f2 is cut; each still reaches the rest.
    c.link(f1, f2, "drop");
    c.pause(old);
    const next = await c.waitForLeader([old]);
    expect(next).not.toBe(old);
    await w.progress(100, "with the leader paused");
    c.resume(old);
    await c.waitFor(async () => {
      const s = await c.status(old);
      return s !== undefined && s.role !== "leader";
    }, "the resumed old leader to step down");
    await w.progress(100, "after the leader resumed");
    c.heal();
    await verifyCluster(c, w, "5: pause leader, partial partition");
  });
});
