// Bounded input on the cluster port, tried as anyone who can reach it would: no certificate at
// all, 100 MB messages to a certificate-only method and to the open join call, and the services
// a node needs a certificate for. A real shoald (a one-manager cluster) in its own network
// namespace; the memory is the daemon's resident set read from /proc.
import { readFile } from "node:fs/promises";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { docker } from "../helpers/cli.js";
import { probe, probeOne, type ProbeCall } from "../helpers/grpc-probe.js";

let d: TestDaemon;

beforeAll(async () => {
  d = await startDaemon();
  const init = await docker(d.socket, ["swarm", "init"]);
  if (init.code !== 0) throw new Error(`swarm init failed: ${init.stderr}`);
});

afterAll(async () => {
  await d?.destroy();
});

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (!kb) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kb) * 1024;
}

const MB = 1024 * 1024;

describe("port 2377 from an unauthenticated client", () => {
  it("refuses 100 MB messages without the daemon's memory growing by more than a few MB", async () => {
    const pid = d.process.pid;
    if (pid === undefined) throw new Error("no daemon pid");
    const before = await rssBytes(pid);
    const huge: ProbeCall[] = [
      // Needs a certificate: refused from its headers, before the message is read.
      {
        service: "Dispatcher",
        method: "heartbeat",
        type: "HeartbeatRequest",
        pad: { field: "sessionId", bytes: 100 * MB },
      },
      // Open to joining nodes: refused from the message's length prefix.
      {
        service: "CA",
        method: "issueNodeCertificate",
        type: "IssueNodeCertificateRequest",
        pad: { field: "csr", bytes: 100 * MB },
      },
    ];
    const results = await probe(d.netns, [...huge, ...huge, ...huge]);
    const after = await rssBytes(pid);
    expect((after - before) / MB).toBeLessThan(20);
    expect(results.map((r) => r.code)).toEqual([
      grpc.status.UNAUTHENTICATED,
      grpc.status.RESOURCE_EXHAUSTED,
      grpc.status.UNAUTHENTICATED,
      grpc.status.RESOURCE_EXHAUSTED,
      grpc.status.UNAUTHENTICATED,
      grpc.status.RESOURCE_EXHAUSTED,
    ]);
    // Still serving.
    const root = await probeOne(d.netns, {
      service: "CA",
      method: "getRootCaCertificate",
      type: "RootCARequest",
    });
    expect(root.code, root.details).toBe(grpc.status.OK);
    expect(String(root.response?.caCert)).toContain("BEGIN CERTIFICATE");
  });

  it("gets UNAUTHENTICATED from every service but the CA's join calls", async () => {
    const calls: ProbeCall[] = [
      { service: "Dispatcher", method: "session", type: "SessionRequest" },
      { service: "Dispatcher", method: "heartbeat", type: "HeartbeatRequest" },
      { service: "Dispatcher", method: "assignments", type: "AssignmentsRequest" },
      { service: "Dispatcher", method: "updateTaskStatus", type: "UpdateTaskStatusRequest" },
      { service: "CA", method: "renewNodeCertificate", type: "RenewNodeCertificateRequest" },
      { service: "ResourceAllocator", method: "attachNetwork", type: "AttachNetworkRequest" },
      { service: "ResourceAllocator", method: "detachNetwork", type: "DetachNetworkRequest" },
      {
        service: "Node",
        method: "forward",
        type: "HttpRequest",
        request: { method: "GET", url: "/swarm", headers: [] },
      },
      {
        service: "Node",
        method: "joinRaft",
        type: "JoinRaftRequest",
        request: { raftId: 5, addr: "127.0.0.1:1" },
      },
      { service: "Node", method: "leaveRaft", type: "LeaveRaftRequest", request: { raftId: 1 } },
      {
        service: "Raft",
        method: "send",
        type: "RaftMessage",
        requests: [{ type: 13, to: 1, from: 2, term: 1 }],
      },
      { service: "Raft", method: "sendSnapshot", type: "SnapshotChunk", requests: [{ totalSize: 0 }] },
    ];
    const results = await probe(d.netns, calls);
    expect(results.map((r, i) => `${calls[i].service}.${calls[i].method} ${r.code}`)).toEqual(
      calls.map((c) => `${c.service}.${c.method} ${grpc.status.UNAUTHENTICATED}`),
    );
  });
});
