// Leadership fencing in the store and the leader's loops: a batch a deposed leader's loop wrote
// is refused at apply on every member (whether a follower forwarded it to the next leader, or a
// newer leader's marker was applied first), and a loop deposed in the middle of a pass writes
// nothing more of it.
import { describe, expect, it } from "vitest";
import { ClusterStore, DeposedLeaderError, type FencedBatch } from "../../manager/store/store.js";
import type { ServiceObject } from "../../manager/store/types.js";
import { LeaderTerm } from "../../manager/leadership.js";
import { Orchestrator } from "../../manager/orchestrator/loop.js";
import { Scheduler } from "../../manager/scheduler/loop.js";
import { silentLogger } from "../../shared/logging.js";
import { nodeObject } from "../helpers/cluster-objects.js";

/**
 * A member's store fed by a fake log: every proposal is appended in the term `term()` says (the
 * term of whoever leads when it reaches the log) and applied at once, on this store and on the
 * followers' stores too, as Raft would.
 */
function member(term: () => number, followers: ClusterStore[] = []) {
  const store = new ClusterStore();
  const fenced: FencedBatch[] = [];
  const proposed: Uint8Array[] = [];
  let index = 0;
  store.setFencedListener((f) => fenced.push(f));
  store.setProposer(async (command) => {
    proposed.push(command);
    index++;
    for (const f of followers) f.apply(index, command, term());
    return store.apply(index, command, term());
  });
  return { store, fenced, proposed };
}

const spec = (name: string, replicas: number): ServiceObject["Spec"] => ({
  Name: name,
  TaskTemplate: { ContainerSpec: { Image: "busybox" } },
  Mode: { Replicated: { Replicas: replicas } },
});

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error("expected the write to be refused");
    },
    (e: unknown) => e,
  );
}

describe("apply-time term fencing", () => {
  it("refuses a batch stamped with the old term that a follower forwarded to the new leader", async () => {
    let term = 5;
    const follower = new ClusterStore();
    const { store, fenced } = member(() => term, [follower]);
    await store.markLeadership(5, 1);
    await store.update((tx) => void tx.create("services", { Spec: spec("web", 1) }), { term: 5 });
    // Member 1 is deposed; its loop's next batch reaches the log through the leader of term 6.
    term = 6;
    const e = await failure(
      store.update((tx) => void tx.create("services", { Spec: spec("ghost", 1) }), { term: 5 }),
    );
    expect(e).toBeInstanceOf(DeposedLeaderError);
    expect((e as Error).message).toMatch(/leader of term 5.*term 6 now leads/);
    for (const s of [store, follower])
      expect(s.view((tx) => tx.list("services").map((x) => x.Spec.Name))).toEqual(["web"]);
    expect(fenced).toEqual([expect.objectContaining({ stampedTerm: 5, entryTerm: 6, actions: 1 })]);
  });

  it("refuses an old term's batch once a newer leader's marker is applied, on members restored from a snapshot too", async () => {
    const { store } = member(() => 7);
    await store.markLeadership(7, 2);
    expect(store.leaderTerm).toBe(7);
    // No entry term given (the batch's own Raft term unknown): the marker alone fences it.
    const e = await failure(
      (async () => {
        const restored = new ClusterStore();
        restored.restore(store.snapshot());
        expect(restored.leaderTerm).toBe(7);
        const fenced: FencedBatch[] = [];
        restored.setFencedListener((f) => fenced.push(f));
        let i = store.index;
        restored.setProposer(async (c) => restored.apply(++i, c));
        try {
          await restored.update((tx) => void tx.create("services", { Spec: spec("late", 1) }), { term: 6 });
        } finally {
          expect(fenced).toHaveLength(1);
          expect(restored.view((tx) => tx.list("services"))).toEqual([]);
        }
      })(),
    );
    expect(e).toBeInstanceOf(DeposedLeaderError);
  });

  it("applies the current term's batches and the API's unstamped writes", async () => {
    const { store, fenced } = member(() => 3);
    await store.markLeadership(3, 1);
    await store.update((tx) => void tx.create("services", { Spec: spec("loop", 1) }), { term: 3 });
    await store.update((tx) => void tx.create("services", { Spec: spec("api", 1) }));
    expect(store.view((tx) => tx.list("services").map((x) => x.Spec.Name)).sort()).toEqual(["api", "loop"]);
    expect(fenced).toEqual([]);
  });

  it("refuses a deposed leader's marker: it never takes office", async () => {
    let term = 4;
    const { store } = member(() => term);
    await store.markLeadership(4, 1);
    term = 5;
    await expect(store.markLeadership(4, 1)).rejects.toBeInstanceOf(DeposedLeaderError);
    await store.markLeadership(5, 2);
    await expect(store.markLeadership(4, 1)).rejects.toBeInstanceOf(DeposedLeaderError);
    expect(store.leaderTerm).toBe(5);
  });
});

describe("a loop deposed mid-pass", () => {
  /** A member leading in term 2 until `depose()`; `deposed` resolves when a loop first finds out. */
  function leaderOf() {
    let leading = true;
    let found: () => void = () => undefined;
    const deposed = new Promise<void>((r) => (found = r));
    const leader = new LeaderTerm(2, () => {
      if (!leading) found();
      return leading;
    });
    return { leader, deposed, depose: () => (leading = false) };
  }

  it("the orchestrator stops between batches: services after the deposition get no tasks", async () => {
    const { store, proposed } = member(() => 2);
    for (const name of ["a", "b", "c", "d"])
      await store.update((tx) => void tx.create("services", { Spec: spec(name, 3) }));
    const { leader, deposed, depose } = leaderOf();
    const before = proposed.length;
    const writer = leader.writer(store);
    // Leadership is lost right after the pass's first batch (one service's tasks) commits.
    const orchestrator = new Orchestrator(store, silentLogger(), {
      periodMs: 3_600_000,
      writer: {
        update: async (fn) => {
          const index = await writer.update(fn);
          depose();
          return index;
        },
      },
    });
    try {
      await deposed;
      await new Promise((r) => setTimeout(r, 50));
      orchestrator.kick();
      await new Promise((r) => setTimeout(r, 50));
      expect(proposed.length - before).toBe(1);
      const withTasks = store.view((tx) =>
        tx.list("services").filter((s) => tx.tasksOfService(s.ID).length > 0),
      );
      expect(withTasks).toHaveLength(1);
      expect(store.view((tx) => tx.list("tasks"))).toHaveLength(3);
    } finally {
      orchestrator.stop();
    }
  });

  it("the scheduler writes nothing once its term is over", async () => {
    const { store, proposed } = member(() => 2);
    await store.update((tx) => {
      tx.create("nodes", nodeObject("n1"));
      const s = tx.create("services", { Spec: spec("web", 1) });
      tx.create("tasks", {
        ServiceID: s.ID,
        Slot: 1,
        NodeID: "",
        Spec: {},
        Status: { Timestamp: "", State: "pending", Message: "" },
        DesiredState: "running",
      });
    });
    const { leader, deposed, depose } = leaderOf();
    depose();
    const before = proposed.length;
    const scheduler = new Scheduler(store, silentLogger(), leader.writer(store));
    try {
      await deposed;
      await new Promise((r) => setTimeout(r, 50));
      expect(proposed.length).toBe(before);
      expect(store.view((tx) => tx.list("tasks"))[0].Status.State).toBe("pending");
    } finally {
      scheduler.stop();
    }
  });
});
