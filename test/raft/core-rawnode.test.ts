// RawNode Ready semantics (etcd rawnode_test.go) and a seeded randomized simulation checking
// the Raft safety properties on every step.
import { describe, expect, test } from "vitest";
import { ProposalDroppedError } from "../../manager/raft/core/errors.js";
import { MemoryStorage } from "../../manager/raft/core/memory-storage.js";
import { RawNode } from "../../manager/raft/core/raw-node.js";
import type { Entry, NodeId } from "../../manager/raft/core/types.js";
import { Network, dec, enc, ents, msg } from "./helpers/network.js";
import { seededRand } from "./sim/rand.js";

function newNode(
  id: NodeId,
  voters: NodeId[],
  storage = new MemoryStorage({ voters, learners: [] }),
): RawNode {
  return new RawNode({ id, storage, rand: seededRand(id) });
}

describe("RawNode", () => {
  test("a fresh node has nothing ready; a single node's campaign yields one complete Ready", () => {
    const s = new MemoryStorage({ voters: [1], learners: [] });
    const n = newNode(1, [1], s);
    expect(n.hasReady()).toBe(false);
    n.campaign();
    expect(n.hasReady()).toBe(true);
    const rd = n.ready();
    expect(rd.softState).toEqual({ lead: 1, role: "leader" });
    expect(rd.hardState).toEqual({ term: 1, vote: 1, commit: 1 });
    expect(rd.entries.map((e) => [e.index, e.term])).toEqual([[1, 1]]);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1]);
    expect(rd.messages).toEqual([]);
    expect(() => n.ready()).toThrow(/before advance/);
    s.append(rd.entries);
    s.setHardState(rd.hardState!);
    n.advance();
    expect(n.hasReady()).toBe(false);
    expect(() => n.advance()).toThrow();
    expect(n.status()).toMatchObject({
      id: 1,
      term: 1,
      vote: 1,
      commit: 1,
      applied: 1,
      lead: 1,
      role: "leader",
    });
    expect(n.status().progress?.[1]).toMatchObject({ match: 1, next: 2, state: "replicate" });
  });

  test("messages leave only through a Ready, with the state they depend on", () => {
    const n = newNode(1, [1, 2, 3]);
    n.campaign();
    const rd = n.ready();
    expect(rd.softState?.role).toBe("pre_candidate");
    expect(rd.hardState).toBeUndefined(); // a pre-vote changes nothing durable
    expect(rd.messages.map((m) => [m.type, m.to, m.term])).toEqual([
      ["pre_vote", 2, 1],
      ["pre_vote", 3, 1],
    ]);
    n.advance();
    n.step(msg({ type: "pre_vote_resp", from: 2, to: 1, term: 1 }));
    const rd2 = n.ready();
    // The vote for itself is in the hard state of the same Ready as the vote requests.
    expect(rd2.hardState).toEqual({ term: 1, vote: 1, commit: 0 });
    expect(rd2.messages.map((m) => m.type)).toEqual(["vote", "vote"]);
    n.advance();
  });

  test("proposals without a leader throw ProposalDroppedError; followers forward them", () => {
    const n = newNode(2, [1, 2, 3]);
    expect(() => n.propose(enc("x"))).toThrow(ProposalDroppedError);
    n.step(msg({ type: "heartbeat", from: 1, to: 2, term: 1 }));
    n.ready();
    n.advance();
    n.propose(enc("x"));
    const rd = n.ready();
    expect(rd.messages.map((m) => [m.type, m.to, m.term, dec(m.entries[0].data)])).toEqual([
      ["prop", 1, 0, "x"],
    ]);
  });

  test("local message types are refused from the network; responses from unknown nodes ignored", () => {
    const n = newNode(1, [1, 2, 3]);
    expect(() => n.step(msg({ type: "hup", from: 2, to: 1 }))).toThrow(/local message/);
    expect(() => n.step(msg({ type: "app_resp", from: 9, to: 1, term: 5 }))).not.toThrow();
    expect(n.status().term).toBe(0);
  });

  test("entries replaced between ready() and advance() are not marked stable", () => {
    const s = new MemoryStorage({ voters: [1, 2, 3], learners: [] });
    const n = newNode(2, [1, 2, 3], s);
    n.step(msg({ type: "app", from: 1, to: 2, term: 1, index: 0, logTerm: 0, entries: ents([1, 1]) }));
    const rd = n.ready();
    expect(rd.entries.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 1],
    ]);
    // Before this Ready is persisted, a new leader replaces entry 2.
    n.step(msg({ type: "app", from: 3, to: 2, term: 2, index: 1, logTerm: 1, entries: ents([2], 2) }));
    s.append(rd.entries);
    n.advance();
    const rd2 = n.ready();
    // Entry 2 of term 1 was not acknowledged as stable; the whole unstable tail is written again
    // (etcd does the same: a harmless rewrite of entry 1).
    expect(rd2.entries.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 2],
    ]);
    s.append(rd2.entries);
    n.advance();
    expect(s.term(2)).toBe(2);
  });

  test("restart restores term, vote and commit; `applied` skips re-delivery", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.propose(1, "a");
    net.propose(1, "b");
    const s = net.get(2).storage;
    const n = new RawNode({ id: 2, storage: s, rand: seededRand(3), applied: 2 });
    expect(n.status()).toMatchObject({ term: 1, vote: 1, commit: 3, applied: 2 });
    const rd = n.ready();
    expect(rd.committedEntries.map((e: Entry) => dec(e.data))).toEqual(["b"]);
  });

  test("config validation", () => {
    const s = new MemoryStorage();
    expect(() => new RawNode({ id: 0, storage: s, rand: Math.random })).toThrow(/id/);
    expect(
      () => new RawNode({ id: 1, storage: s, rand: Math.random, electionTick: 1, heartbeatTick: 1 }),
    ).toThrow(/election tick/);
    expect(() => new RawNode({ id: 1, storage: s, rand: Math.random, maxInflightMsgs: 0 })).toThrow(
      /inflight/,
    );
  });
});

// A seeded randomized simulation: partitions, message loss, crashes and restarts, proposals
// everywhere. After every action: at most one leader per term, committed entries never change
// and agree on every node (Log Matching up to the commit index), and every state machine
// applies a prefix of the same sequence.
describe("randomized simulation", () => {
  const seeds = Array.from({ length: 40 }, (_, i) => i + 1);
  test.each(seeds)("seed %i", (seed) => {
    const size = seed % 2 === 0 ? 5 : 3;
    const ids = Array.from({ length: size }, (_, i) => i + 1);
    const net = new Network(ids, {
      seed,
      config: { preVote: seed % 3 !== 0, checkQuorum: seed % 4 !== 0, maxInflightMsgs: 4, maxSizePerMsg: 64 },
    });
    const rand = seededRand(seed * 104729);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
    const leaderOfTerm = new Map<number, NodeId>();
    const committed = new Map<number, { term: number; data: string }>();
    let proposals = 0;

    // Per-node cursors keep the check incremental; every 50 steps (and at the end) it rescans
    // everything, so a committed entry changed later is still caught.
    const checkedCommit = new Map<NodeId, number>();
    const checkedApplied = new Map<NodeId, number>();
    const check = (step: number): void => {
      const where = `seed ${seed} step ${step}`;
      const full = step % 50 === 0 || step < 0;
      for (const id of ids) {
        if (net.isDown(id)) continue;
        const st = net.raw(id).status();
        if (st.role === "leader") {
          const prev = leaderOfTerm.get(st.term);
          expect(prev === undefined || prev === id, `${where}: two leaders in term ${st.term}`).toBe(true);
          leaderOfTerm.set(st.term, id);
        }
        const s = net.get(id).storage;
        const from = full ? s.firstIndex() : Math.max(s.firstIndex(), (checkedCommit.get(id) ?? 0) + 1);
        const to = Math.min(st.commit, s.lastIndex());
        for (let i = from; i <= to; i++) {
          const e = s.entries(i, i + 1, Infinity)[0];
          const c = committed.get(i);
          const v = { term: e.term, data: dec(e.data) };
          if (c) expect(v, `${where}: committed entry ${i} differs on ${id}`).toEqual(c);
          else committed.set(i, v);
        }
        checkedCommit.set(id, Math.max(to, checkedCommit.get(id) ?? 0));
        const applied = net.get(id).appliedAll;
        const start = full ? 0 : Math.min(checkedApplied.get(id) ?? 0, applied.length);
        for (let k = start; k < applied.length; k++) {
          const e = applied[k];
          const c = committed.get(e.index);
          if (c)
            expect({ term: e.term, data: dec(e.data) }, `${where}: applied ${e.index} on ${id}`).toEqual(c);
          if (k > 0) expect(e.index, `${where}: apply order on ${id}`).toBe(applied[k - 1].index + 1);
        }
        checkedApplied.set(id, applied.length);
      }
    };

    for (let step = 0; step < 400; step++) {
      const r = rand();
      if (r < 0.55) {
        net.tickAll();
      } else if (r < 0.75) {
        const id = pick(ids);
        if (!net.isDown(id)) {
          try {
            net.propose(id, `p${proposals++}`);
          } catch (e) {
            if (!(e instanceof ProposalDroppedError)) throw e;
          }
        }
      } else if (r < 0.82) {
        const a = pick(ids);
        const b = pick(ids);
        if (a !== b) net.cut(a, b);
      } else if (r < 0.86) {
        net.drop(pick(ids), pick(ids), 0.5);
      } else if (r < 0.92) {
        net.recover();
      } else if (r < 0.96) {
        const id = pick(ids);
        const down = ids.filter((x) => net.isDown(x)).length;
        if (!net.isDown(id) && down < Math.floor(size / 2)) net.crash(id);
      } else {
        const id = pick(ids);
        if (net.isDown(id)) net.restart(id);
      }
      check(step);
    }
    // Heal everything: the cluster must converge and commit a final proposal everywhere.
    net.recover();
    for (const id of ids) if (net.isDown(id)) net.restart(id);
    net.tickAll(60);
    const leaders = net.leaders();
    expect(leaders, `seed ${seed}: leaders after healing`).toHaveLength(1);
    net.propose(leaders[0], "final");
    net.tickAll(5);
    check(-1);
    const finalCommit = net.commit(leaders[0]);
    for (const id of ids) {
      expect(net.commit(id), `seed ${seed}: commit on ${id}`).toBe(finalCommit);
      expect(net.appliedData(id).at(-1)).toBe("final");
    }
    expect(committed.size).toBeGreaterThan(1);
  });
});
