// The scheduler on the leader: pending tasks go to nodes as scheduler.ts decides, in one
// transaction per pass; a task that fits nowhere keeps its reason in Status.Message (what
// `service ps` shows) and is tried again at the next change, since any change may free room.
import type { Logger } from "../../shared/logging.js";
import type { ClusterStore } from "../store/store.js";
import { schedule } from "./scheduler.js";
import { CoalescedPass } from "../coalesced-pass.js";
import type { StoreWriter } from "../leadership.js";

export class Scheduler {
  private readonly passes: CoalescedPass;
  private readonly unsubscribe: () => void;
  private readonly timer: NodeJS.Timeout;

  /** `writer`: the leader term's fenced writer (see Orchestrator); the store in tests. */
  constructor(
    private readonly store: ClusterStore,
    log: Logger,
    private readonly writer: StoreWriter = store,
  ) {
    this.passes = new CoalescedPass(() => this.scheduleOnce(), log, "scheduler");
    this.unsubscribe = store.subscribe(() => this.kick());
    this.timer = setInterval(() => this.kick(), 2000);
    this.kick();
  }

  /** Run a pass soon; passes never overlap, a kick during one runs another after it. */
  kick(): void {
    this.passes.kick();
  }

  private async scheduleOnce(): Promise<void> {
    const { pending, nodes, tasks } = this.store.view((tx) => {
      const all = tx.list("tasks");
      return {
        tasks: all,
        nodes: tx.list("nodes"),
        pending: all.filter((t) => t.Status.State === "pending" && t.DesiredState === "running"),
      };
    });
    if (pending.length === 0) return;
    // A global service's task is made for one node: it is checked against that node alone.
    const free = pending.filter((t) => t.NodeID === "");
    const decisions = [
      ...schedule(free, nodes, tasks),
      ...pending
        .filter((t) => t.NodeID !== "")
        .flatMap((t) =>
          schedule(
            [{ ...t, NodeID: "" }],
            nodes.filter((n) => n.ID === t.NodeID),
            tasks,
          ),
        ),
    ];
    const changed = decisions.filter(
      (d) => "nodeId" in d || pending.find((x) => x.ID === d.taskId)?.Status.Err !== d.reason,
    );
    if (changed.length === 0) return;
    await this.writer.update((tx) => {
      const now = new Date().toISOString();
      for (const d of changed) {
        const t = tx.get("tasks", d.taskId);
        if (!t || t.Status.State !== "pending" || t.DesiredState !== "running") continue;
        if ("nodeId" in d && t.NodeID !== "" && t.NodeID !== d.nodeId) continue;
        if ("nodeId" in d) {
          // The reason it waited is over once it is placed.
          const { Err: _waited, ...status } = t.Status;
          tx.update("tasks", {
            ...t,
            NodeID: d.nodeId,
            Status: {
              ...status,
              State: "assigned",
              Message: "scheduler assigned task to node",
              Timestamp: now,
            },
          });
        } else {
          // Err is what `service ps` shows in its ERROR column, as swarmkit's scheduler sets it.
          tx.update("tasks", { ...t, Status: { ...t.Status, Err: d.reason, Timestamp: now } });
        }
      }
    });
  }

  stop(): void {
    this.passes.stop();
    clearInterval(this.timer);
    this.unsubscribe();
  }
}
