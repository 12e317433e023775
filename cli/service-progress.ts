// What `service create`, `update` and `scale` show while a service converges, as the docker CLI
// does: "overall progress: 2 out of 3 tasks", one line per slot (per node for a global service)
// with its task's state, then "verify: Service converged" once the tasks stayed running for a
// moment. On a terminal the lines are redrawn in place with bars; elsewhere each change is one
// plain line. Tasks failing again and again, or no convergence before the timeout, end the wait
// with the tasks' error and a non-zero exit.

import type { ApiClient } from "./client.js";
import { CliError } from "./errors.js";
import { progressBar, ProgressRenderer, type ProgressOutput } from "./progress.js";

interface ProgressService {
  ID: string;
  Spec: {
    Name: string;
    Mode: { Replicated?: { Replicas: number }; Global?: object };
    UpdateConfig?: { Monitor?: number };
  };
}

export interface ProgressTask {
  ID: string;
  Slot: number;
  NodeID: string;
  DesiredState: string;
  Status: { State: string; Err?: string; Message?: string };
}

interface ProgressNode {
  ID: string;
  Status: { State: string };
  Spec?: { Availability?: string };
}

/** Docker's order of task states up to running (the bar's length); later states are not shown. */
const NUMBERED: Record<string, number> = {
  new: 1,
  allocated: 2,
  pending: 3,
  assigned: 4,
  accepted: 5,
  preparing: 6,
  ready: 7,
  starting: 8,
  running: 9,
};
const RUNNING = NUMBERED.running;
const FAILED = new Set(["failed", "rejected"]);

interface SlotLine {
  /** `1/3` for a replicated slot, the node's short id for a global service. */
  id: string;
  /** The task's state, or its error (why it is pending, why it failed). */
  text: string;
  /** 0..9: how far the task got towards running. */
  step: number;
}

interface ProgressView {
  running: number;
  desired: number;
  lines: SlotLine[];
  converged: boolean;
}

/**
 * The display of one moment: per slot, the task docker's CLI would pick (the lowest desired
 * state, then the lowest observed state: a replacement starting wins over its predecessor),
 * skipping tasks on nodes that are not active.
 */
export function progressView(
  service: ProgressService,
  tasks: ProgressTask[],
  nodes: ProgressNode[],
): ProgressView {
  const active = new Set(nodes.filter((n) => n.Status.State !== "down").map((n) => n.ID));
  const global = service.Spec.Mode.Global !== undefined;
  const bySlot = new Map<string, ProgressTask>();
  for (const t of tasks) {
    const desired = NUMBERED[t.DesiredState] ?? 0;
    const observed = NUMBERED[t.Status.State] ?? 0;
    if (desired === 0 || observed === 0) continue;
    if (t.NodeID !== "" && !active.has(t.NodeID)) continue;
    const key = global ? t.NodeID : String(t.Slot);
    if (key === "") continue;
    const seen = bySlot.get(key);
    if (seen) {
      const seenDesired = NUMBERED[seen.DesiredState] ?? 0;
      if (seenDesired < desired) continue;
      if (seenDesired === desired && (NUMBERED[seen.Status.State] ?? 0) <= observed) continue;
    }
    bySlot.set(key, t);
  }
  // A global service: the nodes its tasks are for (as the docker CLI counts them).
  const keys = global
    ? [...bySlot.keys()].sort()
    : Array.from({ length: service.Spec.Mode.Replicated?.Replicas ?? 0 }, (_, i) => String(i + 1));
  const width = Math.max(...Object.keys(NUMBERED).map((s) => s.length));
  const lines: SlotLine[] = [];
  let running = 0;
  for (const key of keys) {
    const t = bySlot.get(key);
    const id = global ? key.slice(0, 12) : `${key}/${keys.length}`;
    if (!t) {
      lines.push({ id, text: "", step: 0 });
      continue;
    }
    const step = NUMBERED[t.Status.State] ?? 0;
    if (step === RUNNING && t.DesiredState === "running") running++;
    const err = t.Status.Err ?? "";
    lines.push({ id, text: err !== "" ? err : t.Status.State.padEnd(width), step });
  }
  const desired = keys.length;
  // A global service has converged once it has tasks (none yet means none were made yet).
  return { running, desired, lines, converged: running === desired && (!global || desired > 0) };
}

interface ConvergeOptions {
  out?: ProgressOutput;
  timeoutMs?: number;
  pollMs?: number;
  /** How long the tasks must stay running before "converged" (UpdateConfig.Monitor, else 1 s). */
  monitorMs?: number;
  /** Failed or rejected tasks (of the current spec) after which the wait gives up. */
  maxFailures?: number;
}

/** Draws the lines: in place with bars on a terminal, each change as a plain line elsewhere. */
class Display {
  private readonly renderer: ProgressRenderer;
  private readonly shown = new Map<string, string>();

  constructor(private readonly out: ProgressOutput) {
    this.renderer = new ProgressRenderer(out);
  }

  line(id: string, status: string, step?: number): void {
    const tty = Boolean(this.out.isTTY);
    const bar = tty && step ? progressBar(step, RUNNING, 50, false) : "";
    const key = `${status}\u0000${bar}`;
    if (this.shown.get(id) === key) return;
    this.shown.set(id, key);
    if (!tty && status.trim() === "") return;
    this.renderer.handle({ id, status: tty ? status : status.trimEnd(), ...(bar ? { progress: bar } : {}) });
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Follow service `id` until its tasks run (resolves), or fail with the reason (CliError). */
export async function waitForConvergence(
  client: ApiClient,
  id: string,
  o: ConvergeOptions = {},
): Promise<void> {
  const out = o.out ?? process.stdout;
  const display = new Display(out);
  const timeoutMs = o.timeoutMs ?? 120_000;
  const pollMs = o.pollMs ?? 500;
  const maxFailures = o.maxFailures ?? 3;
  const until = Date.now() + timeoutMs;
  const failures = new Map<string, ProgressTask>();
  let convergedAt: number | undefined;
  let name = id;
  while (Date.now() < until) {
    let service: ProgressService;
    try {
      service = await client.json<ProgressService>("GET", `/services/${encodeURIComponent(id)}`);
    } catch (e) {
      if ((e as { status?: number }).status === 404)
        throw new CliError(`service ${name} was removed while it converged`);
      throw e;
    }
    name = service.Spec.Name;
    const [tasks, nodes] = await Promise.all([
      client.json<ProgressTask[]>("GET", "/tasks", {
        query: { filters: JSON.stringify({ service: [service.ID], "_up-to-date": ["true"] }) },
      }),
      client.json<ProgressNode[]>("GET", "/nodes"),
    ]);
    const view = progressView(service, tasks, nodes);
    display.line("overall progress", `${view.running} out of ${view.desired} tasks`);
    for (const l of view.lines) display.line(l.id, l.text, l.step);

    for (const t of tasks) if (FAILED.has(t.Status.State)) failures.set(t.ID, t);
    if (failures.size >= maxFailures) {
      const last = [...failures.values()].pop() as ProgressTask;
      const where = service.Spec.Mode.Global ? `on node ${last.NodeID.slice(0, 12)}` : `${name}.${last.Slot}`;
      throw new CliError(
        `service ${name} is not converging: ${failures.size} of its tasks ${last.Status.State === "rejected" ? "were rejected" : "failed"}, the last (${where}) with: ${last.Status.Err || last.Status.Message || last.Status.State}\nSee \`shoal service ps --no-trunc ${name}\` for every attempt; fix the service with \`shoal service update\`.`,
      );
    }

    const monitorMs =
      o.monitorMs ?? (service.Spec.UpdateConfig?.Monitor ? service.Spec.UpdateConfig.Monitor / 1e6 : 1000);
    if (view.converged) {
      convergedAt ??= Date.now();
      if (Date.now() - convergedAt >= monitorMs) {
        display.line("verify", "Service converged");
        return;
      }
      const left = Math.ceil((monitorMs - (Date.now() - convergedAt)) / 1000);
      if (out.isTTY) display.line("verify", `Waiting ${left} seconds to verify that tasks are stable...`);
    } else {
      convergedAt = undefined;
    }
    await sleep(pollMs);
  }
  throw new CliError(
    `service ${name} did not converge within ${Math.round(timeoutMs / 1000)}s: see \`shoal service ps --no-trunc ${name}\` for why its tasks do not run (the service itself was changed)`,
  );
}
