// What a manager serves besides Raft, built from its store and Raft member (swarmkit's
// manager.New and becomeLeader): on the node's gRPC server the dispatcher (agents' sessions), the
// CA (joins and renewals) and the ResourceAllocator (plain containers on attachable overlays);
// for the HTTP routes the control API objects. The node hands over its gRPC server and identity;
// what answers there is the manager's to build and to take away again.
import type * as grpc from "@grpc/grpc-js";
import type * as pb from "../proto/gen/cluster.js";
import { messageOf } from "../shared/errors.js";
import { channelOptions, clientCredentials, MANAGER_TLS_NAME } from "../shared/grpc-tls.js";
import type { TlsIdentity } from "../shared/grpc-tls.js";
import type { Logger } from "../shared/logging.js";
import { certifiedCaller } from "./auth/caller.js";
import { CAServer } from "./ca/server.js";
import { ControlApi } from "./controlapi/control.js";
import { ClusterNetworksApi } from "./controlapi/networks.js";
import { DispatcherServer } from "./dispatcher/server.js";
import { ResourceAllocatorServer } from "./allocator/server.js";
import type { Manager, ManagerNetwork } from "./manager.js";

/** The manager-only services of the node's gRPC server. */
export interface ManagerGrpcServices {
  ca: pb.CAServer;
  dispatcher: pb.DispatcherServer;
  resourceAllocator: pb.ResourceAllocatorServer;
}

/** The node's one gRPC server (the cluster port), as a manager registers on it. */
export interface NodeGrpcServer {
  readonly server: grpc.Server;
  readonly credentials: grpc.ServerCredentials;
  /** What answers the manager-only services; undefined while this node does not manage. */
  setManagerServices(services: ManagerGrpcServices | undefined): void;
}

/** The node a manager runs on: its gRPC server and its cluster identity (renewed over time). */
export interface ManagerNode {
  server: NodeGrpcServer;
  identity(): TlsIdentity;
}

/**
 * Raft over the node's server with mutual TLS: the client side with the node's certificate of
 * now; a stream is taken only from a manager's certificate, whose node id the member then
 * holds each message's sender to (Manager).
 */
export function raftNetwork(node: ManagerNode): ManagerNetwork {
  const identity = node.identity();
  return {
    server: node.server.server,
    credentials: { server: node.server.credentials, client: clientCredentials(identity) },
    channelOptions: channelOptions(MANAGER_TLS_NAME),
    sender: (call) => {
      try {
        const who = certifiedCaller(call, identity.caPem);
        return who.role === "manager"
          ? { nodeId: who.nodeId }
          : { refuse: `node ${who.nodeId} is not a manager` };
      } catch (e) {
        return { refuse: messageOf(e) };
      }
    },
  };
}

export class ManagerServices {
  readonly dispatcher: DispatcherServer;
  readonly control: ControlApi;
  readonly clusterNetworks: ClusterNetworksApi;
  private readonly ca: CAServer;
  private readonly resourceAllocator: ResourceAllocatorServer;

  constructor(
    manager: Manager,
    private readonly node: ManagerNode,
    log: Logger,
  ) {
    const caPem = () => node.identity().caPem;
    const convergence = () => {
      const d = this.dispatcher;
      return d && manager.isLeader()
        ? { version: manager.networkState().version, applied: d.networkConvergence() }
        : undefined;
    };
    this.control = new ControlApi(manager.store, manager.nodeId, () => manager.leaderNodeId(), convergence);
    this.clusterNetworks = new ClusterNetworksApi(manager.store, convergence);
    this.dispatcher = new DispatcherServer({
      store: manager.store,
      core: manager.dispatcher,
      isLeader: () => manager.isLeader(),
      leaderAddr: () => manager.leaderAddr(),
      managers: () => manager.memberList().map((m) => ({ nodeId: m.nodeId, addr: m.addr })),
      caPem,
      networkState: () => manager.networkState(),
      log: log.child({ module: "dispatcher" }),
    });
    if (manager.isLeader()) this.dispatcher.leadershipChanged(true);
    this.ca = new CAServer({
      store: manager.store,
      isLeader: () => manager.isLeader(),
      leaderAddr: () => manager.leaderAddr(),
      log: log.child({ module: "ca" }),
    });
    this.resourceAllocator = new ResourceAllocatorServer({
      store: manager.store,
      isLeader: () => manager.isLeader(),
      leaderAddr: () => manager.leaderAddr(),
      caPem,
      log: log.child({ module: "resource-allocator" }),
    });
  }

  /** Start answering the manager-only services on the node's server. */
  register(): void {
    this.node.server.setManagerServices({
      ca: this.ca.implementation(),
      dispatcher: this.dispatcher.implementation(),
      resourceAllocator: this.resourceAllocator.implementation(),
    });
  }

  /** Stop answering them; agents' sessions with this manager end. */
  close(): void {
    this.node.server.setManagerServices(undefined);
    this.dispatcher.close();
  }
}
