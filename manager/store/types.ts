// The cluster's objects, in the Docker swarm API's shapes (what `docker service inspect` and
// friends show), kept by the store and changed only through Raft. Only what shoal fills is
// typed; specs are kept as given so the API can serve them back unchanged.
import type { TaskState } from "../../shared/cluster.js";

export interface Version {
  Index: number;
}

export interface ObjectMeta {
  Version: Version;
  CreatedAt: string;
  UpdatedAt: string;
}

/** What every stored object has. */
export interface StoredObject {
  ID: string;
  Meta: ObjectMeta;
}

export interface Annotated {
  Name: string;
  Labels?: Record<string, string>;
}

export interface ClusterObject extends StoredObject {
  Spec: Annotated & Record<string, unknown>;
  JoinTokens?: { Worker: string; Manager: string };
  RootCA?: { CACert: string; CAKey?: string };
}

export type NodeRole = "manager" | "worker";
export type NodeAvailability = "active" | "pause" | "drain";
export type NodeState = "unknown" | "down" | "ready" | "disconnected";

export interface NodeObject extends StoredObject {
  Spec: { Name?: string; Labels?: Record<string, string>; Role: NodeRole; Availability: NodeAvailability };
  Description: {
    Hostname: string;
    Platform: { Architecture: string; OS: string };
    Resources: { NanoCPUs: number; MemoryBytes: number };
  };
  Status: { State: NodeState; Message?: string; Addr: string };
  ManagerStatus?: { Leader?: boolean; Reachability: "reachable" | "unreachable" | "unknown"; Addr: string };
  /** host:port of the node's gRPC server (shoal's own field: where managers reach the node). */
  ListenAddr?: string;
  /**
   * The node's own endpoint on each overlay network it takes part in (swarmkit's node load
   * balancer attachments): every ready node on ingress, and a node on another network while it
   * holds a task attached to it. Written by the allocator.
   */
  Attachments?: NetworkAttachment[];
}

export interface ServiceObject extends StoredObject {
  Spec: Annotated & {
    TaskTemplate: Record<string, unknown>;
    Mode: { Replicated?: { Replicas: number }; Global?: Record<string, never> };
    [key: string]: unknown;
  };
  PreviousSpec?: ServiceObject["Spec"];
  /** What the allocator gave the service: published ports (mesh ports filled in) and VIPs. */
  Endpoint?: ServiceEndpoint;
}

/** A published port as the swarm API shows it. */
export interface PortConfig {
  Name?: string;
  Protocol: "tcp" | "udp" | "sctp";
  TargetPort: number;
  /** The routing mesh's port (given, or picked from 30000-32767), or the host port for mode host. */
  PublishedPort: number;
  PublishMode: "ingress" | "host";
}

export interface EndpointSpec {
  /** vip (default) or dnsrr. */
  Mode?: "vip" | "dnsrr";
  Ports?: Array<Partial<PortConfig>>;
}

export interface ServiceEndpoint {
  Spec: EndpointSpec;
  Ports?: PortConfig[];
  /** One per network the service is on (Addr with its prefix, "10.0.1.2/24"); none with dnsrr. */
  VirtualIPs?: Array<{ NetworkID: string; Addr: string }>;
}

/** A task's or a node's endpoint on a network: the network as it was then, and the address(es). */
export interface NetworkAttachment {
  Network: NetworkAttachmentView;
  /** With their prefix: "10.0.1.5/24". */
  Addresses: string[];
  Aliases?: string[];
}

/** The network as an attachment carries it (swarmkit copies the Network object). */
export interface NetworkAttachmentView {
  ID: string;
  Spec?: NetworkSpec;
  DriverState?: NetworkObject["DriverState"];
  IPAMOptions?: NetworkObject["IPAMOptions"];
}

/** TaskTemplate.Networks entries: Target is the network's id once the control API resolved it. */
export interface NetworkAttachmentConfig {
  Target: string;
  Aliases?: string[];
  DriverOpts?: Record<string, string>;
}

export interface TaskObject extends StoredObject {
  ServiceID: string;
  /** The service's name when the task was made (for container names and `service ps`). */
  ServiceName?: string;
  /** Replicated services: the slot (1..replicas); global services: 0 and NodeID names the place. */
  Slot: number;
  NodeID: string;
  Spec: Record<string, unknown>;
  Status: {
    Timestamp: string;
    State: TaskState;
    Message: string;
    Err?: string;
    ContainerStatus?: Record<string, unknown>;
  };
  DesiredState: TaskState;
  /** The task's address on each of its overlay networks (allocator); the scheduler waits for them. */
  NetworksAttachments?: NetworkAttachment[];
}

/**
 * A plain container's place on an attachable overlay network (`docker run --network app` on any
 * node): swarmkit keeps these as tasks with an attachment runtime; here they have their own
 * table, since every task is a service's (orchestrator, scheduler, dispatcher and worker would
 * each have to skip them). Made by the leader's ResourceAllocator with its address, deleted when
 * the container stops (its node asks), with its node (`node rm`), or by the node when it finds
 * one it no longer uses.
 */
export interface AttachmentObject extends StoredObject {
  /** The node the container runs on (from the caller's certificate). */
  NodeID: string;
  ContainerID: string;
  /** What DNS answers for the container on the network, everywhere: its name and aliases. */
  ContainerName: string;
  Aliases?: string[];
  /** The network and the container's address on it ("10.0.1.5/24"). */
  Attachment: NetworkAttachment;
}

export interface NetworkSpec extends Annotated {
  DriverConfiguration?: { Name: string; Options?: Record<string, string> };
  IPAMOptions?: { Driver?: { Name: string }; Configs?: Array<{ Subnet?: string; Gateway?: string }> };
  Attachable?: boolean;
  /** The routing mesh's network. */
  Ingress?: boolean;
  Internal?: boolean;
  [key: string]: unknown;
}

/** The option under which an overlay network's VXLAN id is shown (Docker's name for it). */
export const VXLAN_ID_OPTION = "com.docker.network.driver.overlay.vxlanid_list";

export interface NetworkObject extends StoredObject {
  Spec: NetworkSpec;
  /** What the allocator chose: the driver and its VXLAN id (VXLAN_ID_OPTION). */
  DriverState?: { Name: string; Options?: Record<string, string> };
  /** The subnet the network got (the user's or one from 10.0.0.0/8) and its gateway. */
  IPAMOptions?: { Driver: { Name: string }; Configs: Array<{ Subnet: string; Gateway: string }> };
}

export interface SecretObject extends StoredObject {
  Spec: Annotated & { Data?: string };
}

export interface ConfigObject extends StoredObject {
  Spec: Annotated & { Data?: string };
}

export interface TableTypes {
  clusters: ClusterObject;
  nodes: NodeObject;
  services: ServiceObject;
  tasks: TaskObject;
  networks: NetworkObject;
  secrets: SecretObject;
  configs: ConfigObject;
  attachments: AttachmentObject;
}

export type TableName = keyof TableTypes;

export const TABLES: readonly TableName[] = [
  "clusters",
  "nodes",
  "services",
  "tasks",
  "networks",
  "secrets",
  "configs",
  "attachments",
];

/** Tables whose Spec.Name is unique. */
export const NAMED_TABLES: ReadonlySet<TableName> = new Set([
  "clusters",
  "services",
  "networks",
  "secrets",
  "configs",
]);

/** One change in a committed batch. `expect` is the version the writer read (optimistic concurrency). */
export type StoreAction =
  | { op: "create"; table: TableName; object: StoredObject }
  | { op: "update"; table: TableName; object: StoredObject; expect: number }
  | { op: "delete"; table: TableName; id: string; expect?: number };

export interface StoreEvent {
  op: "create" | "update" | "delete";
  table: TableName;
  /** The object after the change (before it, for a delete). */
  object: StoredObject;
  old?: StoredObject;
  /** The Raft index of the batch. */
  index: number;
}
