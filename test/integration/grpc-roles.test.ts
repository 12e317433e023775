// Roles on the cluster port, tried as an attacker would: a real shoald (a one-manager cluster in
// its own network namespace) and nodes admitted by hand through the CA with the real join tokens,
// whose certificates are then used for gRPC calls they should not be able to make: a worker's on
// manager calls, a demoted manager's and a removed worker's saved certificates, a manager's
// certificate speaking for another Raft member, and a stream of wrong join tokens.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { docker } from "../helpers/cli.js";
import { holdSession, joinByHand, probeOne, type JoinedNode, type ProbeCall } from "../helpers/grpc-probe.js";
import { createCsr, newNodeKey } from "../../manager/ca/ca.js";

let d: TestDaemon;
let tokens: { worker: string; manager: string };
let raftId: number;
const holders: Array<() => Promise<void>> = [];
const dk = (args: string[]) => docker(d.socket, args);

beforeAll(async () => {
  d = await startDaemon();
  const init = await dk(["swarm", "init"]);
  if (init.code !== 0) throw new Error(`swarm init failed: ${init.stderr}`);
  tokens = {
    worker: (await dk(["swarm", "join-token", "-q", "worker"])).stdout.trim(),
    manager: (await dk(["swarm", "join-token", "-q", "manager"])).stdout.trim(),
  };
  const state = JSON.parse(await readFile(join(d.dataRoot, "swarm", "state.json"), "utf8")) as {
    raftId: number;
  };
  raftId = state.raftId;
});

afterAll(async () => {
  for (const stop of holders.splice(0)) await stop().catch(() => undefined);
  await d?.destroy();
});

async function hold(node: JoinedNode): Promise<{ sessionId: string; stop: () => Promise<void> }> {
  const h = await holdSession(d.netns, node.identity);
  holders.push(h.stop);
  return h;
}

const call = (node: JoinedNode, c: ProbeCall) => probeOne(d.netns, c, { identity: node.identity });

const joinRaft: ProbeCall = {
  service: "Node",
  method: "joinRaft",
  type: "JoinRaftRequest",
  request: { raftId: 987654, addr: "127.0.0.1:1" },
};
const raftMessage = (from: number, term = 1_000_000): ProbeCall => ({
  service: "Raft",
  method: "send",
  type: "RaftMessage",
  // An append of a far newer term: taken, it would depose the leader.
  requests: [{ type: 4, to: raftId, from, term, logTerm: term, index: 1 }],
});
const forward = (method: string, url: string): ProbeCall => ({
  service: "Node",
  method: "forward",
  type: "HttpRequest",
  request: { method, url, headers: [] },
});
const renew = async (): Promise<ProbeCall> => ({
  service: "CA",
  method: "renewNodeCertificate",
  type: "RenewNodeCertificateRequest",
  // The CSR asks for a manager's certificate; the store's role is what counts.
  request: {
    csr: await createCsr(await newNodeKey(), { nodeId: "x", role: "manager", clusterId: "x" }),
  },
});
const session: ProbeCall = { service: "Dispatcher", method: "session", type: "SessionRequest" };
const issue = (token: string): ProbeCall => ({
  service: "CA",
  method: "issueNodeCertificate",
  type: "IssueNodeCertificateRequest",
  request: { token, csr: "" },
});

describe("a worker's certificate", () => {
  it("opens the dispatcher and its own renewal, and no manager call (Raft, JoinRaft, a manager certificate)", async () => {
    const worker = await joinByHand(d.netns, tokens.worker);
    expect(worker.role).toBe("worker");
    expect((await call(worker, session)).code).toBe(grpc.status.OK);

    const join = await call(worker, joinRaft);
    expect(join.code).toBe(grpc.status.PERMISSION_DENIED);
    const raft = await call(worker, raftMessage(raftId));
    expect(raft.code).toBe(grpc.status.PERMISSION_DENIED);
    const snapshot = await call(worker, {
      service: "Raft",
      method: "sendSnapshot",
      type: "SnapshotChunk",
      requests: [{ totalSize: 0, offset: 0 }],
    });
    expect(snapshot.code).toBe(grpc.status.PERMISSION_DENIED);
    // With the manager token in hand, the worker's certificate still mints no manager.
    const minted = await call(worker, issue(tokens.manager));
    expect(minted.code, minted.details).toBe(grpc.status.PERMISSION_DENIED);
    expect(minted.details).toContain("already holds a node certificate");
    const renewed = await call(worker, await renew());
    expect(renewed.code, renewed.details).toBe(grpc.status.OK);
    expect(renewed.response?.role).toBe("worker");
    expect(renewed.response?.cert).toBeTruthy();
  });

  it("cannot act in another node's session (the node is its certificate's, never the request's)", async () => {
    const a = await joinByHand(d.netns, tokens.worker);
    const b = await joinByHand(d.netns, tokens.worker);
    const { sessionId, stop } = await hold(a);
    try {
      const heartbeat = await call(b, {
        service: "Dispatcher",
        method: "heartbeat",
        type: "HeartbeatRequest",
        request: { sessionId },
      });
      expect(heartbeat.code).toBe(grpc.status.NOT_FOUND);
      expect(heartbeat.details).toContain(`of node ${b.nodeId}`);
      const status = await call(b, {
        service: "Dispatcher",
        method: "updateTaskStatus",
        type: "UpdateTaskStatusRequest",
        request: { sessionId, updates: [{ taskId: "sometask", state: "failed" }] },
      });
      expect(status.code).toBe(grpc.status.NOT_FOUND);
    } finally {
      await stop();
    }
  });
});

describe("a demoted manager's saved certificate", () => {
  it("is refused on Raft, JoinRaft and Forward once the demotion commits; its renewal is a worker's", async () => {
    const other = await joinByHand(d.netns, tokens.manager);
    const demoted = await joinByHand(d.netns, tokens.manager);
    expect(demoted.role).toBe("manager");
    // Both count as reachable managers, so the quorum rule lets the demotion go ahead.
    const holds = [await hold(other), await hold(demoted)];
    const before = await call(demoted, forward("GET", "/nodes"));
    expect(before.code, before.details).toBe(grpc.status.OK);
    expect(before.response?.status).toBe(200);

    const r = await dk(["node", "demote", demoted.nodeId]);
    expect(r.code, r.stderr).toBe(0);
    for (const h of holds) await h.stop();

    const join = await call(demoted, joinRaft);
    expect(join.code, join.details).toBe(grpc.status.PERMISSION_DENIED);
    expect(join.details).toContain("demoted");
    const raft = await call(demoted, raftMessage(raftId));
    expect(raft.code, raft.details).toBe(grpc.status.PERMISSION_DENIED);
    const fwd = await call(demoted, forward("GET", "/nodes"));
    expect(fwd.code, fwd.details).toBe(grpc.status.PERMISSION_DENIED);
    const renewed = await call(demoted, await renew());
    expect(renewed.code, renewed.details).toBe(grpc.status.OK);
    expect(renewed.response?.role).toBe("worker");
  });
});

describe("a removed worker's saved certificate", () => {
  it("is refused on every service: dispatcher, CA renewal, ResourceAllocator, Node", async () => {
    const worker = await joinByHand(d.netns, tokens.worker);
    const { sessionId, stop } = await hold(worker);
    await stop();
    const r = await dk(["node", "rm", "--force", worker.nodeId]);
    expect(r.code, r.stderr).toBe(0);

    const calls: ProbeCall[] = [
      session,
      { service: "Dispatcher", method: "heartbeat", type: "HeartbeatRequest", request: { sessionId } },
      { service: "Dispatcher", method: "assignments", type: "AssignmentsRequest", request: { sessionId } },
      await renew(),
      {
        service: "ResourceAllocator",
        method: "attachNetwork",
        type: "AttachNetworkRequest",
        request: { network: "ingress", containerId: "c".repeat(64) },
      },
      {
        service: "ResourceAllocator",
        method: "detachNetwork",
        type: "DetachNetworkRequest",
        request: { attachmentId: "someattachment" },
      },
      forward("GET", "/nodes"),
      { service: "Node", method: "leaveRaft", type: "LeaveRaftRequest", request: { raftId } },
    ];
    for (const c of calls) {
      const res = await call(worker, c);
      expect({ call: `${c.service}.${c.method}`, code: res.code }, res.details).toEqual({
        call: `${c.service}.${c.method}`,
        code: grpc.status.PERMISSION_DENIED,
      });
      expect(res.details).toContain("removed");
    }
  });
});

describe("a Raft message's sender", () => {
  it("must be the member whose certificate sent it; a forged one is refused, logged once, and the leader stays", async () => {
    const forger = await joinByHand(d.netns, tokens.manager);
    for (let i = 0; i < 3; i++) {
      const r = await call(forger, raftMessage(raftId));
      expect(r.code, r.details).toBe(grpc.status.PERMISSION_DENIED);
    }
    const logged = d
      .logs()
      .split("\n")
      .filter((l) => l.includes("refused a peer") && l.includes(forger.nodeId));
    expect(logged).toHaveLength(1);
    const leader = await dk(["node", "inspect", "self", "--format", "{{.ManagerStatus.Leader}}"]);
    expect(leader.stdout.trim()).toBe("true");
    const write = await dk(["swarm", "update", "--task-history-limit", "6"]);
    expect(write.code, write.stderr).toBe(0);
  });
});

// Last: it leaves this test's address rate-limited.
describe("join tokens", () => {
  it("a wrong token is refused, and a source repeating wrong ones is rate-limited (then even a right one waits)", async () => {
    const digest = tokens.worker.split("-")[2];
    const wrong = `SWMTKN-1-${digest}-${randomBytes(16).toString("hex").slice(0, 25)}`;
    const codes: number[] = [];
    for (let i = 0; i < 8; i++) codes.push((await probeOne(d.netns, issue(wrong))).code);
    expect(codes[0]).toBe(grpc.status.PERMISSION_DENIED);
    expect(codes.slice(-2)).toEqual([grpc.status.RESOURCE_EXHAUSTED, grpc.status.RESOURCE_EXHAUSTED]);
    const right = await probeOne(d.netns, issue(tokens.worker));
    expect(right.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(right.details).toContain("too many failed joins");
    const lines = d
      .logs()
      .split("\n")
      .filter((l) => l.includes("bad join token"));
    expect(lines).toHaveLength(1);
  });
});
