// Who calls a gRPC method on the cluster port, and whether the cluster still lets it. The
// certificate says who the caller is (node id, the role it was issued for); the manager's store
// says what that node may do now. The store is the allow list: a node whose object is gone
// (`node rm`) is refused everywhere, and a node's role is the lesser of its certificate's and
// its store role, so an old manager certificate of a demoted node opens only what a worker's
// does, from the moment the demotion commits. (swarmkit keeps a RemovedNodes list because its
// certificates outlive node objects in some paths; here no method accepts a node the store does
// not hold, and node ids are never reused, so the store's node table is that list.)
import * as grpc from "@grpc/grpc-js";
import { forbidden, messageOf, unauthorized } from "../../shared/errors.js";
import { peerCertificatePem } from "../../shared/grpc-tls.js";
import { verifyNodeCertificate, type NodeIdentity, type NodeRole } from "../ca/ca.js";
import type { ClusterStore } from "../store/store.js";

export type PeerCall = Parameters<typeof peerCertificatePem>[0];

export interface Caller extends NodeIdentity {
  /** The role the certificate was issued for. `role` is what the node may do now. */
  certRole: NodeRole;
}

/** Everything a node of this cluster may call ("node") or only a manager ("manager"). */
export type CallerNeed = "node" | "manager";

/**
 * The caller's identity from its client certificate alone; throws 401 (UNAUTHENTICATED) without
 * one of this cluster's CA, expired, or one that names no node.
 */
export function certifiedCaller(call: PeerCall, caPem: string): NodeIdentity {
  let pem: string | undefined;
  try {
    pem = peerCertificatePem(call);
  } catch (e) {
    throw unauthorized(`unreadable client certificate: ${messageOf(e)}`);
  }
  // grpc-js hands over only certificates that passed the TLS check against our CA.
  if (!pem)
    throw unauthorized(
      "no client certificate from this cluster's CA: only nodes of this cluster may call this (join it first)",
    );
  try {
    const { nodeId, role, clusterId } = verifyNodeCertificate(pem, caPem);
    return { nodeId, role, clusterId };
  } catch (e) {
    throw unauthorized(`client certificate refused: ${messageOf(e)}`);
  }
}

/**
 * The caller as this manager's store sees it: its node must exist, and for "manager" both its
 * certificate and its store role must say manager. Throws 403 naming what the node lacks.
 */
export function storeCaller(store: ClusterStore, who: NodeIdentity, need: CallerNeed): Caller {
  const node = store.view((tx) => tx.get("nodes", who.nodeId));
  if (!node)
    throw forbidden(`node ${who.nodeId} was removed from the cluster: its certificate is no longer valid`);
  const role: NodeRole = who.role === "manager" && node.Spec.Role === "manager" ? "manager" : "worker";
  if (need === "manager" && role !== "manager")
    throw forbidden(
      who.role === "manager"
        ? `node ${who.nodeId} was demoted to worker: its manager certificate no longer opens manager calls`
        : `node ${who.nodeId} is a worker: only managers may make this call`,
    );
  return { ...who, role, certRole: who.role };
}

/** certifiedCaller, then storeCaller: what every manager service checks at the start of a call. */
export function authorizeCaller(
  call: PeerCall,
  o: { caPem: string; store: ClusterStore },
  need: CallerNeed,
): Caller {
  return storeCaller(o.store, certifiedCaller(call, o.caPem), need);
}

const CODES: Record<number, grpc.status> = {
  401: grpc.status.UNAUTHENTICATED,
  403: grpc.status.PERMISSION_DENIED,
  503: grpc.status.UNAVAILABLE,
};

/** A refusal from the checks above as the gRPC status to answer with. */
export function refusalStatus(e: unknown): { code: grpc.status; details: string } {
  const status = (e as { status?: unknown }).status;
  const code = typeof status === "number" ? CODES[status] : undefined;
  return { code: code ?? grpc.status.INTERNAL, details: messageOf(e) };
}
