// The Node service every daemon serves on its cluster port: Forward runs an Engine API request on
// this node's own socket for another manager (a follower's write going to the leader, a manager
// reading a task's logs; forwardable.ts says which paths), streaming the answer back as it comes;
// JoinRaft and LeaveRaft change the managers' Raft group on the leader (manager/membership.ts).
// Callers must hold a certificate from this cluster's CA; Forward and Raft changes need a manager's.
import * as grpc from "@grpc/grpc-js";
import { request as httpRequest } from "node:http";
import * as pb from "../../proto/gen/cluster.js";
import { messageOf } from "../../shared/errors.js";
import type { peerCertificatePem } from "../../shared/grpc-tls.js";
import type { Logger } from "../../shared/logging.js";
import { certifiedCaller, storeCaller } from "../../manager/auth/caller.js";
import type { NodeIdentity } from "../../manager/ca/ca.js";
import type { Manager } from "../../manager/manager.js";
import { nodeCallStatus, raftMembershipService } from "../../manager/membership.js";
import { forwardablePath, forwardRefusal } from "./forwardable.js";

export interface NodeServiceHost {
  socketPath: string;
  caPem(): string | undefined;
  /** This node's role now. */
  role(): "manager" | "worker" | undefined;
  manager(): Manager | undefined;
  /** The managers' node ids the agent last heard of; undefined before its first session. */
  managerIds(): ReadonlySet<string> | undefined;
  log: Logger;
}

type Call = Parameters<typeof peerCertificatePem>[0] & { getPeer(): string };

export function nodeService(host: NodeServiceHost): pb.NodeServer {
  /**
   * The caller from its certificate; on a manager, as the store sees it now (a removed node is
   * refused, a demoted one's manager certificate counts as a worker's). A worker has no store:
   * a manager's certificate counts there only if its node is among the managers the dispatcher
   * last named (so a demoted manager's old certificate stops opening workers too).
   */
  const identify = (call: Call): NodeIdentity => {
    const ca = host.caPem();
    if (!ca)
      throw Object.assign(new Error("this node is not part of a cluster"), { code: grpc.status.UNAVAILABLE });
    const who = certifiedCaller(call, ca);
    const m = host.manager();
    if (m) return storeCaller(m.store, who, "node");
    const managers = host.managerIds();
    if (who.role === "manager" && managers && !managers.has(who.nodeId)) return { ...who, role: "worker" };
    return who;
  };
  const asStatus = (e: unknown) => nodeCallStatus(e, host.manager()?.leaderAddr());

  return {
    forward: (call) => {
      let who: NodeIdentity;
      try {
        who = identify(call);
        if (who.role !== "manager" || !forwardablePath(call.request.method, call.request.url))
          throw Object.assign(new Error(forwardRefusal(call.request.method, call.request.url)), {
            code: grpc.status.PERMISSION_DENIED,
          });
      } catch (e) {
        call.emit("error", asStatus(e));
        return;
      }
      const r = call.request;
      const headers: Record<string, string> = {};
      for (const h of r.headers) headers[h.name] = h.value;
      headers["content-length"] = String(r.body.length);
      const req = httpRequest(
        { socketPath: host.socketPath, method: r.method, path: r.url, headers },
        (res) => {
          call.write({
            status: res.statusCode ?? 500,
            headers: Object.entries(res.headers).flatMap(([name, v]) =>
              v === undefined ? [] : (Array.isArray(v) ? v : [v]).map((value) => ({ name, value })),
            ),
            body: Buffer.alloc(0),
          });
          res.on("data", (chunk: Buffer) => call.write({ status: 0, headers: [], body: chunk }));
          res.on("end", () => call.end());
          res.on("error", (e) => call.emit("error", { code: grpc.status.INTERNAL, details: messageOf(e) }));
        },
      );
      req.on("error", (e) => call.emit("error", { code: grpc.status.INTERNAL, details: messageOf(e) }));
      // A caller that goes away (logs -f ended) ends the local request too.
      call.on("cancelled", () => req.destroy());
      req.end(r.body);
    },
    ...raftMembershipService({ manager: () => host.manager(), identify }),
  };
}
