// The one guard in front of every method on the cluster port (a grpc-js server interceptor):
// it runs when a call's headers arrive, before any of its message is read, so a caller without a
// certificate of this cluster is refused (UNAUTHENTICATED) having sent nothing the server kept.
// Only the CA's join calls are open to anyone, and at most a few of those run at once. Each
// method's rule is in ACCESS; unknown methods need a node's certificate. On a manager the
// store decides too (caller.ts): removed nodes are refused, demoted ones lose manager calls.
// The services check again at their entry for what only they know (the dispatcher's session,
// Raft's per-message sender, Forward's paths).
import * as grpc from "@grpc/grpc-js";
import { LEADER_METADATA } from "../../shared/grpc-tls.js";
import type { Logger } from "../../shared/logging.js";
import type { ClusterStore } from "../store/store.js";
import { certifiedCaller, refusalStatus, storeCaller, type CallerNeed } from "./caller.js";
import { OncePer, sourceOf } from "./rate-limit.js";

/**
 * "anyone": no certificate needed (joining nodes have none). "raft": a manager's certificate;
 * Raft itself then accepts a message only from the member whose certificate sent it (a
 * joining member's store is still empty, so the store cannot decide here).
 */
export type Access = "anyone" | "raft" | CallerNeed;

export const ACCESS: Readonly<Record<string, Access>> = {
  "/shoal.cluster.v1.CA/GetRootCACertificate": "anyone",
  "/shoal.cluster.v1.CA/IssueNodeCertificate": "anyone",
  "/shoal.cluster.v1.CA/RenewNodeCertificate": "node",
  "/shoal.cluster.v1.Dispatcher/Session": "node",
  "/shoal.cluster.v1.Dispatcher/Heartbeat": "node",
  "/shoal.cluster.v1.Dispatcher/Assignments": "node",
  "/shoal.cluster.v1.Dispatcher/UpdateTaskStatus": "node",
  "/shoal.cluster.v1.ResourceAllocator/AttachNetwork": "node",
  "/shoal.cluster.v1.ResourceAllocator/DetachNetwork": "node",
  // Which paths a worker may forward is the Node service's rule; a removed node forwards nothing.
  "/shoal.cluster.v1.Node/Forward": "node",
  "/shoal.cluster.v1.Node/JoinRaft": "manager",
  // A demoted node leaves the Raft group with its old certificate (the service checks it
  // removes only itself).
  "/shoal.cluster.v1.Node/LeaveRaft": "node",
  "/shoal.raft.v1.Raft/Send": "raft",
  "/shoal.raft.v1.Raft/SendSnapshot": "raft",
};

/** Join calls served at once; more wait their turn (RESOURCE_EXHAUSTED, retried by the joiner). */
export const MAX_ANONYMOUS_CALLS = 16;

/** What the guard needs of the manager (manager.ts's Manager). */
export interface GuardedManager {
  readonly store: ClusterStore;
  isLeader(): boolean;
  leaderAddr(): string | undefined;
}

export interface GuardOptions {
  /** The cluster's CA; undefined while this node is in no cluster. */
  caPem(): string | undefined;
  /** This node's manager, while it manages; a worker checks certificates only. */
  manager(): GuardedManager | undefined;
  log: Logger;
}

type Status = { code: grpc.status; details: string; metadata?: grpc.Metadata };

/** UNAVAILABLE with the leader's address, which nodes' clients follow (shared/leader-call.ts). */
function notLeader(leaderAddr: string | undefined, why: string): Status {
  const metadata = new grpc.Metadata();
  if (leaderAddr) metadata.set(LEADER_METADATA, leaderAddr);
  return { code: grpc.status.UNAVAILABLE, details: `${why}: ask the leader`, metadata };
}

export function callGuard(o: GuardOptions): grpc.ServerInterceptor {
  let anonymous = 0;
  const logged = new OncePer(60_000);

  const refusal = (path: string, call: grpc.ServerInterceptingCallInterface): Status | undefined => {
    const access = ACCESS[path] ?? "node";
    if (access === "anyone") {
      if (anonymous >= MAX_ANONYMOUS_CALLS)
        return {
          code: grpc.status.RESOURCE_EXHAUSTED,
          details: `this manager is serving ${MAX_ANONYMOUS_CALLS} join calls already: try again shortly`,
        };
      return undefined;
    }
    const caPem = o.caPem();
    if (!caPem) return { code: grpc.status.UNAVAILABLE, details: "this node is not part of a cluster" };
    try {
      const who = certifiedCaller(call, caPem);
      const m = o.manager();
      if (m && access !== "raft") {
        // A follower may not have applied a node's admission yet: the leader decides then.
        if (!m.isLeader() && !m.store.view((tx) => tx.get("nodes", who.nodeId)))
          return notLeader(m.leaderAddr(), `node ${who.nodeId} is not known to this manager yet`);
        storeCaller(m.store, who, access);
      }
      if ((access === "raft" || access === "manager") && who.role !== "manager")
        return {
          code: grpc.status.PERMISSION_DENIED,
          details: `node ${who.nodeId} is a worker: only managers may call ${path}`,
        };
      return undefined;
    } catch (e) {
      return refusalStatus(e);
    }
  };

  return (method, call) => {
    let counted = false;
    const release = (): void => {
      if (counted) anonymous--;
      counted = false;
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            const refused = refusal(method.path, call);
            if (refused) {
              const source = sourceOf(call.getPeer());
              const { due, suppressed } = logged.due(`${source} ${refused.code}`);
              if (due)
                o.log.warn(
                  { peer: source, method: method.path, err: refused.details, suppressed },
                  "refused a call on the cluster port",
                );
              call.sendStatus(refused);
              return;
            }
            if (ACCESS[method.path] === "anyone") {
              anonymous++;
              counted = true;
            }
            pass(metadata);
          },
          onCancel: release,
        }),
      sendStatus: (status, next) => {
        release();
        next(status);
      },
    });
  };
}
