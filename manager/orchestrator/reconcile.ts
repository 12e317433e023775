// What the orchestrators decide for one service, as a pure function of the service, its tasks,
// the nodes and the time: which tasks to make and which to shut down. Replicated services keep
// one live task per slot 1..replicas; global services one per eligible node. A task that ended
// is replaced as its restart policy says (condition, delay, attempts within a window). A live
// task made from an older spec (the service was updated, or forced with ForceUpdate) is
// replaced too, a few slots at a time (UpdateConfig.Parallelism, Docker's default 1; 0 = all).
import { constraintsOf, satisfiesAll } from "../constraint/constraint.js";
import { TERMINAL_STATES } from "../../shared/cluster.js";
import type { NodeObject, ServiceObject, TaskObject } from "../store/types.js";

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

function restartPolicyOf(service: ServiceObject): RestartPolicy {
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

/**
 * A value with its zero values left out, keys sorted: how swarmkit's protobuf specs compare, so
 * that `Env: []`, `Labels: {}` or `Delay: 0` (which the docker CLI drops when it sends a spec
 * back) equal a missing field.
 */
function canonical(v: unknown): unknown {
  if (v === null || v === undefined || v === false || v === 0 || v === "") return undefined;
  if (Array.isArray(v)) {
    const items = v.map((x) => canonical(x) ?? null);
    return items.length === 0 ? undefined : items;
  }
  if (typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) {
      const c = canonical((v as Record<string, unknown>)[k]);
      if (c !== undefined) out[k] = c;
    }
    return Object.keys(out).length === 0 ? undefined : out;
  }
  return v;
}

/** Whether two specs are equal as swarmkit compares them (zero values equal missing ones). */
export function sameSpec(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a) ?? null) === JSON.stringify(canonical(b) ?? null);
}

/** The spec a new task of the service gets: its task template and its published ports. */
export function taskSpecOf(service: ServiceObject): Record<string, unknown> {
  const endpoint = (service.Spec as { EndpointSpec?: { Ports?: unknown[] } }).EndpointSpec;
  // The task carries the service's published ports (swarmkit copies the Endpoint too): the
  // scheduler keeps host-mode ports apart and the worker publishes them.
  return {
    ...structuredClone(service.Spec.TaskTemplate),
    ...(endpoint ? { Endpoint: structuredClone(endpoint) } : {}),
  };
}

/**
 * Whether a task was made from the service's current spec. As swarmkit's IsTaskDirty, a change of
 * placement constraints alone leaves a task whose node still satisfies them where it is.
 */
export function upToDate(service: ServiceObject, task: TaskObject, nodes: NodeObject[] = []): boolean {
  const want = taskSpecOf(service);
  if (sameSpec(task.Spec, want)) return true;
  const { Placement: _wanted, ...wantRest } = want;
  const { Placement: _had, ...hadRest } = task.Spec;
  if (!sameSpec(hadRest, wantRest)) return false;
  const node = nodes.find((n) => n.ID === task.NodeID);
  if (!node) return false;
  try {
    return satisfiesAll(node, constraintsOf(want));
  } catch {
    return false;
  }
}

/** UpdateConfig.Parallelism: how many running tasks are replaced at once; 0 = all at once. */
function updateParallelism(service: ServiceObject): number {
  const u = (service.Spec as { UpdateConfig?: { Parallelism?: number } }).UpdateConfig;
  // Swarmkit's default when a spec has no UpdateConfig is 1, as the docker CLI sends.
  if (!u) return 1;
  const p = u.Parallelism ?? 0;
  return Number.isInteger(p) && p > 0 ? p : Infinity;
}

function live(t: TaskObject): boolean {
  return t.DesiredState === "running" && !TERMINAL_STATES.has(t.Status.State);
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

function eligible(node: NodeObject, template: unknown): boolean {
  return (
    node.Status.State === "ready" &&
    node.Spec.Availability === "active" &&
    satisfiesAll(node, constraintsOf(template))
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
  const fresh = (t: TaskObject): boolean => upToDate(service, t, nodes);
  const groups = new Map<string, TaskObject[]>();
  const global = service.Spec.Mode.Global !== undefined;
  for (const t of tasks) {
    const k = global ? t.NodeID : String(t.Slot);
    groups.set(k, [...(groups.get(k) ?? []), t]);
  }
  const wanted: string[] = global
    ? nodes.filter((n) => eligible(n, spec)).map((n) => n.ID)
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
  const sorted = (k: string): TaskObject[] =>
    (groups.get(k) ?? []).sort((a, b) => a.Meta.Version.Index - b.Meta.Version.Index);
  // A rolling update: slots already moved to the current spec whose task does not run yet (it
  // is starting, or failed and waits for its restart) hold the next ones back.
  let budget = updateParallelism(service);
  for (const k of wanted) {
    const group = sorted(k);
    const current = group.filter((t) => live(t) && !stranded(t) && fresh(t));
    if (current.length > 0) {
      if (!current.some((t) => t.Status.State === "running")) budget--;
      continue;
    }
    if (group.some(live)) continue;
    // Ended while meant to run, and about to be restarted: still in progress.
    const waiting = group.filter((t) => t.DesiredState === "running" && fresh(t) && !stranded(t));
    if (waiting.some((t) => restartDecision(t, group, policy, now).restart)) budget--;
  }
  for (const k of wanted) {
    const group = sorted(k);
    for (const t of group.filter(live).filter(stranded)) plan.shutdown.push(t.ID);
    const running = group.filter(live).filter((t) => !stranded(t));
    // A slot holds one live task: extras (a restart raced a recovery) are shut down, newest kept.
    for (const extra of running.slice(0, -1)) plan.shutdown.push(extra.ID);
    const newTask = (notBefore: number): NewTask => ({
      serviceId: service.ID,
      slot: global ? 0 : Number(k),
      nodeId: global ? k : "",
      spec: taskSpecOf(service),
      notBefore,
    });
    if (running.length > 0) {
      // The task its replacement was made for (after a restart delay) is done with now.
      for (const t of group) if (t.DesiredState === "running" && !live(t)) plan.shutdown.push(t.ID);
      // Made from an older spec: replaced (stop first, then a new task in the slot). A task that
      // does not run yet is replaced at once; running ones as the update's parallelism allows.
      const current = running[running.length - 1];
      if (fresh(current)) continue;
      const started = current.Status.State === "running";
      if (started && budget <= 0) continue;
      if (started) budget--;
      plan.shutdown.push(current.ID);
      plan.create.push(newTask(0));
      continue;
    }
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
    // it is (desired running, ended), so the slot is not refilled at the next pass either; nor
    // is it shut down before its restart delay is over (the loop makes only the tasks that are
    // due), or the next pass would refill the slot at once.
    const d = restartDecision(last, group, policy, now);
    if (d.restart) {
      if (d.notBefore <= now) plan.shutdown.push(last.ID);
      plan.create.push(newTask(d.notBefore));
    }
  }
  return plan;
}
