// The ResourceAllocator service on the cluster port (swarmkit's name): nodes ask the leader to
// attach a plain container to an attachable overlay network and to detach it again
// (attachments.ts). The calling node is the one its certificate names; a follower answers
// UNAVAILABLE with the leader's address, which callers follow, as for the CA and dispatcher.
import * as grpc from "@grpc/grpc-js";
import type * as pb from "../../proto/gen/cluster.js";
import type { Logger } from "../../shared/logging.js";
import { certifiedCaller, storeCaller, type PeerCall } from "../auth/caller.js";
import { grpcError, notLeaderError } from "../ca/server.js";
import { NotLeaderError } from "../raft/index.js";
import type { ClusterStore } from "../store/store.js";
import { attachNetwork, detachNetwork } from "./attachments.js";

export interface ResourceAllocatorOptions {
  store: ClusterStore;
  isLeader(): boolean;
  leaderAddr(): string | undefined;
  caPem(): string;
  log: Logger;
}

/** A gRPC status to answer with (thrown by the checks below). */
class Refusal extends Error {
  constructor(
    readonly status: Partial<grpc.StatusObject>,
    message = status.details ?? "",
  ) {
    super(message);
  }
}

export class ResourceAllocatorServer {
  constructor(private readonly o: ResourceAllocatorOptions) {}

  /** The calling node's id, from its certificate, if the store still holds it; only the leader answers. */
  private caller(call: PeerCall): string {
    const who = certifiedCaller(call, this.o.caPem());
    if (!this.o.isLeader()) throw new Refusal(notLeaderError(this.o.leaderAddr()));
    return storeCaller(this.o.store, who, "node").nodeId;
  }

  private answer<T>(work: () => Promise<T>, cb: grpc.sendUnaryData<T>): void {
    work().then(
      (r) => cb(null, r),
      (e: unknown) =>
        cb(
          e instanceof Refusal
            ? e.status
            : e instanceof NotLeaderError
              ? notLeaderError(this.o.leaderAddr())
              : grpcError(e),
        ),
    );
  }

  implementation(): pb.ResourceAllocatorServer {
    return {
      attachNetwork: (call, cb) =>
        this.answer(async () => {
          const nodeId = this.caller(call);
          const r = call.request;
          const { attachment, network } = await attachNetwork(this.o.store, nodeId, {
            network: r.network,
            containerId: r.containerId,
            containerName: r.containerName,
            aliases: r.aliases,
            address: r.address,
          });
          const address = attachment.Attachment.Addresses[0];
          this.o.log.info(
            { node: nodeId, container: r.containerId.slice(0, 12), network: network.Spec.Name, address },
            "attached a container to an overlay network",
          );
          return {
            attachmentId: attachment.ID,
            networkId: network.ID,
            networkName: network.Spec.Name,
            address,
          };
        }, cb),
      detachNetwork: (call, cb) =>
        this.answer(async () => {
          const nodeId = this.caller(call);
          await detachNetwork(this.o.store, nodeId, call.request.attachmentId);
          this.o.log.info(
            { node: nodeId, attachment: call.request.attachmentId },
            "detached a container from an overlay network",
          );
          return {};
        }, cb),
    };
  }
}
