// The CA service: how a node gets into the cluster. A joining node fetches the root certificate
// (and checks it against the digest in its token), then sends a CSR with the token; the leader
// checks the token, writes the node object through Raft and signs the CSR with the identity it
// chose (node id, role from the token, cluster id). Only the leader admits nodes, so two managers
// never hand out conflicting identities; followers point the caller to it. Tokens are compared
// in constant time, and a source that keeps sending wrong ones is slowed down (token bucket per
// address) and logged once per interval.
import * as grpc from "@grpc/grpc-js";
import * as pb from "../../proto/gen/cluster.js";
import { isShoalError, messageOf } from "../../shared/errors.js";
import { LEADER_METADATA, peerCertificatePem } from "../../shared/grpc-tls.js";
import type { Logger } from "../../shared/logging.js";
import type { ClusterStore } from "../store/store.js";
import { newObjectId } from "../store/store.js";
import { checkReportedAddress } from "../dispatcher/node-address.js";
import type { ClusterObject, NodeObject } from "../store/types.js";
import { authorizeCaller } from "../auth/caller.js";
import { OncePer, sourceOf, TokenBuckets } from "../auth/rate-limit.js";
import { roleForToken, signNodeCsr } from "./ca.js";

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

/** Failed joins a source may make in a burst, and how fast it earns another try. */
const FAILED_JOIN_BURST = 5;
const FAILED_JOIN_REFILL_MS = 12_000;

export class CAServer {
  /** Failed joins per source address: a guesser gets a few tries, then one per refill period. */
  private readonly failedJoins = new TokenBuckets({
    burst: FAILED_JOIN_BURST,
    refillMs: FAILED_JOIN_REFILL_MS,
  });
  private readonly joinFailureLogged = new OncePer(60_000);

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
        this.issue(call).then(
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
    call: grpc.ServerUnaryCall<pb.IssueNodeCertificateRequest, pb.IssueNodeCertificateResponse>,
  ): Promise<pb.IssueNodeCertificateResponse> {
    const req = call.request;
    const peer = sourceOf(call.getPeer());
    if (!this.o.isLeader()) throw notLeaderError(this.o.leaderAddr());
    const cluster = this.cluster();
    const ca = { certPem: cluster.RootCA?.CACert ?? "", keyPem: cluster.RootCA?.CAKey ?? "" };
    // A node renews (the store decides its role); joining again under a new identity with its
    // certificate in hand is how a worker would mint itself a manager.
    if (peerCertificatePem(call))
      throw {
        code: grpc.status.PERMISSION_DENIED,
        details:
          "this caller already holds a node certificate of this cluster: renew it (RenewNodeCertificate), or leave the cluster before joining again",
      };
    if (!this.failedJoins.has(peer))
      throw {
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: `too many failed joins from ${peer}: wait ${Math.ceil(this.failedJoins.waitMs(peer) / 1000)} s and check the join token`,
      };
    let role: "manager" | "worker";
    try {
      role = roleForToken(req.token, ca.certPem, cluster.JoinTokens ?? { Worker: "", Manager: "" });
    } catch (e) {
      this.failedJoins.take(peer);
      // Logged so an operator sees who tried (once per source per interval); nothing is written.
      const { due, suppressed } = this.joinFailureLogged.due(peer);
      if (due) this.o.log.warn({ peer, err: messageOf(e), suppressed }, "refused a node: bad join token");
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
    // A removed node is refused; the store decides the role: a promoted or demoted node gets
    // its new role here, whatever its current certificate or the CSR says.
    const who = authorizeCaller(call, { caPem: ca.certPem, store: this.o.store }, "node");
    const role = this.o.store.view((tx) => tx.get("nodes", who.nodeId))?.Spec.Role ?? "worker";
    const identity = { nodeId: who.nodeId, role, clusterId: cluster.ID };
    const cert = await signNodeCsr(ca, call.request.csr, identity);
    return { nodeId: who.nodeId, clusterId: cluster.ID, role, cert, caCert: ca.certPem };
  }
}
