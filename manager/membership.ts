// The Raft group's membership as the Node service offers it: JoinRaft (a promoted node asks the
// leader to add it as a learner; it becomes a voter once caught up) and LeaveRaft (a demoted or
// leaving manager asks to be removed). Only a manager (certificate and store role) may join or
// remove others; a demoted node may still remove itself. A node that does not manage, or a
// follower, sends the caller to the leader.
import * as grpc from "@grpc/grpc-js";
import type * as pb from "../proto/gen/cluster.js";
import type { NodeIdentity } from "./ca/ca.js";
import { grpcError, notLeaderError } from "./ca/server.js";
import type { Manager } from "./manager.js";
import { NotLeaderError } from "./raft/index.js";

export interface RaftMembershipHost {
  /** This node's manager, while it manages. */
  manager(): Manager | undefined;
  /** The caller, from its certificate; throws (with a gRPC code) when it is none of this cluster. */
  identify(call: grpc.ServerUnaryCall<unknown, unknown>): NodeIdentity;
}

/** A failure of a Node service call as the gRPC status to answer with. */
export function nodeCallStatus(e: unknown, leaderAddr: string | undefined): Partial<grpc.StatusObject> {
  return e instanceof NotLeaderError
    ? notLeaderError(leaderAddr)
    : e instanceof Error && "code" in e && typeof e.code === "number"
      ? { code: e.code, details: e.message }
      : e && typeof e === "object" && "code" in e && "details" in e
        ? (e as Partial<grpc.StatusObject>)
        : grpcError(e);
}

export function raftMembershipService(
  host: RaftMembershipHost,
): Pick<pb.NodeServer, "joinRaft" | "leaveRaft"> {
  const answer = <T>(work: () => Promise<T>, cb: grpc.sendUnaryData<T>): void => {
    void work().then(
      (r) => cb(null, r),
      (e: unknown) => cb(nodeCallStatus(e, host.manager()?.leaderAddr())),
    );
  };
  /** The caller, if it holds a manager's certificate, and this node's manager (the leader's, or a redirect). */
  const managerCall = (call: grpc.ServerUnaryCall<unknown, unknown>, refusal: string) => {
    const who = host.identify(call);
    if (who.role !== "manager")
      throw Object.assign(new Error(refusal), { code: grpc.status.PERMISSION_DENIED });
    const m = host.manager();
    if (!m) throw notLeaderError(undefined);
    return { who, m };
  };
  return {
    joinRaft: (call, cb) =>
      answer(async () => {
        const { who, m } = managerCall(call, "only a manager's certificate can join the raft group");
        const members = await m.addMember(call.request.raftId, call.request.addr, who.nodeId);
        return {
          members: members.map((x) => ({ raftId: x.raftId, addr: x.addr, nodeId: x.nodeId })),
        };
      }, cb),
    leaveRaft: (call, cb) =>
      answer(async () => {
        // A demoted node leaves with its old certificate: it may remove itself, nothing else.
        const who = host.identify(call);
        const m = host.manager();
        if (!m) throw notLeaderError(undefined);
        const member = m.memberList().find((x) => x.raftId === call.request.raftId);
        if (who.role !== "manager" && member && member.nodeId !== who.nodeId)
          throw Object.assign(
            new Error(`node ${who.nodeId} is not a manager: it may take only itself out of the raft group`),
            { code: grpc.status.PERMISSION_DENIED },
          );
        if (who.role !== "manager" && !member) return {};
        await m.removeMember(call.request.raftId);
        return {};
      }, cb),
  };
}
