// What managers and agents exchange about tasks. Shared because the two sides may not import
// each other: the manager's dispatcher produces assignments, the agent's worker consumes them
// and reports back, and shoald (or, between hosts, gRPC) connects the two.

/**
 * Every task state, in the order a task moves through them: a task's state only moves forward
 * (a report never takes it back). New tasks wait for the allocator, pending ones for the
 * scheduler; from accepted on the agent says; the ended states come last.
 */
export const TASK_STATE_ORDER = [
  "new",
  "pending",
  "assigned",
  "accepted",
  "preparing",
  "starting",
  "running",
  "complete",
  "shutdown",
  "failed",
  "rejected",
  "orphaned",
  "remove",
] as const;

export type TaskState = (typeof TASK_STATE_ORDER)[number];

/** Every task state: what a state read off the wire must be one of. */
export const TASK_STATES: ReadonlySet<string> = new Set<string>(TASK_STATE_ORDER);

/** Where a state stands in TASK_STATE_ORDER. */
export function taskStateRank(state: TaskState): number {
  return TASK_STATE_ORDER.indexOf(state);
}

/** States a task never leaves: complete and everything after it. */
export const TERMINAL_STATES: ReadonlySet<TaskState> = new Set(
  TASK_STATE_ORDER.slice(TASK_STATE_ORDER.indexOf("complete")),
);

/** Live states that hold a node's resources: from assigned up to running. */
export function holdsNode(state: TaskState): boolean {
  return (
    taskStateRank(state) >= taskStateRank("assigned") && taskStateRank(state) <= taskStateRank("running")
  );
}

/** One task as a worker sees it. `spec` is the service's TaskTemplate (swarm API shape). */
export interface TaskAssignment {
  id: string;
  serviceId: string;
  serviceName: string;
  slot: number;
  spec: {
    ContainerSpec?: {
      Image?: string;
      Command?: string[];
      Args?: string[];
      Env?: string[];
      Labels?: Record<string, string>;
      Dir?: string;
      User?: string;
      Hostname?: string;
      /** Nanoseconds between the stop signal and SIGKILL (--stop-grace-period); Docker's default is 10 s. */
      StopGracePeriod?: number;
      StopSignal?: string;
      /** `--with-registry-auth`: the X-Registry-Auth the service was created with, for pulls on any node. */
      PullOptions?: { RegistryAuth?: string };
    };
    Resources?: { Limits?: { NanoCPUs?: number; MemoryBytes?: number } };
    /** The service's published ports; host-mode ones are published on this node. */
    Endpoint?: {
      Ports?: Array<{ Protocol?: string; TargetPort?: number; PublishedPort?: number; PublishMode?: string }>;
    };
  };
  desiredState: TaskState;
  state: TaskState;
  /** Overlay networks the task's container joins, with the address the managers gave it. */
  networks?: Array<{ networkId: string; networkName: string; address: string; aliases: string[] }>;
}

export interface TaskStatusReport {
  taskId: string;
  state: TaskState;
  message: string;
  err?: string;
  containerId?: string;
  exitCode?: number;
}

/** Fetch an image from its registry (the X-Registry-Auth value, when the service has one). */
export type ImagePuller = (reference: string, registryAuth?: string) => Promise<void>;

/** A node's link to its managers: the tasks it must run, and where it says how they are. */
export interface AssignmentChannel {
  /** Calls `onChange` with the full set of the node's tasks now and after every change. */
  watch(nodeId: string, onChange: (tasks: TaskAssignment[]) => void): () => void;
  report(nodeId: string, reports: TaskStatusReport[]): Promise<void>;
}
