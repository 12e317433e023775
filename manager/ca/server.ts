// The CA service: how a node gets into the cluster. A joining node fetches the root certificate
// (and checks it against the digest in its token), then sends a CSR with the token; the leader
// checks the token, writes the node object through Raft and signs the CSR with the identity it
// chose (node id, role from the token, cluster id). Only the leader admits nodes, so two managers
// never hand out conflicting identities; followers point the caller to it.
import * as grpc from "@grpc/grpc-js";
import * as pb from "../../proto/gen/cluster.js";
import { isShoalError, messageOf } from "../../shared/errors.js";
import { LEADER_METADATA, peerCertificatePem } from "../../shared/grpc-tls.js";
import type { Logger } from "../../shared/logging.js";
import type { ClusterStore } from "../store/store.js";
import { newObjectId } from "../store/store.js";
import { checkReportedAddress } from "../dispatcher/node-address.js";
import type { ClusterObject, NodeObject } from "../store/types.js";
import { roleForToken, signNodeCsr, verifyNodeCertificate } from "./ca.js";

export interface CAServerOptions {
  store: ClusterStore;
  isLeader(): boolean;
  leaderAddr(): string | undefined;
  log: Logger;
}

/** A gRPC error telling the caller to go to the leader (its address in trailing metadata). */
export function notLeaderError(leaderAddr: string | undefined): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (leaderAddr) metadata.set(LEADER_METADATA, leaderAddr);
  return { code: grpc.status.UNAVAILABLE, details: "not the leader", metadata };
}

/** A ShoalError (or anything) as a gRPC status a remote daemon turns back into a message. */
export function grpcError(e: unknown): Partial<grpc.StatusObject> {
  if (isShoalError(e)) {
    const code =
      e.status === 403
        ? grpc.status.PERMISSION_DENIED
        : e.status === 401
          ? grpc.status.UNAUTHENTICATED
          : e.status === 404
            ? grpc.status.NOT_FOUND
            : e.status === 409
              ? grpc.status.ALREADY_EXISTS
              : e.status === 503
                ? grpc.status.UNAVAILABLE
                : e.status < 500
                  ? grpc.status.INVALID_ARGUMENT
                  : grpc.status.INTERNAL;
    return { code, details: e.message };
  }
  return { code: grpc.status.INTERNAL, details: messageOf(e) };
}

function nodeFromRequest(
  id: string,
  role: "manager" | "worker",
  req: pb.IssueNodeCertificateRequest,
): Omit<NodeObject, "Meta"> {
  const d = req.description;
  return {
    ID: id,
    Spec: { Role: role, Availability: "active" },
    Description: {
      Hostname: d?.hostname || id,
      Platform: { Architecture: d?.architecture || "x86_64", OS: d?.os || "linux" },
      Resources: { NanoCPUs: d?.nanoCpus ?? 0, MemoryBytes: d?.memoryBytes ?? 0 },
    },
    Status: { State: "unknown", Addr: d?.addr ?? "" },
    ...(role === "manager"
      ? { ManagerStatus: { Reachability: "unknown" as const, Addr: req.listenAddr } }
      : {}),
    ListenAddr: req.listenAddr,
  };
}

export class CAServer {
  constructor(private readonly o: CAServerOptions) {}

  private cluster(): ClusterObject {
    const c = this.o.store.view((tx) => tx.list("clusters"))[0];
    if (!c?.RootCA?.CAKey) throw new Error("this manager's store holds no cluster CA");
    return c;
  }

  implementation(): pb.CAServer {
    return {
      getRootCaCertificate: (_call, cb) => {
        try {
          cb(null, { caCert: this.cluster().RootCA?.CACert ?? "" });
        } catch (e) {
          cb(grpcError(e));
        }
      },
      issueNodeCertificate: (call, cb) => {
        this.issue(call.request, call.getPeer()).then(
          (r) => cb(null, r),
          (e: unknown) =>
            cb(e && typeof e === "object" && "code" in e ? (e as grpc.StatusObject) : grpcError(e)),
        );
      },
      renewNodeCertificate: (call, cb) => {
        this.renew(call).then(
          (r) => cb(null, r),
          (e: unknown) =>
            cb(e && typeof e === "object" && "code" in e ? (e as grpc.StatusObject) : grpcError(e)),
        );
      },
    };
  }

  private async issue(
    req: pb.IssueNodeCertificateRequest,
    peer: string,
  ): Promise<pb.IssueNodeCertificateResponse> {
    if (!this.o.isLeader()) throw notLeaderError(this.o.leaderAddr());
    const cluster = this.cluster();
    const ca = { certPem: cluster.RootCA?.CACert ?? "", keyPem: cluster.RootCA?.CAKey ?? "" };
    let role: "manager" | "worker";
    try {
      role = roleForToken(req.token, ca.certPem, cluster.JoinTokens ?? { Worker: "", Manager: "" });
    } catch (e) {
      // Logged so an operator sees who tried; nothing is written.
      this.o.log.warn({ peer, err: messageOf(e) }, "refused a node: bad join token");
      throw e;
    }
    const nodeId = newObjectId();
    // The address goes into every host's overlay rules: a joining node's is checked too.
    if (req.description?.addr) checkReportedAddress(nodeId, req.description.addr);
    const identity = { nodeId, role, clusterId: cluster.ID };
    const cert = await signNodeCsr(ca, req.csr, identity);
    await this.o.store.update((tx) => {
      tx.create("nodes", nodeFromRequest(nodeId, role, req));
    });
    this.o.log.info({ node: nodeId, role, hostname: req.description?.hostname, peer }, "admitted a node");
    return { nodeId, clusterId: cluster.ID, role, cert, caCert: ca.certPem };
  }

  private async renew(
    call: grpc.ServerUnaryCall<pb.RenewNodeCertificateRequest, pb.IssueNodeCertificateResponse>,
  ): Promise<pb.IssueNodeCertificateResponse> {
    if (!this.o.isLeader()) throw notLeaderError(this.o.leaderAddr());
    const cluster = this.cluster();
    const ca = { certPem: cluster.RootCA?.CACert ?? "", keyPem: cluster.RootCA?.CAKey ?? "" };
    const pem = peerCertificatePem(call);
    if (!pem)
      throw { code: grpc.status.UNAUTHENTICATED, details: "renewal needs the node's current certificate" };
    const who = verifyNodeCertificate(pem, ca.certPem);
    const node = this.o.store.view((tx) => tx.get("nodes", who.nodeId));
    if (!node)
      throw {
        code: grpc.status.PERMISSION_DENIED,
        details: `node ${who.nodeId} was removed from the cluster`,
      };
    // The store decides the role: a promoted or demoted node gets its new role here.
    const identity = { nodeId: node.ID, role: node.Spec.Role, clusterId: cluster.ID };
    const cert = await signNodeCsr(ca, call.request.csr, identity);
    return { nodeId: node.ID, clusterId: cluster.ID, role: node.Spec.Role, cert, caCert: ca.certPem };
  }
}
