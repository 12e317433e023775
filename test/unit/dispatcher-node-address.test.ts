// The address the dispatcher records for a node, which every host's overlay rules are written
// from: the connection's where it can say, otherwise the node's own word once it is a plain
// IPv4 address. Text that could become a second `bridge -batch` command is refused.
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { createCsr, createRootCA, makeJoinToken, newNodeKey } from "../../manager/ca/ca.js";
import { CAServer } from "../../manager/ca/server.js";
import type { IssueNodeCertificateRequest, IssueNodeCertificateResponse } from "../../proto/gen/cluster.js";
import { checkReportedAddress, nodeAddress, peerIp } from "../../manager/dispatcher/node-address.js";
import { ClusterStore, localProposer } from "../../manager/store/store.js";
import { isShoalError } from "../../shared/errors.js";
import { silentLogger } from "../../shared/logging.js";

function refusal(fn: () => unknown): { status: number; message: string } {
  try {
    fn();
  } catch (e) {
    if (isShoalError(e)) return { status: e.status, message: e.message };
    throw e;
  }
  throw new Error("expected the address to be refused");
}

describe("a node's reported address", () => {
  it("is refused when it carries a newline and a command", () => {
    const r = refusal(() =>
      checkReportedAddress("node1", "10.0.0.1\nfdb add 00:11:22:33:44:55 dev vx-x dst 10.9.9.9"),
    );
    expect(r.status).toBe(400);
    expect(r.message).toContain("node node1");
    expect(r.message).toContain(JSON.stringify("10.0.0.1\nfdb add 00:11:22:33:44:55 dev vx-x dst 10.9.9.9"));
    expect(r.message).toContain("--advertise-addr");
  });

  it("is refused when it is a hostname, has a port, spaces, or is IPv6", () => {
    for (const bad of ["manager1.example", "10.0.0.1:2377", " 10.0.0.1", "10.0.0.1 ", "10.0.0.256", "10.0.0"])
      expect(refusal(() => checkReportedAddress("n", bad)).message).toContain("is not an IPv4 address");
    for (const v6 of ["fe80::1", "2001:db8::1", "::1"])
      expect(refusal(() => checkReportedAddress("n", v6)).message).toContain("IPv4 only");
  });

  it("is kept when it is a plain IPv4 address", () => {
    expect(checkReportedAddress("n", "192.168.79.2")).toBe("192.168.79.2");
  });
});

describe("the address recorded for a node", () => {
  it("is the connection's peer address when it comes from another host", () => {
    expect(nodeAddress("n", "192.168.79.2:40122", "192.168.79.9")).toBe("192.168.79.2");
    expect(nodeAddress("n", "::ffff:192.168.79.2:40122", undefined)).toBe("192.168.79.2");
    expect(nodeAddress("n", "192.168.79.2:40122", "")).toBe("192.168.79.2");
  });

  it("is the checked reported address when the connection says nothing of the underlay", () => {
    expect(nodeAddress("n", "127.0.0.1:40122", "192.168.79.9")).toBe("192.168.79.9");
    expect(nodeAddress("n", "[::1]:40122", "192.168.79.9")).toBe("192.168.79.9");
    expect(nodeAddress("n", "2001:db8::5:40122", "192.168.79.9")).toBe("192.168.79.9");
    expect(nodeAddress("n", "unknown", "192.168.79.9")).toBe("192.168.79.9");
    // Nothing usable either way: what is stored stays.
    expect(nodeAddress("n", "127.0.0.1:40122", undefined)).toBeUndefined();
  });

  it("refuses a bad reported address even when the connection would do", () => {
    expect(refusal(() => nodeAddress("n", "192.168.79.2:40122", "192.168.79.2\nfdb add x")).status).toBe(400);
  });

  it("reads gRPC peer strings", () => {
    expect(peerIp("10.1.2.3:5")).toBe("10.1.2.3");
    expect(peerIp("ipv4:10.1.2.3:5")).toBe("10.1.2.3");
    expect(peerIp("[2001:db8::1]:5")).toBe("2001:db8::1");
    expect(peerIp("::ffff:10.1.2.3:5")).toBe("10.1.2.3");
    expect(peerIp("unknown")).toBeUndefined();
  });
});

type JoinCall = grpc.ServerUnaryCall<IssueNodeCertificateRequest, IssueNodeCertificateResponse>;

describe("a joining node's reported address", () => {
  async function join(addr: string): Promise<{ err: Partial<grpc.StatusObject> | null; nodes: number }> {
    const store = new ClusterStore();
    store.setProposer(localProposer(store));
    const ca = await createRootCA();
    const token = makeJoinToken(ca.certPem);
    await store.update((tx) => {
      tx.create("clusters", {
        Spec: { Name: "default" },
        JoinTokens: { Worker: token, Manager: makeJoinToken(ca.certPem) },
        RootCA: { CACert: ca.certPem, CAKey: ca.keyPem },
      });
    });
    const server = new CAServer({
      store,
      isLeader: () => true,
      leaderAddr: () => undefined,
      log: silentLogger(),
    });
    const csr = await createCsr(await newNodeKey(), {
      nodeId: "joining",
      role: "worker",
      clusterId: "joining",
    });
    const request = {
      token,
      csr,
      listenAddr: "",
      description: {
        hostname: "h",
        os: "linux",
        architecture: "x86_64",
        nanoCpus: 1e9,
        memoryBytes: 2 ** 30,
        addr,
      },
    };
    const err = await new Promise<Partial<grpc.StatusObject> | null>((resolve) =>
      server
        .implementation()
        .issueNodeCertificate(
          { request, getPeer: () => "127.0.0.1:1", getAuthContext: () => null } as unknown as JoinCall,
          (e) => resolve(e ?? null),
        ),
    );
    return { err, nodes: store.view((tx) => tx.list("nodes")).length };
  }

  it("is refused at join when it carries a newline, and no node is written", async () => {
    const r = await join("10.0.0.1\nfdb add 00:11:22:33:44:55 dev vx-x dst 10.9.9.9");
    expect(r.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(r.err?.details).toContain("is not an IPv4 address");
    expect(r.nodes).toBe(0);
  });

  it("is accepted when it is a plain IPv4 address", async () => {
    const r = await join("192.168.79.2");
    expect(r.err).toBeNull();
    expect(r.nodes).toBe(1);
  });
});
