// Real processes: membership changes and leader transfer under client load (see process-3.test.ts
// for the set-up and the checks). A new member is a process started without --bootstrap on an
// empty folder; the leader adds it through /admin/add-member (learner, caught up, then voter),
// and the conf change's context carries its addresses so every member's transport learns them.
// Needs `npm run build` first.
import { afterEach, describe, expect, it } from "vitest";
import { ProcessCluster, type MemberStatus } from "./helpers/process-cluster.js";
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
): Promise<{ c: ProcessCluster; w: Workload }> {
  cluster = await ProcessCluster.start({ size: 3, ...extra });
  workload = new Workload(cluster, { clients: 6, keys: KEYS, seed });
  workload.start();
  await workload.progress(50, "before the change");
  return { c: cluster, w: workload };
}

type StatusWithConf = MemberStatus & { confState: { voters: number[]; learners: number[] } };

async function confState(c: ProcessCluster, id: number): Promise<StatusWithConf["confState"] | undefined> {
  return ((await c.status(id)) as StatusWithConf | undefined)?.confState;
}

const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);

/** Asks whoever leads to hand over to `target`, again if a transfer is aborted, until it leads. */
async function transferTo(c: ProcessCluster, target: number): Promise<void> {
  await c.waitFor(async () => {
    if ((await c.status(target))?.role === "leader") return true;
    const r = await c.admin("/admin/transfer", { to: target });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    await c
      .waitFor(async () => (await c.status(target))?.role === "leader", "the transfer", 1000)
      .catch(() => undefined);
    return (await c.status(target))?.role === "leader";
  }, `member ${target} to become leader`);
}

describe("raft kv server, membership changes and leader transfer", { timeout: 120_000 }, () => {
  it("adds a fourth member (learner → voter), then removes an original one, under load", async () => {
    // Small snapshot interval and catch-up tail: by the time the new member is added the leader
    // has compacted its log, so the newcomer is caught up by snapshot, then by entries.
    const { c, w } = await setup(21, { snapshotEntries: 100, catchUpEntries: 20 });
    await w.progress(200, "so that the log has been compacted");
    const joiner = await c.startJoiner();
    const added = await c.admin("/admin/add-member", {
      id: joiner,
      raftAddr: c.raftAddr(joiner),
      clientAddr: c.clientUrl(joiner).replace("http://", ""),
    });
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    // Every member (the newcomer too) ends up with the four voters and no learner.
    for (const id of c.ids()) {
      await c.waitFor(async () => {
        const cs = await confState(c, id);
        return cs !== undefined && sorted(cs.voters).join() === "1,2,3,4" && cs.learners.length === 0;
      }, `member ${id} to see four voters`);
    }
    await w.progress(100, "with four voters");
    // The newcomer applies the same log.
    await c.waitFor(
      async () => ((await c.status(joiner))?.applied ?? 0) > 0,
      "the newcomer to apply entries",
    );

    // Remove an original follower, then stop its process; the other three keep committing.
    const lead = await c.waitForLeader();
    const gone = c.ids().find((id) => id !== lead && id !== joiner) as number;
    const removed = await c.admin("/admin/remove-member", { id: gone });
    expect(removed.status, JSON.stringify(removed.body)).toBe(200);
    await c.retire(gone);
    for (const id of c.ids()) {
      await c.waitFor(async () => {
        const cs = await confState(c, id);
        return cs !== undefined && !cs.voters.includes(gone) && cs.voters.length === 3;
      }, `member ${id} to see ${gone} removed`);
    }
    await w.progress(150, `after member ${gone} was removed and stopped`);
    // The newcomer can lead: it reaches the others through --peers, and the follower that was
    // never its leader can answer it only because that member's transport learned the
    // newcomer's address from the conf change's context.
    await transferTo(c, joiner);
    await w.progress(100, "with the newcomer leading");
    await verifyCluster(c, w, "membership: add 4th, remove one");

    // Converged: every remaining member, the newcomer included, holds the same state.
    const digests = await Promise.all(c.ids().map((id) => c.digest(id)));
    expect(new Set(digests.map((d) => d.applied)).size, JSON.stringify(digests)).toBe(1);
    expect(new Set(digests.map((d) => d.digest)).size, JSON.stringify(digests)).toBe(1);
    expect(c.ids()).toContain(joiner);
    expect(c.logged("snapshot sent to a peer"), "the newcomer was sent a snapshot").toBe(true);
  });

  it("transfers leadership to a chosen follower, under load", async () => {
    const { c, w } = await setup(22);
    const old = await c.waitForLeader();
    const oldTerm = (await c.status(old))?.term ?? 0;
    const target = c.ids().find((id) => id !== old) as number;
    // A transfer is aborted if the target does not catch up within an election timeout.
    await transferTo(c, target);
    const now = await c.status(target);
    expect(now?.term ?? 0).toBeGreaterThan(oldTerm);
    expect(await c.waitForLeader()).toBe(target);
    await w.progress(150, "under the new leader");
    await verifyCluster(c, w, "transfer leadership");
    expect(await c.leader()).toBe(target);
  });
});
