// The orchestrator on the leader: after every store change (debounced) and on a timer (restart
// delays come due), it turns each service's plan into a store transaction. Tasks are born
// "new": the allocator gives them their addresses and makes them pending, the scheduler then
// picks a node.
import type { Logger } from "../../shared/logging.js";
import type { ClusterStore } from "../store/store.js";
import type { ServiceObject, TaskObject } from "../store/types.js";
import { TERMINAL_STATES } from "../../shared/cluster.js";
import { reconcile } from "./reconcile.js";
import { CoalescedPass } from "../coalesced-pass.js";
import type { StoreWriter } from "../leadership.js";

export class Orchestrator {
  private timer: NodeJS.Timeout | undefined;
  private readonly passes: CoalescedPass;
  private readonly unsubscribe: () => void;
  private readonly writer: StoreWriter;

  /**
   * `o.writer`: the leader term's fenced writer (manager.ts); it refuses each batch once this
   * manager no longer leads, which ends the pass. Without it (tests), the store.
   */
  constructor(
    private readonly store: ClusterStore,
    log: Logger,
    o: { periodMs?: number; writer?: StoreWriter } = {},
  ) {
    this.writer = o.writer ?? store;
    const periodMs = o.periodMs ?? 1000;
    this.passes = new CoalescedPass(() => this.reconcileAll(), log, "orchestrator");
    this.unsubscribe = store.subscribe((events) => {
      if (
        events.length === 0 ||
        events.some(
          (e) =>
            e.table !== "tasks" ||
            e.op !== "update" ||
            TERMINAL_STATES.has((e.object as TaskObject).Status.State),
        )
      )
        this.kick();
    });
    this.timer = setInterval(() => this.kick(), periodMs);
    this.kick();
  }

  /** Run a pass soon; passes never overlap, a kick during one runs another after it. */
  kick(): void {
    this.passes.kick();
  }

  private async reconcileAll(): Promise<void> {
    const now = Date.now();
    const { services, tasks, nodes } = this.store.view((tx) => ({
      services: tx.list("services"),
      tasks: tx.list("tasks"),
      nodes: tx.list("nodes"),
    }));
    const byService = new Map<string, TaskObject[]>();
    for (const t of tasks) byService.set(t.ServiceID, [...(byService.get(t.ServiceID) ?? []), t]);
    await this.reap(
      services.map((s) => s.ID),
      tasks,
    );
    const ids = new Set([...services.map((s) => s.ID), ...byService.keys()]);
    for (const id of ids) {
      const service = services.find((s) => s.ID === id);
      const plan = reconcile(service, byService.get(id) ?? [], nodes, now);
      const due = plan.create.filter((c) => c.notBefore <= now);
      if (due.length === 0 && plan.shutdown.length === 0) continue;
      await this.writer.update((tx) => {
        for (const taskId of plan.shutdown) {
          const t = tx.get("tasks", taskId);
          if (!t || t.DesiredState !== "running") continue;
          // A task no node has taken yet can be finished here; others are stopped by their node.
          const unassigned = t.NodeID === "" && (t.Status.State === "pending" || t.Status.State === "new");
          tx.update("tasks", {
            ...t,
            DesiredState: "shutdown",
            Status: unassigned
              ? {
                  ...t.Status,
                  State: "shutdown",
                  Message: "shut down before it was placed",
                  Timestamp: new Date().toISOString(),
                }
              : t.Status,
          });
        }
        for (const c of due) newTask(tx, service as ServiceObject, c.slot, c.nodeId, c.spec);
      });
    }
  }

  /**
   * The task reaper: ended tasks beyond the cluster's history limit per slot (Docker's
   * TaskHistoryRetentionLimit, default 5), and ended tasks of removed services, leave the store;
   * their nodes then remove the containers.
   */
  private async reap(serviceIds: string[], tasks: TaskObject[]): Promise<void> {
    const cluster = this.store.view((tx) => tx.list("clusters"))[0];
    const limit =
      (cluster?.Spec as { Orchestration?: { TaskHistoryRetentionLimit?: number } } | undefined)?.Orchestration
        ?.TaskHistoryRetentionLimit ?? 5;
    const known = new Set(serviceIds);
    const gone = tasks
      .filter((t) => !known.has(t.ServiceID) && TERMINAL_STATES.has(t.Status.State))
      .map((t) => t.ID);
    const ids = [...new Set([...this.store.tasksBeyondHistory(Math.max(limit, 1)), ...gone])];
    if (ids.length === 0) return;
    await this.writer.update((tx) => {
      for (const id of ids) if (tx.get("tasks", id)) tx.delete("tasks", id);
    });
  }

  stop(): void {
    this.passes.stop();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribe();
  }
}

type Tx = Parameters<Parameters<StoreWriter["update"]>[0]>[0];

function newTask(
  tx: Tx,
  service: ServiceObject,
  slot: number,
  nodeId: string,
  spec: Record<string, unknown>,
): void {
  tx.create("tasks", {
    ServiceID: service.ID,
    Slot: slot,
    NodeID: nodeId,
    Spec: spec,
    Status: { Timestamp: new Date().toISOString(), State: "new", Message: "created" },
    DesiredState: "running",
    ServiceName: service.Spec.Name,
  } as Omit<TaskObject, "ID" | "Meta">);
}
