// ReadIndex (etcd TestReadOnlyOptionSafe, TestReadOnlyForNewLeader), membership changes
// (learners, promotion, removal, one at a time) and leader transfer (etcd TestLeaderTransfer*).
import { describe, expect, test } from "vitest";
import { decodeConfChange, encodeConfChange } from "../../manager/raft/core/conf-change.js";
import { ProposalDroppedError } from "../../manager/raft/core/errors.js";
import { MemoryStorage } from "../../manager/raft/core/memory-storage.js";
import type { ConfChange } from "../../manager/raft/core/types.js";
import { Network, dec, enc, msg, newTestRaft } from "./helpers/network.js";

const reads = (net: Network, id: number): [number, string][] =>
  net.get(id).readStates.map((r) => [r.index, dec(r.requestCtx)]);

describe("ReadIndex", () => {
  test("on the leader and forwarded from followers, at the commit index of the request", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.act(1, (n) => n.readIndex(enc("ctx1")));
    expect(reads(net, 1)).toEqual([[1, "ctx1"]]);
    net.propose(1, "a");
    net.act(2, (n) => n.readIndex(enc("ctx2")));
    expect(reads(net, 2)).toEqual([[2, "ctx2"]]);
    net.act(3, (n) => n.readIndex(enc("ctx3")));
    expect(reads(net, 3)).toEqual([[2, "ctx3"]]);
    expect(reads(net, 1)).toEqual([[1, "ctx1"]]);
  });

  test("needs a quorum of heartbeat acks: an isolated leader answers nothing", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(1);
    net.act(1, (n) => n.readIndex(enc("x")));
    net.tick(1, 3);
    expect(reads(net, 1)).toEqual([]);
    // One follower back is enough for a majority.
    net.recover();
    net.cut(1, 3);
    net.tick(1);
    expect(reads(net, 1)).toEqual([[1, "x"]]);
  });

  test("a new leader answers only after committing an entry of its term", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.propose(1, "a");
    // Leadership moves to 2, whose empty entry of term 2 does not get through yet.
    net.ignore("app");
    net.act(1, (n) => n.transferLeader(2));
    expect(net.leaders()).toEqual([2]);
    net.tickAll(1); // heartbeats: 3 learns who leads
    net.act(2, (n) => n.readIndex(enc("early")));
    net.act(3, (n) => n.readIndex(enc("fwd")));
    net.tickAll(2);
    expect(net.raw(2).raft.committedEntryInCurrentTerm()).toBe(false);
    expect(reads(net, 2)).toEqual([]);
    expect(reads(net, 3)).toEqual([]);
    net.recover();
    net.tickAll(2);
    const commit = net.commit(2);
    expect(net.raw(2).raft.committedEntryInCurrentTerm()).toBe(true);
    expect(reads(net, 2)).toEqual([[commit, "early"]]);
    expect(reads(net, 3)).toEqual([[commit, "fwd"]]);
  });

  test("refused at once without a known leader; a single node answers immediately", () => {
    const net = new Network([1, 2, 3]);
    expect(() => net.raw(1).readIndex(enc("x"))).toThrow(ProposalDroppedError);
    expect(() => net.raw(1).readIndex(new Uint8Array())).toThrow(/must not be empty/);
    net.crash(2);
    net.crash(3);
    net.campaign(1); // stays (pre-)candidate
    expect(() => net.raw(1).readIndex(enc("x"))).toThrow(ProposalDroppedError);
    const single = new Network([1]);
    single.campaign(1);
    single.act(1, (n) => n.readIndex(enc("s")));
    expect(reads(single, 1)).toEqual([[1, "s"]]);
  });

  test("a later confirmed read also confirms earlier pending ones", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.ignore("heartbeat_resp");
    net.act(1, (n) => n.readIndex(enc("r1")));
    net.act(1, (n) => n.readIndex(enc("r2")));
    expect(reads(net, 1)).toEqual([]);
    net.recover();
    net.tick(1); // heartbeat carries the last context, r2
    expect(reads(net, 1)).toEqual([
      [1, "r1"],
      [1, "r2"],
    ]);
  });
});

describe("membership", () => {
  const cc = (type: ConfChange["type"], nodeId: number): ConfChange => ({ type, nodeId });

  test("conf change encoding round-trips", () => {
    const c: ConfChange = { type: "add_learner", nodeId: 2 ** 40 + 3, context: enc("10.0.0.4:2380") };
    expect(decodeConfChange(encodeConfChange(c))).toEqual(c);
    expect(decodeConfChange(encodeConfChange(cc("remove_node", 7)))).toEqual(cc("remove_node", 7));
    expect(() => decodeConfChange(new Uint8Array([9, 0, 0, 0, 0, 0, 0, 0, 0, 0]))).toThrow(/version/);
  });

  test("add a learner, let it catch up (it does not count for commit), then promote it", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.propose(1, "a");
    net.act(1, (n) => n.proposeConfChange(cc("add_learner", 4)));
    expect(net.get(1).confState).toEqual({ voters: [1, 2, 3], learners: [4] });
    // The new member starts with an empty log and the bootstrap configuration (which is not in
    // the log); it learns the later changes from the log (or would get a snapshot).
    net.addNode(4, new MemoryStorage({ voters: [1, 2, 3], learners: [] }));
    net.propose(1, "b");
    net.tickAll(2);
    expect(net.appliedData(4)).toEqual(["a", "b"]);
    expect(net.get(4).confState).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(net.raw(1).status().progress?.[4].isLearner).toBe(true);
    // A learner does not make a quorum.
    net.crash(2);
    net.crash(3);
    net.propose(1, "c");
    expect(net.appliedData(1)).toEqual(["a", "b"]);
    // ...nor campaign.
    net.tick(4, 50);
    expect(net.role(4)).toBe("follower");
    net.restart(2);
    net.restart(3);
    net.tickAll(3);
    net.act(1, (n) => n.proposeConfChange(cc("add_node", 4)));
    net.tickAll(2);
    expect(net.get(4).confState).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    net.crash(2);
    net.propose(1, "d");
    expect(net.appliedData(4)).toEqual(["a", "b", "c", "d"]);
  });

  test("remove a follower: the quorum shrinks", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.crash(3);
    net.act(1, (n) => n.proposeConfChange(cc("remove_node", 3)));
    expect(net.get(1).confState.voters).toEqual([1, 2]);
    net.crash(2);
    // Quorum of {1, 2} is 2: nothing commits with 2 down...
    net.propose(1, "x");
    expect(net.appliedData(1)).toEqual([]);
    net.restart(2);
    net.tickAll(2);
    expect(net.appliedData(1)).toEqual(["x"]);
    expect(net.raw(1).status().progress?.[3]).toBeUndefined();
  });

  test("one change at a time: a second change is refused until the first is applied", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    const n = net.raw(1);
    n.proposeConfChange(cc("add_learner", 4));
    expect(() => n.proposeConfChange(cc("add_learner", 5))).toThrow(ProposalDroppedError);
    net.tickAll(1);
    expect(net.get(1).confState.learners).toEqual([4]);
    net.act(1, (x) => x.proposeConfChange(cc("add_learner", 5)));
    expect(net.get(1).confState.learners).toEqual([4, 5]);
  });

  test("a forwarded change that is refused is dropped without an error at the leader", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.cut(1, 2);
    net.cut(1, 3);
    net.act(1, (x) => x.proposeConfChange(cc("add_learner", 4)));
    net.recover();
    net.ignore("app");
    const before = net.raw(1).raft.raftLog.lastIndex();
    net.act(2, (x) => x.proposeConfChange(cc("add_learner", 5)));
    expect(net.raw(1).raft.raftLog.lastIndex()).toBe(before);
  });

  test("a new leader accepts changes only once it applied its whole inherited log", () => {
    const r = newTestRaft(1, [1, 2]);
    r.becomeCandidate();
    r.becomeLeader();
    expect(r.pendingConfIndex).toBe(0);
    const conf = {
      term: 0,
      index: 0,
      type: "conf_change" as const,
      data: encodeConfChange(cc("add_learner", 3)),
    };
    r.step(msg({ type: "prop", from: 1, entries: [{ ...conf, type: "normal", data: enc("x") }] }));
    r.step(msg({ type: "prop", from: 1, entries: [conf] }));
    expect(r.pendingConfIndex).toBe(3);
    expect(() => r.step(msg({ type: "prop", from: 1, entries: [conf] }))).toThrow(ProposalDroppedError);
    const r2 = newTestRaft(1, [1, 2], { storage: r.raftLog.storage as MemoryStorage });
    r2.raftLog.append(r.raftLog.unstableEntries());
    r2.becomeCandidate();
    r2.becomeLeader();
    expect(r2.pendingConfIndex).toBe(3);
    expect(() => r2.step(msg({ type: "prop", from: 1, entries: [conf] }))).toThrow(/unapplied conf change/);
  });

  test("removing (or demoting) the last voter is refused", () => {
    const net = new Network([1]);
    net.campaign(1);
    expect(() => net.raw(1).proposeConfChange(cc("remove_node", 1))).toThrow(ProposalDroppedError);
    expect(() => net.raw(1).proposeConfChange(cc("add_learner", 1))).toThrow(ProposalDroppedError);
    expect(() => net.raw(1).applyConfChange(cc("remove_node", 1))).toThrow(/last voter/);
  });
});

describe("leader transfer", () => {
  test("to an up-to-date follower, also when asked through a follower", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.act(1, (n) => n.transferLeader(2));
    expect(net.leaders()).toEqual([2]);
    expect(net.term(2)).toBe(2);
    net.act(3, (n) => n.transferLeader(3));
    expect(net.leaders()).toEqual([3]);
    net.propose(3, "after");
    expect(net.appliedData(1)).toEqual(["after"]);
  });

  test("to a lagging follower: the leader catches it up first", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.cut(1, 3);
    for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
    net.recover();
    net.act(1, (n) => n.transferLeader(3));
    expect(net.leaders()).toEqual([3]);
    expect(net.appliedData(3)).toHaveLength(5);
  });

  test("aborts after an election timeout if the transferee does not respond; proposals are dropped meanwhile", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(3);
    net.act(1, (n) => n.transferLeader(3));
    expect(net.raw(1).status().leadTransferee).toBe(3);
    expect(() => net.raw(1).propose(enc("x"))).toThrow(ProposalDroppedError);
    net.tick(1, 10);
    expect(net.raw(1).status().leadTransferee).toBe(0);
    expect(net.leaders()).toEqual([1]);
    net.propose(1, "y");
    expect(net.appliedData(2)).toEqual(["y"]);
  });

  test("to self, to a learner or to an unknown node is ignored; a new target replaces the old", () => {
    const net = new Network([1, 2, 3, 4], { learners: [4] });
    net.campaign(1);
    for (const t of [1, 4, 9]) {
      net.act(1, (n) => n.transferLeader(t));
      expect(net.raw(1).status().leadTransferee).toBe(0);
      expect(net.leaders()).toEqual([1]);
    }
    net.isolate(3);
    net.act(1, (n) => n.transferLeader(3));
    expect(net.raw(1).status().leadTransferee).toBe(3);
    net.act(1, (n) => n.transferLeader(2));
    expect(net.leaders()).toEqual([2]);
  });

  test("a removed transferee aborts the transfer", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    const r = net.raw(1).raft;
    net.isolate(3);
    net.act(1, (n) => n.transferLeader(3));
    expect(r.leadTransferee).toBe(3);
    net.act(1, (n) => n.applyConfChange({ type: "remove_node", nodeId: 3 }));
    expect(r.leadTransferee).toBe(0);
  });
});
