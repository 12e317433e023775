// What the orchestrators decide for one service, as a pure function of the service, its tasks,
// the nodes and the time: which tasks to make and which to shut down. Replicated services keep
// one live task per slot 1..replicas; global services one per eligible node. A task that ended
// is replaced as its restart policy says (condition, delay, attempts within a window).
import { parseConstraint, satisfies } from "../scheduler/constraints.js";
import type { NodeObject, ServiceObject, TaskObject, TaskState } from "../store/types.js";

export interface RestartPolicy {
  condition: "none" | "on-failure" | "any";
  delayMs: number;
  /** 0 = no limit. */
  maxAttempts: number;
  /** Attempts are counted within this window; 0 = forever. */
  windowMs: number;
}

export interface NewTask {
  serviceId: string;
  slot: number;
  /** Global services: the node the task is for. */
  nodeId: string;
  spec: Record<string, unknown>;
  /** Not before this time (restart delay), ms since the epoch; 0 = now. */
  notBefore: number;
}

export interface Plan {
  create: NewTask[];
  /** Tasks whose desired state becomes shutdown. */
  shutdown: string[];
}

const ENDED: ReadonlySet<TaskState> = new Set([
  "complete",
  "shutdown",
  "failed",
  "rejected",
  "orphaned",
  "remove",
]);

export function restartPolicyOf(service: ServiceObject): RestartPolicy {
  const p = (
    service.Spec.TaskTemplate as {
      RestartPolicy?: { Condition?: string; Delay?: number; MaxAttempts?: number; Window?: number };
    }
  ).RestartPolicy;
  const condition = p?.Condition === "none" || p?.Condition === "on-failure" ? p.Condition : "any";
  return {
    condition,
    // The swarm API gives durations in nanoseconds; Docker's default delay is 5 s.
    delayMs: p?.Delay !== undefined ? p.Delay / 1e6 : 5000,
    maxAttempts: p?.MaxAttempts ?? 0,
    windowMs: p?.Window !== undefined ? p.Window / 1e6 : 0,
  };
}

function live(t: TaskObject): boolean {
  return t.DesiredState === "running" && !ENDED.has(t.Status.State);
}

function ts(t: TaskObject): number {
  return Date.parse(t.Status.Timestamp || t.Meta.CreatedAt) || 0;
}

/** Whether an ended task's slot gets a new task, and from when. */
function restartDecision(
  ended: TaskObject,
  history: TaskObject[],
  policy: RestartPolicy,
  now: number,
): { restart: boolean; notBefore: number } {
  const failed = ended.Status.State === "failed" || ended.Status.State === "rejected";
  if (policy.condition === "none") return { restart: false, notBefore: 0 };
  if (policy.condition === "on-failure" && !failed) return { restart: false, notBefore: 0 };
  if (policy.maxAttempts > 0) {
    const since = policy.windowMs > 0 ? now - policy.windowMs : 0;
    // Each earlier task of the slot beyond the first was a restart.
    const attempts = history.filter((t) => ts(t) >= since).length - 1;
    if (attempts >= policy.maxAttempts) return { restart: false, notBefore: 0 };
  }
  return { restart: true, notBefore: ts(ended) + policy.delayMs };
}

function eligible(node: NodeObject, constraints: string[]): boolean {
  return (
    node.Status.State === "ready" &&
    node.Spec.Availability === "active" &&
    constraints.map(parseConstraint).every((c) => satisfies(node, c))
  );
}

/**
 * The plan for one service. `tasks` are all the service's tasks (any state); `nodes` all nodes.
 * A removed service (undefined) shuts every task down.
 */
export function reconcile(
  service: ServiceObject | undefined,
  tasks: TaskObject[],
  nodes: NodeObject[],
  now: number,
): Plan {
  const plan: Plan = { create: [], shutdown: [] };
  if (!service) {
    plan.shutdown = tasks.filter((t) => t.DesiredState === "running").map((t) => t.ID);
    return plan;
  }
  const policy = restartPolicyOf(service);
  const spec = service.Spec.TaskTemplate;
  const endpoint = (service.Spec as { EndpointSpec?: { Ports?: unknown[] } }).EndpointSpec;
  const groups = new Map<string, TaskObject[]>();
  const global = service.Spec.Mode.Global !== undefined;
  for (const t of tasks) {
    const k = global ? t.NodeID : String(t.Slot);
    groups.set(k, [...(groups.get(k) ?? []), t]);
  }
  const wanted: string[] = global
    ? nodes
        .filter((n) =>
          eligible(n, (spec as { Placement?: { Constraints?: string[] } }).Placement?.Constraints ?? []),
        )
        .map((n) => n.ID)
    : Array.from({ length: Math.max(0, service.Spec.Mode.Replicated?.Replicas ?? 0) }, (_, i) =>
        String(i + 1),
      );
  const wantedSet = new Set(wanted);

  for (const [k, group] of groups) {
    if (wantedSet.has(k)) continue;
    // Scaled down, or a global service's node left: its live tasks go.
    for (const t of group) if (t.DesiredState === "running") plan.shutdown.push(t.ID);
  }
  // A replicated task on a node that is gone, down or drained is moved: shut down and replaced.
  const usable = new Set(
    nodes.filter((n) => n.Status.State !== "down" && n.Spec.Availability !== "drain").map((n) => n.ID),
  );
  const stranded = (t: TaskObject): boolean => !global && t.NodeID !== "" && !usable.has(t.NodeID);
  for (const k of wanted) {
    const group = (groups.get(k) ?? []).sort((a, b) => a.Meta.Version.Index - b.Meta.Version.Index);
    for (const t of group.filter(live).filter(stranded)) plan.shutdown.push(t.ID);
    const running = group.filter(live).filter((t) => !stranded(t));
    // A slot holds one live task: extras (a restart raced a recovery) are shut down, newest kept.
    for (const extra of running.slice(0, -1)) plan.shutdown.push(extra.ID);
    if (running.length > 0) continue;
    const newTask = (notBefore: number): NewTask => ({
      serviceId: service.ID,
      slot: global ? 0 : Number(k),
      nodeId: global ? k : "",
      // The task carries the service's published ports (swarmkit copies the Endpoint too):
      // the scheduler keeps host-mode ports apart and the worker publishes them.
      spec: { ...structuredClone(spec), ...(endpoint ? { Endpoint: structuredClone(endpoint) } : {}) },
      notBefore,
    });
    const last = group[group.length - 1];
    if (!last || stranded(last)) {
      plan.create.push(newTask(0));
      continue;
    }
    // Shut down on purpose (a scale down, then up again): the slot is simply filled again.
    if (last.DesiredState !== "running") {
      plan.create.push(newTask(0));
      continue;
    }
    // It ended while meant to run: the restart policy decides. A task not restarted stays as
    // it is (desired running, ended), so the slot is not refilled at the next pass either.
    const d = restartDecision(last, group, policy, now);
    if (d.restart) {
      plan.shutdown.push(last.ID);
      plan.create.push(newTask(d.notBefore));
    }
  }
  return plan;
}
