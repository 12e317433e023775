// Ports of etcd-raft raft_snap_test.go and raft_flow_control_test.go, plus network-level
// snapshot catch-up and the uncommitted-size limit.
import { describe, expect, test } from "vitest";
import { ProposalDroppedError } from "../../manager/raft/core/errors.js";
import { MemoryStorage } from "../../manager/raft/core/memory-storage.js";
import type { Raft } from "../../manager/raft/core/raft.js";
import type { Snapshot } from "../../manager/raft/core/types.js";
import { Network, enc, ents, msg, newTestRaft, type TestRaftOptions } from "./helpers/network.js";

const testingSnap: Snapshot = {
  metadata: { index: 11, term: 11, confState: { voters: [1, 2], learners: [] } },
  data: new Uint8Array(),
};

function snapLeader(opts: TestRaftOptions = {}): Raft {
  const r = newTestRaft(1, [1, 2], opts);
  expect(r.restore(testingSnap)).toBe(true);
  r.becomeCandidate();
  r.becomeLeader();
  r.readMessages();
  return r;
}

function prop(r: Raft, data: Uint8Array = enc("somedata")): void {
  r.step(msg({ type: "prop", from: 1, entries: [{ term: 0, index: 0, type: "normal", data }] }));
}

describe("snapshots (raft_snap_test.go)", () => {
  test("a follower whose next entry is compacted gets a snapshot; its progress waits for it", () => {
    const r = snapLeader();
    const pr = r.trk.progress.get(2)!;
    pr.next = r.raftLog.firstIndex();
    r.step(msg({ type: "app_resp", from: 2, to: 1, term: r.term, index: pr.next - 1, reject: true }));
    expect(pr.state).toBe("snapshot");
    expect(pr.pendingSnapshot).toBe(11);
    const ms = r.readMessages();
    expect(ms.map((m) => [m.type, m.snapshot?.metadata.index])).toEqual([["snap", 11]]);
  });

  test("replication pauses while a snapshot is pending", () => {
    const r = snapLeader();
    r.trk.progress.get(2)!.becomeSnapshot(11);
    prop(r);
    expect(r.readMessages()).toEqual([]);
  });

  test("a failed snapshot falls back to probing from match", () => {
    const r = snapLeader();
    const pr = r.trk.progress.get(2)!;
    pr.next = 1;
    pr.becomeSnapshot(11);
    r.step(msg({ type: "snap_status", from: 2, to: 1, reject: true }));
    expect([pr.pendingSnapshot, pr.next, pr.msgAppFlowPaused, pr.state]).toEqual([0, 1, true, "probe"]);
  });

  test("a delivered snapshot resumes probing after it", () => {
    const r = snapLeader();
    const pr = r.trk.progress.get(2)!;
    pr.next = 1;
    pr.becomeSnapshot(11);
    r.step(msg({ type: "snap_status", from: 2, to: 1, reject: false }));
    expect([pr.pendingSnapshot, pr.next, pr.msgAppFlowPaused, pr.state]).toEqual([0, 12, true, "probe"]);
  });

  test("an ack at or past the pending snapshot aborts it", () => {
    const r = snapLeader();
    const pr = r.trk.progress.get(2)!;
    pr.next = 1;
    pr.becomeSnapshot(11);
    r.step(msg({ type: "app_resp", from: 2, to: 1, term: r.term, index: 11 }));
    expect([pr.pendingSnapshot, pr.next, pr.state]).toEqual([0, 13, "replicate"]);
    expect(pr.inflights.count()).toBe(1); // the leader's empty entry went out at once
  });

  test("no snapshot is sent to a peer that is not recently active", () => {
    const r = snapLeader();
    const pr = r.trk.progress.get(2)!;
    pr.next = r.raftLog.firstIndex() - 1;
    pr.recentActive = false;
    r.bcastAppend();
    expect(r.readMessages()).toEqual([]);
    pr.recentActive = true;
    r.bcastAppend();
    expect(r.readMessages().map((m) => m.type)).toEqual(["snap"]);
  });

  test("restore installs the snapshot and configuration; a second identical one is ignored", () => {
    const r = newTestRaft(1, [1, 2]);
    const s: Snapshot = {
      ...testingSnap,
      metadata: { ...testingSnap.metadata, confState: { voters: [1, 2, 3], learners: [] } },
    };
    expect(r.restore(s)).toBe(true);
    expect(r.raftLog.lastIndex()).toBe(11);
    expect(r.raftLog.term(11)).toBe(11);
    expect(r.trk.voterNodes()).toEqual([1, 2, 3]);
    expect(r.restore(s)).toBe(false);
    // Not promotable until the snapshot is persisted.
    r.step(msg({ type: "hup", from: 1 }));
    expect(r.state).toBe("follower");
  });

  test("a snapshot whose last entry we already have only fast-forwards the commit", () => {
    const s = new MemoryStorage({ voters: [1, 2], learners: [] });
    s.append(ents([1, 1, 1]));
    s.setHardState({ term: 1, vote: 0, commit: 1 });
    const r = newTestRaft(1, [1, 2], { storage: s });
    const snap = (index: number): Snapshot => ({
      metadata: { index, term: 1, confState: { voters: [1, 2], learners: [] } },
      data: new Uint8Array(),
    });
    expect(r.restore(snap(1))).toBe(false);
    expect(r.raftLog.committed).toBe(1);
    expect(r.restore(snap(2))).toBe(false);
    expect(r.raftLog.committed).toBe(2);
    expect(r.raftLog.lastIndex()).toBe(3);
  });

  test("a snapshot that does not include this node is refused", () => {
    const r = newTestRaft(3, [1, 2, 3]);
    expect(r.restore(testingSnap)).toBe(false);
  });

  test("network: a follower behind the compacted log catches up by snapshot, then by appends", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(3);
    for (let i = 0; i < 10; i++) net.propose(1, `v${i}`);
    const ls = net.get(1).storage;
    const applied = net.raw(1).status().applied;
    ls.createSnapshot(applied, net.get(1).confState, enc("state@" + applied));
    ls.compact(applied);
    net.recover();
    net.tickAll(3);
    const n3 = net.get(3);
    expect(n3.snapshots.map((s) => s.metadata.index)).toEqual([applied]);
    expect(n3.storage.firstIndex()).toBe(applied + 1);
    // The driver reports the snapshot delivered (a real transport would after streaming it).
    net.act(1, (n) => n.reportSnapshot(3, true));
    net.propose(1, "after");
    net.tickAll(2);
    expect(net.commit(3)).toBe(net.commit(1));
    expect(net.appliedData(3)).toEqual(["after"]);
    expect(net.raw(1).status().progress?.[3].state).toBe("replicate");
  });

  test("network: a snapshot message lost and reported failed is retried", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(3);
    for (let i = 0; i < 3; i++) net.propose(1, `v${i}`);
    const ls = net.get(1).storage;
    const applied = net.raw(1).status().applied;
    ls.createSnapshot(applied, net.get(1).confState, new Uint8Array());
    ls.compact(applied);
    net.recover();
    net.ignore("snap");
    net.tickAll(2);
    expect(net.raw(1).status().progress?.[3].state).toBe("snapshot");
    net.act(1, (n) => n.reportSnapshot(3, false));
    expect(net.raw(1).status().progress?.[3].state).toBe("probe");
    net.recover();
    net.tickAll(3);
    expect(net.get(3).snapshots).toHaveLength(1);
    net.act(1, (n) => n.reportSnapshot(3, true));
    net.tickAll(2);
    expect(net.commit(3)).toBe(net.commit(1));
  });

  test("network: a node restarts from its snapshot and log", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
    const s2 = net.get(2).storage;
    const applied = net.raw(2).status().applied;
    s2.createSnapshot(applied - 2, net.get(2).confState, new Uint8Array());
    s2.compact(applied - 2);
    net.crash(2);
    net.propose(1, "while down");
    net.restart(2);
    expect(net.raw(2).status().commit).toBe(applied);
    net.tickAll(3);
    expect(net.commit(2)).toBe(net.commit(1));
    // Re-applied from the snapshot onwards.
    expect(net.appliedData(2)).toEqual(["v3", "v4", "while down"]);
  });
});

describe("flow control (raft_flow_control_test.go)", () => {
  function replicatingLeader(opts: TestRaftOptions): Raft {
    const r = newTestRaft(1, [1, 2], opts);
    r.becomeCandidate();
    r.becomeLeader();
    r.readMessages();
    r.trk.progress.get(2)!.becomeReplicate();
    return r;
  }

  test("the inflight window fills up by count, then nothing is sent", () => {
    const r = replicatingLeader({ maxInflightMsgs: 8 });
    const pr = r.trk.progress.get(2)!;
    for (let i = 0; i < 8; i++) {
      prop(r);
      expect(r.readMessages()).toHaveLength(1);
    }
    expect(pr.inflights.full()).toBe(true);
    for (let i = 0; i < 10; i++) {
      prop(r);
      expect(r.readMessages()).toEqual([]);
    }
  });

  test("acks move the window forward", () => {
    const r = replicatingLeader({ maxInflightMsgs: 8 });
    const pr = r.trk.progress.get(2)!;
    // Index 1 is the empty entry, sent before replicate; fill the window from index 2.
    for (let i = 0; i < 8; i++) prop(r);
    r.readMessages();
    for (let tt = 2; tt < 8; tt++) {
      r.step(msg({ type: "app_resp", from: 2, to: 1, term: r.term, index: tt }));
      r.readMessages();
      prop(r);
      expect(r.readMessages()).toHaveLength(1);
      expect(pr.inflights.full()).toBe(true);
      // Stale acks free nothing.
      for (let i = 0; i < tt; i++) {
        r.step(msg({ type: "app_resp", from: 2, to: 1, term: r.term, index: i }));
        expect(pr.inflights.full()).toBe(true);
      }
    }
  });

  test("a heartbeat response lets exactly one empty append through a full window", () => {
    const r = replicatingLeader({ maxInflightMsgs: 8 });
    for (let i = 0; i < 8; i++) prop(r);
    r.readMessages();
    for (let tt = 1; tt < 5; tt++) {
      r.step(msg({ type: "heartbeat_resp", from: 2, to: 1, term: r.term }));
      const ms = r.readMessages();
      expect(ms.map((m) => [m.type, m.entries.length])).toEqual([["app", 0]]);
      // Paused again: proposals still do not go out.
      prop(r);
      expect(r.readMessages()).toEqual([]);
    }
  });

  test("the inflight window is bounded by bytes too", () => {
    const payload = new Uint8Array(1000);
    const r = replicatingLeader({ maxInflightMsgs: 100, maxInflightBytes: 3000, maxSizePerMsg: 1000 });
    const pr = r.trk.progress.get(2)!;
    let sent = 0;
    for (let i = 0; i < 10; i++) {
      prop(r, payload);
      sent += r.readMessages().length;
    }
    // The leader's empty entry (0 bytes) goes alone first, then three 1000-byte entries.
    expect(sent).toBe(4);
    expect(pr.inflights.bytes()).toBe(3000);
    expect(pr.inflights.full()).toBe(true);
    r.step(msg({ type: "app_resp", from: 2, to: 1, term: r.term, index: pr.match + 2 }));
    // One message freed: the next batch goes out (several entries in one message up to maxSizePerMsg).
    expect(r.readMessages().length).toBeGreaterThan(0);
  });

  test("entries are batched up to maxSizePerMsg", () => {
    const r = newTestRaft(1, [1, 2], { maxSizePerMsg: 2500 });
    r.becomeCandidate();
    r.becomeLeader();
    r.readMessages();
    const payload = new Uint8Array(1000);
    // Follower 2 in probe, paused after the first message.
    r.bcastAppend();
    r.readMessages();
    for (let i = 0; i < 6; i++) prop(r, payload);
    expect(r.readMessages()).toEqual([]);
    // The probe ack switches to replicate and sends everything, two 1000-byte entries per message.
    r.step(msg({ type: "app_resp", from: 2, to: 1, term: r.term, index: 1 }));
    const ms = r.readMessages();
    expect(ms.map((m) => m.entries.length)).toEqual([2, 2, 2]);
  });

  test("the uncommitted log is bounded; proposals beyond it are dropped; commits free the budget", () => {
    const net = new Network([1, 2, 3], { config: { maxUncommittedEntriesSize: 1000 } });
    net.campaign(1);
    net.cut(1, 2);
    net.cut(1, 3);
    const data = new Uint8Array(100);
    for (let i = 0; i < 10; i++) net.propose(1, data);
    expect(() => net.propose(1, data)).toThrow(ProposalDroppedError);
    expect(() => net.propose(1, new Uint8Array(1))).toThrow(ProposalDroppedError);
    // Empty proposals are never refused (they cost nothing).
    net.propose(1, new Uint8Array(0));
    net.recover();
    net.tickAll(2);
    expect(net.commit(1)).toBe(12);
    expect(net.raw(1).raft.uncommittedSize).toBe(0);
    // One proposal larger than the whole budget is accepted when nothing is uncommitted.
    net.cut(1, 2);
    net.cut(1, 3);
    net.propose(1, new Uint8Array(5000));
    expect(() => net.propose(1, new Uint8Array(1))).toThrow(ProposalDroppedError);
  });

  test("committed entries are paged by maxCommittedSizePerReady", () => {
    const net = new Network([1], { config: { maxCommittedSizePerReady: 100 } });
    net.campaign(1);
    const n = net.raw(1);
    for (let i = 0; i < 5; i++) n.propose(new Uint8Array(60));
    const pages: number[] = [];
    while (n.hasReady()) {
      const rd = n.ready();
      net.get(1).storage.append(rd.entries);
      if (rd.hardState) net.get(1).storage.setHardState(rd.hardState);
      pages.push(rd.committedEntries.length);
      n.advance();
    }
    expect(pages).toEqual([1, 1, 1, 1, 1]);
    expect(n.status().applied).toBe(6);
  });

  test("reportUnreachable stops pipelining to that follower", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.propose(1, "a");
    expect(net.raw(1).status().progress?.[2].state).toBe("replicate");
    net.act(1, (n) => n.reportUnreachable(2));
    expect(net.raw(1).status().progress?.[2].state).toBe("probe");
    net.tickAll(2);
    expect(net.raw(1).status().progress?.[2].state).toBe("replicate");
  });
});
