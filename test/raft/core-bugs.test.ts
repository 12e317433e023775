// The classic Raft bug list, one table-driven case each, plus PreVote / CheckQuorum behaviour
// (etcd raft_test.go: TestLeaderStepdownWhenQuorumLost, TestLeaderSupersedingWithCheckQuorum,
// TestFreeStuckCandidateWithCheckQuorum, TestPreVoteWithCheckQuorum, TestDisruptiveFollower...).
import { describe, expect, test } from "vitest";
import { MemoryStorage } from "../../manager/raft/core/memory-storage.js";
import { CAMPAIGN_TRANSFER } from "../../manager/raft/core/raft.js";
import type { Message, NodeId, Snapshot } from "../../manager/raft/core/types.js";
import { Network, ents, msg, newTestRaft, storageWith } from "./helpers/network.js";

const cq = (preVote: boolean) => ({ config: { checkQuorum: true, preVote } });

interface BugCase {
  name: string;
  run: () => void;
}

const bugs: BugCase[] = [
  {
    // Figure 8: S1 leader of term 2 replicates entry 2 to S2 only, crashes; S5 wins term 3 with
    // an entry 2 of term 3 on itself only; S1 returns at term 4 and replicates its term-2 entry to
    // a majority. Counting replicas would commit it, and S5 could still overwrite it.
    name: "Figure 8: a leader never commits an earlier-term entry by counting replicas",
    run: () => {
      // Figure 8 (c): entry 2 of term 2 is on S1, S2, S3 (a majority); S5 has entry 2 of term 3.
      const logs: Record<NodeId, number[]> = { 1: [1, 2], 2: [1, 2], 3: [1, 2], 4: [1], 5: [1, 3] };
      const net = new Network([1, 2, 3, 4, 5], { config: { checkQuorum: false, preVote: false } });
      for (const id of [1, 2, 3, 4, 5]) {
        const st = storageWith([1, 2, 3, 4, 5], logs[id]);
        st.setHardState({ term: 3, vote: 0, commit: 1 });
        net.addNode(id, st, { checkQuorum: false, preVote: false });
      }
      // Followers acknowledge entry 2 but never receive the leader's term-4 entry.
      net.intercept = (m: Message) => {
        if (m.type === "app" && m.from === 1) m.entries = m.entries.filter((e) => e.index < 3);
        return "deliver";
      };
      net.campaign(1);
      expect(net.role(1)).toBe("leader");
      expect(net.term(1)).toBe(4);
      const st = net.raw(1).status();
      expect(st.progress?.[2].match).toBe(2);
      expect(st.progress?.[3].match).toBe(2);
      // Counting replicas would commit index 2; Raft must not (S5 could still overwrite it).
      expect(net.commit(1)).toBe(1);
      net.tickAll(3);
      expect(net.commit(1)).toBe(1);
      // Once an entry of term 4 is on a majority, both are committed.
      net.intercept = undefined;
      net.tickAll(2);
      expect(net.commit(1)).toBe(3);
      expect(net.get(5).storage.term(2)).toBe(2);
    },
  },
  {
    name: "a stale (reordered or duplicated) AppendEntries does not truncate the follower's log",
    run: () => {
      const r = newTestRaft(2, [1, 2, 3]);
      r.becomeFollower(1, 1);
      const first = msg({
        type: "app",
        from: 1,
        to: 2,
        term: 1,
        index: 0,
        logTerm: 0,
        entries: ents([1, 1]),
        commit: 0,
      });
      const second = msg({
        type: "app",
        from: 1,
        to: 2,
        term: 1,
        index: 2,
        logTerm: 1,
        entries: ents([1, 1], 3),
        commit: 0,
      });
      r.step(first);
      r.step(second);
      expect(r.raftLog.lastIndex()).toBe(4);
      // The first message again (duplicate / delayed): nothing is cut.
      r.step(first);
      expect(r.raftLog.lastIndex()).toBe(4);
      // And a delayed shorter one with a commit index beyond it commits only what it covers.
      r.step(msg({ ...first, entries: ents([1]), commit: 4 }));
      expect(r.raftLog.lastIndex()).toBe(4);
      expect(r.raftLog.committed).toBe(1);
      const acks = r.readMessages().map((m) => [m.type, m.index, m.reject]);
      expect(acks).toEqual([
        ["app_resp", 2, false],
        ["app_resp", 4, false],
        ["app_resp", 2, false],
        ["app_resp", 1, false],
      ]);
    },
  },
  {
    name: "a stale append rejection does not rewind a follower that caught up",
    run: () => {
      const net = new Network([1, 2, 3], cq(true));
      net.campaign(1);
      net.propose(1, "a");
      const pr = () => net.raw(1).status().progress?.[2];
      const before = pr();
      expect(before?.state).toBe("replicate");
      net.send(
        msg({ type: "app_resp", from: 2, to: 1, term: net.term(1), index: 1, reject: true, rejectHint: 0 }),
      );
      expect(pr()?.match).toBe(before?.match);
      expect(pr()?.next).toBe(before?.next);
    },
  },
  {
    name: "PreVote with CheckQuorum: the isolated leader steps down and the majority elects a new one; no flapping",
    run: () => {
      const net = new Network([1, 2, 3], cq(true));
      net.campaign(1);
      net.isolate(1);
      net.tickAll(40);
      expect(net.role(1)).not.toBe("leader"); // CheckQuorum deposed it
      const leaders = net.leaders();
      expect(leaders).toHaveLength(1);
      const l = leaders[0];
      const term = net.term(l);
      // 1's pre-votes never raised its term while isolated.
      expect(net.term(1)).toBeLessThan(term + 1);
      net.recover();
      net.tickAll(40);
      expect(net.leaders()).toEqual([l]);
      expect(net.term(l)).toBe(term);
      expect(net.term(1)).toBe(term);
    },
  },
  {
    name: "a snapshot arriving twice (or late) is ignored the second time",
    run: () => {
      const snap: Snapshot = {
        metadata: { index: 11, term: 11, confState: { voters: [1, 2], learners: [] } },
        data: new Uint8Array([7]),
      };
      const r = newTestRaft(2, [1, 2]);
      const m = msg({ type: "snap", from: 1, to: 2, term: 11, snapshot: snap });
      r.step(m);
      expect(r.raftLog.committed).toBe(11);
      expect(r.readMessages().map((x) => [x.type, x.index])).toEqual([["app_resp", 11]]);
      // The leader moves on; the follower appends more.
      r.step(
        msg({
          type: "app",
          from: 1,
          to: 2,
          term: 11,
          index: 11,
          logTerm: 11,
          entries: ents([11, 11], 12),
          commit: 13,
        }),
      );
      expect(r.raftLog.committed).toBe(13);
      r.readMessages();
      r.step(m);
      expect(r.raftLog.committed).toBe(13);
      expect(r.raftLog.lastIndex()).toBe(13);
      expect(r.readMessages().map((x) => [x.type, x.index])).toEqual([["app_resp", 13]]);
    },
  },
  {
    name: "restart with the log (and hard state commit) behind the snapshot",
    run: () => {
      const s = new MemoryStorage();
      s.applySnapshot({
        metadata: { index: 10, term: 3, confState: { voters: [1, 2, 3], learners: [] } },
        data: new Uint8Array(),
      });
      // The WAL replays entries 1..8 (all behind the snapshot) and an old hard state.
      s.append(ents([1, 1, 2, 2, 2, 3, 3, 3]));
      s.setHardState({ term: 3, vote: 1, commit: 5 });
      const r = newTestRaft(1, [1, 2, 3], { storage: s });
      expect(r.raftLog.committed).toBe(10);
      expect(r.raftLog.applied).toBe(10);
      expect(r.raftLog.firstIndex()).toBe(11);
      expect(r.raftLog.lastIndex()).toBe(10);
      expect(r.raftLog.lastTerm()).toBe(3);
      expect(r.term).toBe(3);
      // And it can rejoin: accept appends after the snapshot.
      r.step(
        msg({
          type: "app",
          from: 2,
          to: 1,
          term: 4,
          index: 10,
          logTerm: 3,
          entries: ents([4], 11),
          commit: 11,
        }),
      );
      expect(r.raftLog.committed).toBe(11);
    },
  },
  {
    name: "a removed leader steps down and the rest elect a new leader",
    run: () => {
      const net = new Network([1, 2, 3], cq(true));
      net.campaign(1);
      net.propose(1, "a");
      net.act(1, (n) => n.proposeConfChange({ type: "remove_node", nodeId: 1 }));
      net.tickAll(1);
      expect(net.role(1)).toBe("follower");
      expect(net.get(2).confState.voters).toEqual([2, 3]);
      net.tickAll(40);
      const leaders = net.leaders();
      expect(leaders).toHaveLength(1);
      expect(leaders[0]).not.toBe(1);
      net.propose(leaders[0], "b");
      expect(net.appliedData(2)).toEqual(["a", "b"]);
      expect(net.appliedData(3)).toEqual(["a", "b"]);
      // The removed node cannot campaign.
      net.campaign(1);
      expect(net.role(1)).toBe("follower");
    },
  },
];

describe("classic bug list", () => {
  test.each(bugs.map((b) => [b.name, b] as const))("%s", (_name, b) => b.run());
});

describe("CheckQuorum and PreVote", () => {
  test("a leader steps down when it loses its quorum and stays leader while it has it", () => {
    const net = new Network([1, 2, 3], cq(false));
    net.campaign(1);
    net.tickAll(30);
    expect(net.leaders()).toEqual([1]);
    net.crash(2);
    net.crash(3);
    for (let i = 0; i < 21; i++) net.tick(1);
    expect(net.role(1)).toBe("follower");
  });

  test("leader stickiness: a follower that heard from the leader ignores a higher-term vote", () => {
    const net = new Network([1, 2, 3], cq(false));
    net.campaign(1);
    net.tick(1, 5);
    const before = net.term(2);
    // 3 campaigns right away: 2 is in lease, and ignores it (without even raising its term).
    net.campaign(3);
    expect(net.role(3)).toBe("candidate");
    expect(net.term(2)).toBe(before);
    expect(net.leaders()).toEqual([1]);
    // After the lease, 3 can be elected (its log is as up to date).
    net.crash(1);
    for (let i = 0; i < 25; i++) net.tick(2);
    net.campaign(3);
    expect(net.role(3)).toBe("leader");
  });

  test("a leader-transfer vote overrides the lease", () => {
    const r = newTestRaft(2, [1, 2, 3], { checkQuorum: true });
    r.becomeFollower(1, 1);
    r.step(msg({ type: "vote", from: 3, to: 2, term: 2, index: 0, logTerm: 0 }));
    expect(r.readMessages()).toEqual([]);
    r.step(msg({ type: "vote", from: 3, to: 2, term: 2, index: 0, logTerm: 0, context: CAMPAIGN_TRANSFER }));
    const ms = r.readMessages();
    expect(ms.map((m) => [m.type, m.reject, m.term])).toEqual([["vote_resp", false, 2]]);
  });

  test("CheckQuorum without PreVote frees a stuck candidate by deposing the leader", () => {
    const net = new Network([1, 2, 3], cq(false));
    net.campaign(1);
    net.isolate(1);
    // 3 times out alone and campaigns repeatedly; 2 is in lease and ignores it.
    net.cut(3, 1);
    net.cut(3, 2);
    net.recover();
    net.cut(1, 3);
    net.cut(2, 3);
    for (let i = 0; i < 30; i++) net.tick(3);
    const t3 = net.term(3);
    expect(t3).toBeGreaterThan(net.term(1));
    net.recover();
    // The leader's heartbeat gets an answer with the higher term: it steps down.
    net.tick(1);
    expect(net.role(1)).toBe("follower");
    expect(net.term(1)).toBe(t3);
  });

  test("PreVote: a partitioned node rejoining does not disrupt the cluster", () => {
    const net = new Network([1, 2, 3], cq(true));
    net.campaign(1);
    net.propose(1, "a");
    net.isolate(3);
    for (let i = 0; i < 50; i++) net.tickAll();
    expect(net.role(3)).toBe("pre_candidate");
    expect(net.term(3)).toBe(1);
    net.recover();
    net.tickAll(3);
    expect(net.leaders()).toEqual([1]);
    expect(net.term(1)).toBe(1);
    expect(net.role(3)).toBe("follower");
    expect(net.appliedData(3)).toEqual(["a"]);
  });

  test("a pre-vote is granted without changing the voter's term or vote", () => {
    const r = newTestRaft(1, [1, 2, 3], { preVote: true });
    r.term = 1;
    r.vote = 2;
    r.step(msg({ type: "pre_vote", from: 3, to: 1, term: 2, index: 0, logTerm: 0 }));
    expect(r.readMessages().map((m) => [m.type, m.reject, m.term])).toEqual([["pre_vote_resp", false, 2]]);
    expect(r.term).toBe(1);
    expect(r.vote).toBe(2);
  });

  test("a pre-vote of a lower term is rejected explicitly", () => {
    const r = newTestRaft(1, [1, 2, 3], { preVote: true });
    r.becomeFollower(5, 0);
    r.step(msg({ type: "pre_vote", from: 3, to: 1, term: 2, index: 0, logTerm: 0 }));
    expect(r.readMessages().map((m) => [m.type, m.reject, m.term])).toEqual([["pre_vote_resp", true, 5]]);
  });

  test("a leader answers an older-term append with its term so the stale leader steps down", () => {
    const r = newTestRaft(1, [1, 2, 3], { checkQuorum: true });
    r.becomeFollower(5, 2);
    r.step(msg({ type: "app", from: 3, to: 1, term: 3 }));
    expect(r.readMessages().map((m) => [m.type, m.to, m.term])).toEqual([["app_resp", 3, 5]]);
  });

  test.each<[NodeId, boolean]>([
    [1, true],
    [3, false],
  ])("a node with an unapplied committed conf change does not campaign (%#)", (_id, pending) => {
    const s = storageWith([1, 2, 3]);
    const r = newTestRaft(1, [1, 2, 3], { storage: s });
    r.becomeFollower(1, 2);
    const e = {
      term: 1,
      index: 1,
      type: pending ? ("conf_change" as const) : ("normal" as const),
      data: new Uint8Array(11),
    };
    r.step(msg({ type: "app", from: 2, to: 1, term: 1, entries: [e], commit: 1 }));
    r.readMessages();
    r.step(msg({ type: "hup", from: 1 }));
    expect(r.state).toBe(pending ? "follower" : "candidate");
  });
});
