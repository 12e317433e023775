// Ports of etcd-raft raft_paper_test.go and the election / replication parts of raft_test.go.
import { describe, expect, test } from "vitest";
import { ProposalDroppedError } from "../../manager/raft/core/errors.js";
import type { Raft } from "../../manager/raft/core/raft.js";
import type { Entry, Message, NodeId } from "../../manager/raft/core/types.js";
import {
  Network,
  dec,
  enc,
  ents,
  msg,
  newTestRaft,
  persistAndApply,
  storageWith,
} from "./helpers/network.js";

const noCQ = { config: { checkQuorum: false, preVote: false } };
const terms = (xs: Entry[]): number[] => xs.map((e) => e.term);

function acceptAndReply(m: Message): Message {
  return msg({ from: m.to, to: m.from, term: m.term, type: "app_resp", index: m.index + m.entries.length });
}

/** etcd commitNoopEntry: the new leader's empty entry acknowledged by everyone. */
function commitNoopEntry(r: Raft, s: ReturnType<typeof storageWith>): void {
  r.bcastAppend();
  for (const m of r.readMessages()) {
    expect(m.type).toBe("app");
    expect(m.entries).toHaveLength(1);
    r.step(acceptAndReply(m));
  }
  r.readMessages();
  persistAndApply(r, s);
}

function propose(r: Raft, data: string): void {
  r.step(
    msg({ type: "prop", from: r.id, entries: [{ term: 0, index: 0, type: "normal", data: enc(data) }] }),
  );
}

describe("terms (raft paper §5.1)", () => {
  test.each(["follower", "candidate", "leader"] as const)(
    "a %s adopts a higher term from any message",
    (role) => {
      const r = newTestRaft(1, [1, 2, 3]);
      if (role === "follower") r.becomeFollower(1, 2);
      if (role === "candidate") r.becomeCandidate();
      if (role === "leader") {
        r.becomeCandidate();
        r.becomeLeader();
      }
      r.step(msg({ type: "app", from: 2, to: 1, term: 2 }));
      expect(r.term).toBe(2);
      expect(r.state).toBe("follower");
      expect(r.lead).toBe(2);
    },
  );

  test("messages of an older term are ignored", () => {
    const r = newTestRaft(1, [1, 2, 3]);
    r.becomeFollower(2, 2);
    r.step(msg({ type: "app", from: 3, to: 1, term: 1, entries: ents([1]) }));
    expect(r.raftLog.lastIndex()).toBe(0);
    expect(r.readMessages()).toEqual([]);
  });

  test("starts as follower", () => {
    const r = newTestRaft(1, [1, 2, 3]);
    expect(r.state).toBe("follower");
    expect(r.term).toBe(0);
  });
});

describe("leader election (raft paper §5.2)", () => {
  test("the leader broadcasts heartbeats every heartbeatTick", () => {
    const r = newTestRaft(1, [1, 2, 3]);
    r.becomeCandidate();
    r.becomeLeader();
    r.readMessages();
    r.tick();
    const ms = r.readMessages().sort((a, b) => a.to - b.to);
    expect(ms.map((m) => [m.type, m.to, m.term, m.commit])).toEqual([
      ["heartbeat", 2, 1, 0],
      ["heartbeat", 3, 1, 0],
    ]);
  });

  test.each(["follower", "candidate"] as const)("a %s starts an election after the timeout", (role) => {
    const r = newTestRaft(1, [1, 2, 3]);
    if (role === "follower") r.becomeFollower(1, 2);
    else r.becomeCandidate();
    for (let i = 1; i < 2 * r.electionTimeout; i++) r.tick();
    expect(r.term).toBe(2);
    expect(r.state).toBe("candidate");
    expect(r.trk.votes.get(1)).toBe(true);
    const ms = r.readMessages().sort((a, b) => a.to - b.to);
    expect(ms.map((m) => [m.type, m.to, m.term])).toEqual([
      ["vote", 2, 2],
      ["vote", 3, 2],
    ]);
  });

  test.each<[number, [NodeId, boolean][], string]>([
    [1, [], "leader"],
    [
      3,
      [
        [2, true],
        [3, true],
      ],
      "leader",
    ],
    [3, [[2, true]], "leader"],
    [
      5,
      [
        [2, true],
        [3, true],
        [4, true],
        [5, true],
      ],
      "leader",
    ],
    [
      5,
      [
        [2, true],
        [3, true],
        [4, true],
      ],
      "leader",
    ],
    [
      5,
      [
        [2, true],
        [3, true],
      ],
      "leader",
    ],
    [
      3,
      [
        [2, false],
        [3, false],
      ],
      "follower",
    ],
    [
      5,
      [
        [2, false],
        [3, false],
        [4, false],
        [5, false],
      ],
      "follower",
    ],
    [
      5,
      [
        [2, true],
        [3, false],
        [4, false],
        [5, false],
      ],
      "follower",
    ],
    [3, [], "candidate"],
    [5, [[2, true]], "candidate"],
    [
      5,
      [
        [2, false],
        [3, false],
      ],
      "candidate",
    ],
    [5, [], "candidate"],
  ])("one round: size %i votes %j -> %s", (size, votes, want) => {
    const ids = Array.from({ length: size }, (_, i) => i + 1);
    const r = newTestRaft(1, ids);
    r.step(msg({ type: "hup", from: 1 }));
    for (const [id, granted] of votes) {
      r.step(msg({ type: "vote_resp", from: id, to: 1, term: r.term, reject: !granted }));
    }
    expect(r.state).toBe(want);
    expect(r.term).toBe(1);
  });

  test.each<[NodeId, NodeId, boolean]>([
    [0, 2, false],
    [0, 3, false],
    [2, 2, false],
    [3, 3, false],
    [2, 3, true],
    [3, 2, true],
  ])("a follower that voted for %i answers %i: reject=%s (one vote per term)", (vote, from, wreject) => {
    const r = newTestRaft(1, [1, 2, 3]);
    r.term = 1;
    r.vote = vote;
    r.step(msg({ type: "vote", from, to: 1, term: 1 }));
    const ms = r.readMessages();
    expect(ms.map((m) => [m.type, m.to, m.term, m.reject])).toEqual([["vote_resp", from, 1, wreject]]);
  });

  test("a candidate falls back to follower on an append of the same term", () => {
    for (const t of [1, 2]) {
      const r = newTestRaft(1, [1, 2, 3]);
      r.step(msg({ type: "hup", from: 1 }));
      expect(r.state).toBe("candidate");
      r.step(msg({ type: "app", from: 2, to: 1, term: t }));
      expect(r.state).toBe("follower");
      expect(r.term).toBe(t);
      expect(r.lead).toBe(2);
    }
  });

  test("the election timeout is randomized over [et, 2et) and covers it", () => {
    const r = newTestRaft(1, [1, 2, 3]);
    const seen = new Set<number>();
    for (let round = 0; round < 200; round++) {
      r.becomeFollower(r.term + 1, 2);
      let time = 0;
      while (r.state === "follower") {
        r.tick();
        time++;
      }
      seen.add(time);
    }
    expect(Math.min(...seen)).toBe(10);
    expect(Math.max(...seen)).toBe(19);
    expect(seen.size).toBe(10);
  });

  test.each<[Entry[], number]>([
    [ents([1]), 2],
    [ents([1, 2]), 3],
  ])("vote requests carry the last log index and term (%#)", (entries, wterm) => {
    const r = newTestRaft(1, [1, 2, 3]);
    r.step(msg({ type: "app", from: 2, to: 1, term: wterm - 1, logTerm: 0, index: 0, entries }));
    r.readMessages();
    for (let i = 1; i < r.electionTimeout * 2; i++) r.tick();
    const ms = r.readMessages().sort((a, b) => a.to - b.to);
    expect(ms).toHaveLength(2);
    for (const [i, m] of ms.entries()) {
      expect([m.type, m.to, m.term, m.index, m.logTerm]).toEqual([
        "vote",
        i + 2,
        wterm,
        entries.length,
        entries[entries.length - 1].term,
      ]);
    }
  });

  test.each<[number[], number, number, boolean]>([
    // same log term
    [[1], 1, 1, false],
    [[1], 1, 2, false],
    [[1, 1], 1, 1, true],
    // candidate has a higher log term
    [[1], 2, 1, false],
    [[1], 2, 2, false],
    [[1, 1], 2, 1, false],
    // voter has a higher log term
    [[2], 1, 1, true],
    [[2], 1, 2, true],
    [[2, 1], 1, 1, true],
  ])(
    "voter with log %j, candidate (logTerm %i, index %i): reject=%s (§5.4.1)",
    (log, logTerm, index, wreject) => {
      const r = newTestRaft(1, [1, 2], { storage: storageWith([1, 2], log) });
      r.step(msg({ type: "vote", from: 2, to: 1, term: 3, logTerm, index }));
      const ms = r.readMessages();
      expect(ms).toHaveLength(1);
      expect([ms[0].type, ms[0].reject]).toEqual(["vote_resp", wreject]);
    },
  );

  test("the vote response carries the request's term; granting a vote resets the election timer", () => {
    const r = newTestRaft(1, [1, 2, 3]);
    for (let i = 0; i < 5; i++) r.tick();
    r.step(msg({ type: "vote", from: 2, to: 1, term: 5, logTerm: 0, index: 0 }));
    expect(r.electionElapsed).toBe(0);
    expect(r.vote).toBe(2);
    expect(r.readMessages()[0].term).toBe(5);
  });
});

describe("elections in a network", () => {
  test.each<[boolean, NodeId[], NodeId[], string, number]>([
    [false, [1, 2, 3], [], "leader", 1],
    [false, [1, 2, 3], [3], "leader", 1],
    [false, [1, 2, 3], [2, 3], "candidate", 1],
    [false, [1, 2, 3, 4], [2, 3], "candidate", 1],
    [false, [1, 2, 3, 4, 5], [2, 3], "leader", 1],
    [true, [1, 2, 3], [], "leader", 1],
    [true, [1, 2, 3], [3], "leader", 1],
    // With PreVote an election that cannot win does not even raise the term.
    [true, [1, 2, 3], [2, 3], "pre_candidate", 0],
    [true, [1, 2, 3, 4], [2, 3], "pre_candidate", 0],
    [true, [1, 2, 3, 4, 5], [2, 3], "leader", 1],
  ])("preVote=%s nodes %j down %j: node 1 becomes %s at term %i", (preVote, ids, down, wrole, wterm) => {
    const net = new Network(ids, { config: { preVote, checkQuorum: false } });
    for (const id of down) net.crash(id);
    net.campaign(1);
    expect(net.role(1)).toBe(wrole);
    expect(net.term(1)).toBe(wterm);
  });

  test.each([false, true])("every node can become leader in turn (preVote=%s)", (preVote) => {
    const net = new Network([1, 2, 3], { config: { preVote, checkQuorum: false } });
    for (const c of [1, 2, 3]) {
      net.campaign(c);
      expect(net.leaders()).toEqual([c]);
    }
  });

  test("split votes resolve through randomized timeouts; at most one leader per term", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const net = new Network([1, 2, 3, 4, 5], { seed, config: { preVote: false, checkQuorum: false } });
      // Two candidates at term 1, each getting only one other vote (1 from 3, 2 from 4).
      for (const [a, b] of [
        [1, 2],
        [1, 4],
        [1, 5],
        [2, 3],
        [2, 5],
      ])
        net.cut(a, b);
      net.campaign(1);
      net.campaign(2);
      expect(net.leaders()).toEqual([]);
      expect(net.role(1)).toBe("candidate");
      expect(net.role(2)).toBe("candidate");
      net.recover();
      const leadersByTerm = new Map<number, Set<NodeId>>();
      for (let i = 0; i < 100 && net.leaders().length === 0; i++) {
        net.tickAll();
        for (const l of net.leaders()) {
          const s = leadersByTerm.get(net.term(l)) ?? new Set();
          s.add(l);
          leadersByTerm.set(net.term(l), s);
        }
      }
      expect(net.leaders()).toHaveLength(1);
      for (const s of leadersByTerm.values()) expect(s.size).toBe(1);
      expect(net.term(net.leaders()[0])).toBeGreaterThan(1);
    }
  });

  test("dueling candidates without PreVote: the stale one raises the term but loses", () => {
    const net = new Network([1, 2, 3], noCQ);
    net.cut(1, 3);
    net.campaign(1);
    net.campaign(3);
    expect(net.role(1)).toBe("leader");
    expect(net.role(3)).toBe("candidate");
    net.recover();
    // 3 campaigns at a higher term; its log is behind, so it loses, but 1 is deposed.
    net.campaign(3);
    expect([net.role(1), net.role(2), net.role(3)]).toEqual(["follower", "follower", "follower"]);
    expect([net.term(1), net.term(2), net.term(3)]).toEqual([2, 2, 2]);
    expect(net.get(1).storage.lastIndex()).toBe(1);
    expect(net.get(3).storage.lastIndex()).toBe(0);
  });

  test("dueling pre-candidates: the stale one disrupts nothing", () => {
    const net = new Network([1, 2, 3], { config: { preVote: true, checkQuorum: false } });
    net.cut(1, 3);
    net.campaign(1);
    net.campaign(3);
    expect(net.role(1)).toBe("leader");
    expect(net.role(3)).toBe("follower");
    net.recover();
    net.campaign(3);
    expect([net.role(1), net.role(2), net.role(3)]).toEqual(["leader", "follower", "follower"]);
    expect([net.term(1), net.term(2), net.term(3)]).toEqual([1, 1, 1]);
  });

  test("a candidate concedes to the leader of its term", () => {
    const net = new Network([1, 2, 3], noCQ);
    net.isolate(1);
    net.campaign(1);
    net.campaign(3);
    net.recover();
    net.tick(3); // heartbeat
    net.propose(3, "force follower");
    net.tick(3);
    expect(net.role(1)).toBe("follower");
    expect(net.term(1)).toBe(1);
    for (const id of [1, 2, 3]) {
      expect(terms(net.get(id).storage.entries(1, 3, Infinity))).toEqual([1, 1]);
      expect(net.appliedData(id)).toEqual(["force follower"]);
    }
  });

  test("a single node elects itself and commits at once", () => {
    const net = new Network([1]);
    net.campaign(1);
    expect(net.role(1)).toBe("leader");
    net.propose(1, "a");
    net.propose(1, "b");
    expect(net.commit(1)).toBe(3);
    expect(net.appliedData(1)).toEqual(["a", "b"]);
  });

  test("a learner never campaigns", () => {
    const net = new Network([1, 2], { learners: [2] });
    net.tick(2, 100);
    expect(net.role(2)).toBe("follower");
    expect(net.term(2)).toBe(0);
    net.campaign(2);
    expect(net.role(2)).toBe("follower");
  });
});

describe("log replication (raft paper §5.3)", () => {
  test("the leader replicates a proposal with prevIndex/prevTerm and its commit", () => {
    const s = storageWith([1, 2, 3]);
    const r = newTestRaft(1, [1, 2, 3], { storage: s });
    r.becomeCandidate();
    r.becomeLeader();
    commitNoopEntry(r, s);
    const li = r.raftLog.lastIndex();
    propose(r, "some data");
    expect(r.raftLog.lastIndex()).toBe(li + 1);
    expect(r.raftLog.committed).toBe(li);
    const ms = r.readMessages().sort((a, b) => a.to - b.to);
    expect(ms.map((m) => [m.type, m.to, m.index, m.logTerm, m.commit, dec(m.entries[0].data)])).toEqual([
      ["app", 2, li, 1, li, "some data"],
      ["app", 3, li, 1, li, "some data"],
    ]);
    expect(r.raftLog.unstableEntries().map((e) => dec(e.data))).toEqual(["some data"]);
  });

  test("the leader commits once a majority acknowledged, and tells followers", () => {
    const s = storageWith([1, 2, 3]);
    const r = newTestRaft(1, [1, 2, 3], { storage: s });
    r.becomeCandidate();
    r.becomeLeader();
    commitNoopEntry(r, s);
    const li = r.raftLog.lastIndex();
    propose(r, "some data");
    for (const m of r.readMessages()) r.step(acceptAndReply(m));
    expect(r.raftLog.committed).toBe(li + 1);
    expect(persistAndApply(r, s).map((e) => dec(e.data))).toEqual(["some data"]);
    const ms = r.readMessages().sort((a, b) => a.to - b.to);
    expect(ms.map((m) => [m.to, m.type, m.commit])).toEqual([
      [2, "app", li + 1],
      [3, "app", li + 1],
    ]);
  });

  test.each<[number, NodeId[], boolean]>([
    [1, [], true],
    [3, [], false],
    [3, [2], true],
    [3, [2, 3], true],
    [5, [], false],
    [5, [2], false],
    [5, [2, 3], true],
    [5, [2, 3, 4], true],
    [5, [2, 3, 4, 5], true],
  ])("size %i, acks from %j: committed=%s", (size, acceptors, wack) => {
    const ids = Array.from({ length: size }, (_, i) => i + 1);
    const s = storageWith(ids);
    const r = newTestRaft(1, ids, { storage: s });
    r.becomeCandidate();
    r.becomeLeader();
    commitNoopEntry(r, s);
    const li = r.raftLog.lastIndex();
    propose(r, "some data");
    for (const m of r.readMessages()) if (acceptors.includes(m.to)) r.step(acceptAndReply(m));
    expect(r.raftLog.committed > li).toBe(wack);
  });

  test.each<[number[]]>([[[]], [[2]], [[1, 2]], [[1]]])(
    "committing an entry of the current term commits all preceding ones (log %j)",
    (log) => {
      const s = storageWith([1, 2, 3], log);
      const r = newTestRaft(1, [1, 2, 3], { storage: s });
      r.term = 2;
      r.becomeCandidate();
      r.becomeLeader();
      propose(r, "some data");
      for (const m of r.readMessages()) r.step(acceptAndReply(m));
      const li = log.length;
      const got = persistAndApply(r, s);
      expect(got.map((e) => [e.index, e.term, dec(e.data)])).toEqual([
        ...log.map((t, i) => [i + 1, t, ""]),
        [li + 1, 3, ""],
        [li + 2, 3, "some data"],
      ]);
    },
  );

  test.each<[[number, string][], number]>([
    [[[1, "some data"]], 1],
    [
      [
        [1, "some data"],
        [1, "some data2"],
      ],
      2,
    ],
    [
      [
        [1, "some data2"],
        [1, "some data"],
      ],
      2,
    ],
    [
      [
        [1, "some data"],
        [1, "some data2"],
      ],
      1,
    ],
  ])("a follower commits what the leader says is committed (%#)", (input, commit) => {
    const s = storageWith([1, 2, 3]);
    const r = newTestRaft(1, [1, 2, 3], { storage: s });
    r.becomeFollower(1, 2);
    const entries = input.map(([term, data], i) => ({
      term,
      index: i + 1,
      type: "normal" as const,
      data: enc(data),
    }));
    r.step(msg({ type: "app", from: 2, to: 1, term: 1, entries, commit }));
    expect(r.raftLog.committed).toBe(commit);
    expect(persistAndApply(r, s).map((e) => dec(e.data))).toEqual(input.slice(0, commit).map(([, d]) => d));
  });

  test.each<[number, number, number, boolean, number, number]>([
    // term, index, windex, wreject, wrejectHint, wlogTerm
    [0, 0, 1, false, 0, 0], // before the commit index: answer with the commit index
    [1, 1, 1, false, 0, 0],
    [2, 2, 2, false, 0, 0],
    [1, 2, 2, true, 1, 1], // term mismatch at 2: hint the last index with term <= 1
    [3, 3, 3, true, 2, 2], // beyond our log
  ])(
    "follower checks prev (term %i, index %i) of an append",
    (term, index, windex, wreject, whint, wlogTerm) => {
      const s = storageWith([1, 2, 3], [1, 2]);
      s.setHardState({ term: 0, vote: 0, commit: 1 });
      const r = newTestRaft(1, [1, 2, 3], { storage: s });
      r.becomeFollower(2, 2);
      r.step(msg({ type: "app", from: 2, to: 1, term: 2, logTerm: term, index, commit: index }));
      const ms = r.readMessages();
      expect(ms.map((m) => [m.type, m.index, m.reject, m.rejectHint, m.logTerm])).toEqual([
        ["app_resp", windex, wreject, wreject ? whint : 0, wreject ? wlogTerm : 0],
      ]);
    },
  );

  test.each<[number, number, [number, number][], number[], number[]]>([
    // prev index, prev term, entries [index, term], whole log terms, unstable terms
    [2, 2, [[3, 3]], [1, 2, 3], [3]],
    [
      1,
      1,
      [
        [2, 3],
        [3, 4],
      ],
      [1, 3, 4],
      [3, 4],
    ],
    [0, 0, [[1, 1]], [1, 2], []],
    [0, 0, [[1, 3]], [3], [3]],
  ])(
    "follower appends after (%i, %i), truncating only real conflicts",
    (index, logTerm, input, wlog, wunstable) => {
      const s = storageWith([1, 2, 3], [1, 2]);
      const r = newTestRaft(1, [1, 2, 3], { storage: s });
      r.becomeFollower(2, 2);
      const entries = input.map(([i, t]) => ({
        index: i,
        term: t,
        type: "normal" as const,
        data: new Uint8Array(),
      }));
      r.step(msg({ type: "app", from: 2, to: 1, term: 2, logTerm, index, entries }));
      expect(terms(r.raftLog.allEntries())).toEqual(wlog);
      expect(terms(r.raftLog.unstableEntries())).toEqual(wunstable);
    },
  );

  // Figure 7 of the paper: whatever the follower's log, the leader brings it to its own.
  test.each<[string, number[]]>([
    ["a", [1, 1, 1, 4, 4, 5, 5, 6, 6]],
    ["b", [1, 1, 1, 4]],
    ["c", [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]],
    ["d", [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]],
    ["e", [1, 1, 1, 4, 4, 4, 4]],
    ["f", [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]],
  ])("the leader syncs follower log (%s) of Figure 7", (_n, followerLog) => {
    const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    const net = new Network([1, 2, 3], noCQ);
    const ls = storageWith([1, 2, 3], leaderLog);
    ls.setHardState({ term: 8, vote: 0, commit: leaderLog.length });
    net.addNode(1, ls, { checkQuorum: false, preVote: false });
    const fs = storageWith([1, 2, 3], followerLog);
    fs.setHardState({ term: 7, vote: 0, commit: 0 });
    net.addNode(2, fs, { checkQuorum: false, preVote: false });
    // Node 3 only lends its vote: 2 may have a more up-to-date log than 1.
    net.intercept = (m) => (m.to === 3 ? "drop" : "deliver");
    net.campaign(1);
    net.send(msg({ type: "vote_resp", from: 3, to: 1, term: 9 }));
    expect(net.role(1)).toBe("leader");
    net.propose(1, "x");
    const l = terms(net.get(1).storage.entries(1, ls.lastIndex() + 1, Infinity));
    const f = terms(net.get(2).storage.entries(1, fs.lastIndex() + 1, Infinity));
    expect(f).toEqual(l);
    expect(l).toEqual([...leaderLog, 9, 9]);
  });

  test.each<[number, number]>([
    [1, 0],
    [2, 0],
    [3, 3],
  ])("Figure 8: an ack for index %i commits %i (only current-term entries are counted)", (index, wcommit) => {
    const s = storageWith([1, 2], [1, 2]);
    s.setHardState({ term: 2, vote: 0, commit: 0 });
    const r = newTestRaft(1, [1, 2], { storage: s });
    r.becomeCandidate();
    r.becomeLeader();
    r.readMessages();
    propose(r, "x");
    r.step(msg({ type: "app_resp", from: 2, to: 1, term: r.term, index }));
    expect(r.raftLog.committed).toBe(wcommit);
  });

  test("a leader commits earlier-term entries only with an entry of its term (network)", () => {
    const net = new Network([1, 2, 3, 4, 5], noCQ);
    net.campaign(1);
    // Entries 2 and 3 reach only node 2.
    for (const id of [3, 4, 5]) net.cut(1, id);
    net.propose(1, "a");
    net.propose(1, "b");
    expect(net.commit(1)).toBe(1);
    net.recover();
    net.isolate(1);
    // 2 has the longest log and wins; its empty entry commits a and b.
    net.campaign(2);
    expect(net.role(2)).toBe("leader");
    expect(net.commit(2)).toBe(4);
    expect(net.appliedData(2)).toEqual(["a", "b"]);
  });

  test("log replication with proposals at the leader and through a follower", () => {
    const net = new Network([1, 2, 3], noCQ);
    net.campaign(1);
    net.propose(1, "a");
    net.propose(2, "b"); // forwarded
    net.campaign(2);
    net.propose(1, "c"); // forwarded to the new leader 2
    for (const id of [1, 2, 3]) {
      expect(net.commit(id)).toBe(5);
      expect(net.appliedData(id)).toEqual(["a", "b", "c"]);
    }
  });

  test.each<[NodeId[], boolean]>([
    [[], true],
    [[3], true],
    [[2, 3], false],
    [[2, 3], false],
  ])("proposals with nodes %j down succeed=%s", (down, success) => {
    const net = new Network([1, 2, 3], noCQ);
    for (const id of down) net.crash(id);
    net.campaign(1);
    if (success) {
      net.propose(1, "somedata");
      expect(net.commit(1)).toBe(2);
    } else {
      expect(() => net.propose(1, "somedata")).toThrow(ProposalDroppedError);
      expect(net.commit(1)).toBe(0);
    }
  });

  test("old messages from a deposed leader are ignored", () => {
    const net = new Network([1, 2, 3], noCQ);
    net.campaign(1);
    net.campaign(2);
    net.campaign(1);
    expect(net.term(1)).toBe(3);
    // A delayed append of term 2.
    net.send(msg({ type: "app", from: 2, to: 1, term: 2, entries: ents([2], 3) }));
    net.propose(1, "somedata");
    for (const id of [1, 2, 3]) {
      expect(terms(net.get(id).storage.entries(1, 5, Infinity))).toEqual([1, 2, 3, 3]);
      expect(net.appliedData(id)).toEqual(["somedata"]);
    }
  });

  test("heartbeats commit no further than the follower's match", () => {
    const net = new Network([1, 2, 3], noCQ);
    net.campaign(1);
    net.cut(1, 3);
    net.propose(1, "a");
    net.propose(1, "b");
    expect(net.commit(1)).toBe(3);
    net.recover();
    net.ignore("app");
    net.tick(1);
    // 3 knows nothing of 2 and 3: its commit must stay at 1, the index it matches.
    expect(net.commit(3)).toBe(1);
    const hb = net.delivered.filter((m) => m.type === "heartbeat" && m.to === 3).pop();
    expect(hb?.commit).toBe(1);
  });

  test("a rejection hint skips a whole divergent term in one probe", () => {
    // Leader log terms 1 3 3 3 5 5 5 5 5; follower 1 1 1 1 2 2 (etcd TestFastLogRejection).
    const leaderLog = [1, 3, 3, 3, 5, 5, 5, 5, 5];
    const ls = storageWith([1, 2], leaderLog);
    ls.setHardState({ term: 7, vote: 0, commit: 1 });
    const leader = newTestRaft(1, [1, 2], { storage: ls });
    leader.becomeCandidate();
    leader.becomeLeader();
    leader.readMessages();
    const fs = storageWith([1, 2], [1, 1, 1, 1, 2, 2]);
    fs.setHardState({ term: 7, vote: 0, commit: 1 });
    const follower = newTestRaft(2, [1, 2], { storage: fs });
    follower.becomeFollower(8, 1);
    let probes = 0;
    leader.bcastAppend();
    for (let i = 0; i < 10; i++) {
      const out = leader.readMessages().filter((m) => m.type === "app");
      if (out.length === 0) break;
      for (const m of out) {
        probes++;
        follower.step(m);
      }
      const resp = follower.readMessages();
      if (resp.every((m) => !m.reject)) {
        for (const m of resp) leader.step(m);
        break;
      }
      for (const m of resp) leader.step(m);
    }
    // Probe at 10 (the empty entry) is rejected with hint (6, 2); the leader skips to index 1.
    expect(probes).toBeLessThanOrEqual(3);
    expect(leader.trk.progress.get(2)?.match).toBe(leader.raftLog.lastIndex());
  });
});
