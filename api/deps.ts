// What the HTTP tree consumes, as typed interfaces: the engine's parts (agent/engine/), the
// cluster's (manager/controlapi/, through the daemon's Swarm), and facts about this daemon. The
// daemon passes them to buildApi (api/server.ts); each route plugin takes the part it uses. The
// shapes are plain data and types: neither agent/ nor manager/ imports anything of api/, and the
// manager matches ClusterNetworks without importing it.
import type * as pb from "../proto/gen/cluster.js";
import type { Logger } from "../shared/logging.js";
import type { ContainerEngineApi } from "../agent/engine/container/api.js";
import type { ImageStoreApi } from "../agent/engine/image/api.js";
import type { VolumeStoreApi } from "../agent/engine/volume/types.js";
import type { CreateNetworkRequest } from "../agent/engine/network/types.js";
import type { HostNetworks } from "../agent/engine/network/host-networks.js";
import type { Builder } from "../agent/engine/builder/builder.js";
import type { RegistryService } from "../agent/engine/registry/service.js";
import type { ControlApi } from "../manager/controlapi/control.js";
import type { ReadBarrierHost } from "./linearizable-read.js";
import type { EventLog } from "../agent/engine/events.js";

/** Facts about this daemon and host, gathered once at start-up. */
export interface DaemonInfo {
  version: string;
  gitCommit: string;
  id: string;
  name: string;
  dataRoot: string;
  execRoot: string;
  runtimePath: string;
  cgroupVersion: "1" | "2";
  kernelVersion: string;
  operatingSystem: string;
  ncpu: number;
  memTotal: number;
  startedAt: string;
  /** --insecure-registry entries (names or CIDRs); loopback is always allowed over HTTP. */
  insecureRegistries: string[];
}

/** A cluster network in Docker's shape (Scope "swarm", Driver "overlay"). */
export interface ClusterNetworkView {
  Name: string;
  Id: string;
  Scope: string;
  Driver: string;
  Labels: Record<string, string>;
  [key: string]: unknown;
}

/**
 * The cluster's overlay networks as the /networks routes see them: on a manager the daemon
 * passes a delegate (manager/controlapi/networks.ts implements it over the cluster store), so
 * `docker network create -d overlay`, ls, inspect and rm reach the cluster while bridge networks
 * stay the local engine's.
 */
export interface ClusterNetworks {
  /** undefined: not the cluster's to make (the driver is not overlay). */
  create(body: CreateNetworkRequest): Promise<{ Id: string; Warning?: string }> | undefined;
  list(): ClusterNetworkView[];
  /** By id, name or unique id prefix; undefined when the cluster has no such network. */
  inspect(ref: string): ClusterNetworkView | undefined;
  /** false: the cluster has no such network (it may be a local one). */
  remove(ref: string): Promise<boolean>;
}

/** The engine's side of the API: what the container, image, volume, network and system routes use. */
export interface EngineApiDeps {
  containers: ContainerEngineApi;
  images: ImageStoreApi;
  volumes: VolumeStoreApi;
  networks: HostNetworks;
  log: Logger;
  info: DaemonInfo;
  /** The Dockerfile builder (agent/engine/builder/), for POST /build. */
  builder?: Builder;
  /** Pull, push and login (agent/engine/registry/). */
  registry?: RegistryService;
  /** /info's Swarm section while this node is in a cluster (the daemon wires it). */
  swarmInfo?: () => Record<string, unknown> | undefined;
  /**
   * The cluster's overlay networks while this node is a manager (undefined otherwise): the
   * /networks routes show them beside the local ones and send overlay creates and their
   * removals there (the daemon wires it; roles change at run time, hence a function).
   */
  clusterNetworks?: () => ClusterNetworks | undefined;
  /** The daemon's one event log (GET /events); the engine's parts emit into it. */
  events?: EventLog;
}

/** What the daemon offers the swarm routes: the control API while this node manages, and membership. */
export interface SwarmHost {
  control(): ControlApi | undefined;
  /** A request checked by daemon/cluster/requests.ts (checkInitRequest): only what shoal acts on. */
  init(request: { ListenAddr?: string; AdvertiseAddr?: string; Spec?: unknown }): Promise<string>;
  /** POST /swarm/join: become a worker or manager of the cluster behind RemoteAddrs. */
  join(request: {
    ListenAddr?: string;
    AdvertiseAddr?: string;
    RemoteAddrs?: string[];
    JoinToken?: string;
  }): Promise<void>;
  leave(force: boolean): Promise<void>;
  /** GET /swarm's body. */
  inspect(): Record<string, unknown> | undefined;
}

/** What GET /services/{id}/logs needs besides the control API: where each task's node is. */
export interface ServiceLogHost extends SwarmHost {
  /** This node's id (tasks with it are read from the local engine). */
  readonly nodeId: string | undefined;
  /** A client of another node's Node service; undefined when its address is not known. */
  nodeForwardClient(nodeId: string): pb.NodeClient | undefined;
}

/**
 * Where one cluster request is answered: here; at the leader (a follower manager's write); or
 * nowhere (503 with `message`): a worker has no control API, as in swarmkit.
 */
export type ClusterRoute =
  | { readonly serve: "here" }
  | { readonly serve: "leader"; readonly addr: string }
  | { readonly serve: "refused"; readonly message: string };

/** Where the cluster routes are answered: here, or at the leader through its Node service. */
export interface ForwardRouter {
  route(method: string, path: string): ClusterRoute;
  client(addr: string): pb.NodeClient;
  /** After a forwarded write: wait until this node's store has it (read-your-writes). */
  afterWrite(): Promise<void>;
}

/** The daemon's Swarm as the cluster routes see it. */
export type ClusterHost = ServiceLogHost & ForwardRouter & ReadBarrierHost;
