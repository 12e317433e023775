// The cluster's objects, in the Docker swarm API's shapes (what `docker service inspect` and
// friends show), kept by the store and changed only through Raft. Only what shoal fills is
// typed; specs are kept as given so the API can serve them back unchanged.

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
}

export interface ServiceObject extends StoredObject {
  Spec: Annotated & {
    TaskTemplate: Record<string, unknown>;
    Mode: { Replicated?: { Replicas: number }; Global?: Record<string, never> };
    [key: string]: unknown;
  };
  PreviousSpec?: ServiceObject["Spec"];
}

export type { TaskState } from "../../shared/cluster.js";
import type { TaskState } from "../../shared/cluster.js";

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
}

export interface NetworkObject extends StoredObject {
  Spec: Annotated & Record<string, unknown>;
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
