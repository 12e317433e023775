// The dispatcher's core: a node's assignments from the store (tasks on the node that are not
// finished on both sides), and status reports turned into store updates. Its gRPC service
// (server.ts) streams them to every agent and takes their reports.
import type { TaskAssignment, TaskStatusReport } from "../../shared/cluster.js";
import { TERMINAL_STATES, taskStateRank as rank } from "../../shared/cluster.js";
import type { ClusterStore } from "../store/store.js";
import type { StoreEvent, TaskObject } from "../store/types.js";

/** The allocator's addresses for the task, with the aliases its spec asks for on each network. */
interface AttachmentsView {
  NetworksAttachments?: Array<{ Network?: { ID?: string; Spec?: { Name?: string } }; Addresses?: string[] }>;
  Spec: { Networks?: Array<{ Target?: string; Aliases?: string[] }> };
}

function networksOf(t: AttachmentsView): TaskAssignment["networks"] {
  const out: NonNullable<TaskAssignment["networks"]> = [];
  for (const a of t.NetworksAttachments ?? []) {
    const id = a.Network?.ID;
    const address = a.Addresses?.[0];
    if (!id || !address) continue;
    const name = a.Network?.Spec?.Name ?? id;
    const wanted = t.Spec.Networks?.find((n) => n.Target === id || n.Target === name);
    out.push({ networkId: id, networkName: name, address, aliases: wanted?.Aliases ?? [] });
  }
  return out.length > 0 ? out : undefined;
}

function toAssignment(t: TaskObject): TaskAssignment {
  const networks = networksOf(t as unknown as AttachmentsView);
  return {
    id: t.ID,
    serviceId: t.ServiceID,
    serviceName: t.ServiceName ?? t.ServiceID,
    slot: t.Slot,
    spec: t.Spec as TaskAssignment["spec"],
    desiredState: t.DesiredState,
    state: t.Status.State,
    ...(networks ? { networks } : {}),
  };
}

export class Dispatcher {
  constructor(private readonly store: ClusterStore) {}

  /** Tasks a node must know of: placed on it, and not both meant and known to be finished. */
  assignments(nodeId: string): TaskAssignment[] {
    return this.store
      .view((tx) => tx.tasksOfNode(nodeId))
      .filter((t) => !(TERMINAL_STATES.has(t.Status.State) && t.DesiredState !== "running"))
      .filter((t) => rank(t.Status.State) >= rank("assigned"))
      .map(toAssignment);
  }

  /** Apply status reports in one transaction; stale or backward reports are ignored. */
  async report(nodeId: string, reports: TaskStatusReport[]): Promise<void> {
    if (reports.length === 0) return;
    await this.store.update((tx) => {
      for (const r of reports) {
        const t = tx.get("tasks", r.taskId);
        if (!t || t.NodeID !== nodeId || TERMINAL_STATES.has(t.Status.State)) continue;
        if (!TERMINAL_STATES.has(r.state) && rank(r.state) < rank(t.Status.State)) continue;
        // A state told again (after a reconnect or failover) is not news: its time stays.
        if (
          r.state === t.Status.State &&
          r.message === t.Status.Message &&
          (r.containerId ?? "") === ((t.Status.ContainerStatus?.ContainerID as string | undefined) ?? "")
        )
          continue;
        tx.update("tasks", {
          ...t,
          Status: {
            Timestamp: new Date().toISOString(),
            State: r.state,
            Message: r.message,
            ...(r.err ? { Err: r.err } : {}),
            ...(r.containerId || r.exitCode !== undefined
              ? { ContainerStatus: { ContainerID: r.containerId ?? "", ExitCode: r.exitCode ?? 0 } }
              : {}),
          },
        });
      }
    });
  }
}

/**
 * The nodes whose assignments a committed batch may change; "all" for a snapshot restore (an
 * empty batch), after which every node must be looked at again.
 */
export function nodesTouched(events: StoreEvent[]): Set<string> | "all" {
  if (events.length === 0) return "all";
  const nodes = new Set<string>();
  for (const e of events) {
    if (e.table !== "tasks") continue;
    nodes.add((e.object as TaskObject).NodeID);
    const old = e.old as TaskObject | undefined;
    if (old) nodes.add(old.NodeID);
  }
  return nodes;
}

/**
 * The changes that turn the set a node was sent (`sent`: id → the assignment as JSON) into
 * `now`; `sent` is brought up to date. Remote agents get these instead of the whole set each time.
 */
export function diffAssignments(
  sent: Map<string, string>,
  now: TaskAssignment[],
): { update: TaskAssignment[]; remove: string[] } {
  const update: TaskAssignment[] = [];
  const seen = new Set<string>();
  for (const t of now) {
    seen.add(t.id);
    const json = JSON.stringify(t);
    if (sent.get(t.id) === json) continue;
    sent.set(t.id, json);
    update.push(t);
  }
  const remove = [...sent.keys()].filter((id) => !seen.has(id));
  for (const id of remove) sent.delete(id);
  return { update, remove };
}
