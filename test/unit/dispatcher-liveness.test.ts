// The dispatcher's liveness on a fake monotonic clock, with a real cluster store whose commits
// the test holds and releases: an event-loop stall of the manager is not the death of every
// node, a node that really goes silent is still marked down, and a mark-down racing a
// reconnect never leaves a live node "down".
import { describe, expect, it } from "vitest";
import { NodeLiveness } from "../../manager/dispatcher/liveness.js";
import { ClusterStore } from "../../manager/store/store.js";
import type { NodeObject } from "../../manager/store/types.js";
import { silentLogger } from "../../shared/logging.js";
import { nodeObject } from "../helpers/cluster-objects.js";

const PERIOD = 1000;
const TIMEOUT = 3 * PERIOD;
const CHECK_EVERY = PERIOD / 4;

/** A store whose commits apply at once, or wait for release() while held. */
function heldStore(): { store: ClusterStore; hold(): void; release(): Promise<void>; held(): number } {
  const store = new ClusterStore();
  let index = 0;
  let holding = false;
  const waiting: Array<() => void> = [];
  store.setProposer(async (command) => {
    if (holding) await new Promise<void>((r) => waiting.push(r));
    return store.apply(++index, command);
  });
  return {
    store,
    hold: () => {
      holding = true;
    },
    release: async () => {
      holding = false;
      for (const r of waiting.splice(0)) r();
      await settle();
    },
    held: () => waiting.length,
  };
}

/** Let every promise chain that can move, move. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

async function addNodes(store: ClusterStore, ids: string[]): Promise<void> {
  await store.update((tx) => {
    for (const id of ids) tx.create("nodes", nodeObject(id, "unknown"));
  });
}

/** Liveness over a held store, with `ids` as nodes that opened a session. */
async function setup(ids: string[]) {
  const s = heldStore();
  const clock = { t: 1_000_000 };
  const liveness = new NodeLiveness({
    store: s.store,
    leading: () => true,
    timeoutMs: () => TIMEOUT,
    retryMs: () => PERIOD,
    checkEveryMs: CHECK_EVERY,
    now: () => clock.t,
    log: silentLogger(),
  });
  const stateOf = (id: string): string | undefined => s.store.view((tx) => tx.get("nodes", id))?.Status.State;
  const same = (n: NodeObject): NodeObject => n;
  /** Checks on time (as the timer fires when nothing holds the loop up) for `ms`. */
  const run = async (ms: number, beat: string[] = []): Promise<string[]> => {
    const down: string[] = [];
    for (let t = 0; t < ms; t += CHECK_EVERY) {
      clock.t += CHECK_EVERY;
      if ((t + CHECK_EVERY) % PERIOD === 0) for (const id of beat) liveness.heartbeat(id);
      down.push(...liveness.check());
      await settle();
    }
    return down;
  };
  await addNodes(s.store, ids);
  for (const id of ids) await liveness.arrive(id, same);
  return { ...s, clock, liveness, stateOf, same, run };
}

describe("dispatcher liveness", () => {
  it("keeps every node alive through a stall of the manager, with the heartbeats queued meanwhile", async () => {
    const nodes = ["a", "b", "c"];
    const t = await setup(nodes);
    expect(await t.run(2 * PERIOD, nodes)).toEqual([]);

    // The event loop is held up for 10 s (a long GC, a sync call): nothing runs. When it runs
    // again, the check timer fires first, before the heartbeats waiting in the sockets are read.
    t.clock.t += 10_000;
    expect(t.liveness.check()).toEqual([]);
    for (const id of nodes) t.liveness.heartbeat(id);
    await settle();
    expect(await t.run(5 * PERIOD, nodes)).toEqual([]);
    for (const id of nodes) expect(t.stateOf(id)).toBe("ready");
  });

  it("still marks down a node that really stopped heartbeating, across a stall", async () => {
    const t = await setup(["alive", "silent"]);
    expect(await t.run(PERIOD, ["alive", "silent"])).toEqual([]);
    // "silent" stops; the manager stalls for 10 s soon after.
    await t.run(PERIOD, ["alive"]);
    t.clock.t += 10_000;
    expect(t.liveness.check()).toEqual([]);
    t.liveness.heartbeat("alive");
    const down = await t.run(4 * PERIOD, ["alive"]);
    expect(down).toEqual(["silent"]);
    expect(t.stateOf("silent")).toBe("down");
    expect(t.stateOf("alive")).toBe("ready");
  });

  it("marks a silent node down after the timeout on the monotonic clock", async () => {
    const t = await setup(["n"]);
    expect(await t.run(TIMEOUT - CHECK_EVERY)).toEqual([]);
    expect(await t.run(2 * CHECK_EVERY)).toEqual(["n"]);
    expect(t.store.view((tx) => tx.get("nodes", "n"))?.Status).toMatchObject({
      State: "down",
      Message: "heartbeat failure",
    });
  });

  it("never leaves a node down that reconnects while its mark-down is being committed", async () => {
    const t = await setup(["n"]);
    t.hold();
    // The mark-down is decided and proposed; its commit is held up.
    expect(await t.run(TIMEOUT + CHECK_EVERY)).toEqual(["n"]);
    expect(t.held()).toBe(1);
    // The node opens a new session meanwhile: it reads "ready" as stored now.
    const arrived = t.liveness.arrive("n", t.same);
    await settle();
    await t.release();
    await arrived;
    expect(t.stateOf("n")).toBe("ready");
    // And it stays so while it heartbeats.
    expect(await t.run(2 * TIMEOUT, ["n"])).toEqual([]);
    expect(t.stateOf("n")).toBe("ready");
  });

  it("marks a node ready again when it heartbeats while a mark-down commits", async () => {
    const t = await setup(["n"]);
    t.hold();
    expect(await t.run(TIMEOUT + CHECK_EVERY)).toEqual(["n"]);
    t.liveness.heartbeat("n");
    await t.release();
    expect(t.stateOf("n")).toBe("ready");
  });

  it("marks ready a heartbeating node found down (a former leader's mark-down that committed late)", async () => {
    const t = await setup(["n"]);
    await t.store.update((tx) => {
      const n = tx.get("nodes", "n") as NodeObject;
      tx.update("nodes", { ...n, Status: { ...n.Status, State: "down", Message: "heartbeat failure" } });
    });
    expect(await t.run(PERIOD, ["n"])).toEqual([]);
    expect(t.stateOf("n")).toBe("ready");
  });
});
