// Which nodes are alive, for the leading dispatcher: a deadline per node, moved by every sign
// of life (a heartbeat, a new session), and the node-state writes that follow from it (ready on
// arrival, down on a missed deadline).
// Two things make this more than a map of deadlines:
// - Time is monotonic, and the check compensates for its own lateness. After an event-loop
//   stall the check timer runs before the heartbeats that queued up meanwhile are read; a check
//   that comes L ms late moves every deadline by up to L (never past the time since the node was
//   last seen), so a stall of the manager is not taken for the death of every node. A node that
//   really went silent still reaches its deadline, only later by the stall's length.
// - Each sign of life starts a new generation. A mark-down is decided for one generation and
//   dropped if the node showed life since; node-state writes of one node run one after the
//   other, so a reconnect's "ready" lands after a mark-down in flight, never before it; and a
//   node found "down" while it heartbeats (a mark-down that committed anyway, maybe a former
//   leader's) is marked ready again. A live node does not stay "down".
import { forbidden, messageOf } from "../../shared/errors.js";
import type { Logger } from "../../shared/logging.js";
import type { ClusterStore } from "../store/store.js";
import type { NodeObject } from "../store/types.js";
import { retryConflicts } from "./retry-conflicts.js";

/** Milliseconds on a clock that never jumps (not the wall clock). */
export type MonotonicClock = () => number;

export const monotonicNow: MonotonicClock = () => performance.now();

export interface LivenessOptions {
  store: ClusterStore;
  /** Whether this manager leads now: only the leader writes node states. */
  leading(): boolean;
  /** How long a node may be silent (read at each sign of life: a cluster update applies). */
  timeoutMs(): number;
  /** How soon a mark-down that failed to commit is tried again. */
  retryMs(): number;
  /** How often check() is meant to run; a check later than this was held up. */
  checkEveryMs: number;
  now?: MonotonicClock;
  log: Logger;
}

interface Watch {
  /** When the node last showed life. */
  seen: number;
  deadline: number;
  generation: number;
  /** A mark-down was decided for this generation (and is written, or being written). */
  decided: boolean;
}

export class NodeLiveness {
  private readonly now: MonotonicClock;
  private readonly watches = new Map<string, Watch>();
  /** Generations are never reused, also across leadership changes. */
  private nextGeneration = 1;
  private lastCheck: number | undefined;
  /** The tail of each node's chain of node-state writes. */
  private readonly writes = new Map<string, Promise<void>>();
  private readonly reviving = new Set<string>();

  constructor(private readonly o: LivenessOptions) {
    this.now = o.now ?? monotonicNow;
  }

  /** Nodes watched now. */
  get size(): number {
    return this.watches.size;
  }

  /** The node showed life (a heartbeat), or is given a whole timeout from now (leadership start). */
  alive(nodeId: string): void {
    const now = this.now();
    this.watches.set(nodeId, {
      seen: now,
      deadline: now + this.o.timeoutMs(),
      generation: this.nextGeneration++,
      decided: false,
    });
  }

  /** Forget every node (leadership lost, or about to be taken anew). */
  clear(): void {
    this.watches.clear();
    this.lastCheck = undefined;
  }

  /**
   * The timer's work: the nodes whose deadline passed, for which a mark-down is now under way
   * (the caller ends their sessions).
   */
  check(): string[] {
    const now = this.now();
    const late = this.lastCheck === undefined ? 0 : Math.max(0, now - this.lastCheck - this.o.checkEveryMs);
    this.lastCheck = now;
    // Timers are always a little late; only a real hold-up is worth a line in the log.
    if (late >= this.o.checkEveryMs && this.watches.size > 0)
      this.o.log.warn(
        { lateMs: Math.round(late), nodes: this.watches.size },
        "dispatcher: the heartbeat check ran late (event loop held up); deadlines moved by that much",
      );
    const down: string[] = [];
    for (const [nodeId, w] of this.watches) {
      if (w.decided) continue;
      // Only the part of the delay that the node spent waiting on us is forgiven.
      if (late > 0) w.deadline += Math.min(late, now - w.seen);
      if (w.deadline >= now) continue;
      w.decided = true;
      down.push(nodeId);
      void this.markDown(nodeId, w.generation);
    }
    return down;
  }

  /** A mark-down decided for `generation` still stands: still leading, and no life since. */
  private stands(nodeId: string, generation: number): boolean {
    return this.o.leading() && this.watches.get(nodeId)?.generation === generation;
  }

  /** Run the node's state writes one at a time, in the order they were asked for. */
  private serially(nodeId: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.writes.get(nodeId) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    this.writes.set(nodeId, next);
    void next
      .catch(() => undefined)
      .finally(() => {
        if (this.writes.get(nodeId) === next) this.writes.delete(nodeId);
      });
    return next;
  }

  /**
   * A session opens: the node is alive, and its stored node is updated by `describe` and marked
   * ready, after any write of this node already under way. Refused if the node was removed.
   */
  arrive(nodeId: string, describe: (n: NodeObject) => NodeObject): Promise<void> {
    // Before the write: a deadline that passed meanwhile must not mark the arriving node down.
    this.alive(nodeId);
    return this.serially(nodeId, () =>
      this.writeNode(nodeId, (n) => {
        const next = describe(n);
        next.Status = { State: "ready", Addr: next.Status.Addr };
        return next;
      }),
    );
  }

  /** A heartbeat on an open session: alive, and marked ready again if the store says down. */
  heartbeat(nodeId: string): void {
    this.alive(nodeId);
    const stored = this.o.store.view((tx) => tx.get("nodes", nodeId));
    if (stored?.Status.State !== "down" || this.reviving.has(nodeId)) return;
    this.reviving.add(nodeId);
    void this.serially(nodeId, () => this.revive(nodeId))
      .catch((e: unknown) =>
        this.o.log.warn({ node: nodeId, err: messageOf(e) }, "dispatcher: marking a node ready again failed"),
      )
      .finally(() => this.reviving.delete(nodeId));
  }

  /** Write `change(node)` if it differs from what is stored; throws if the node was removed. */
  private async writeNode(nodeId: string, change: (n: NodeObject) => NodeObject | undefined): Promise<void> {
    await retryConflicts(() =>
      this.o.store.update((tx) => {
        const n = tx.get("nodes", nodeId);
        if (!n) throw forbidden(`node ${nodeId} was removed from the cluster`);
        const next = change(structuredClone(n));
        if (next && JSON.stringify(next) !== JSON.stringify(n)) tx.update("nodes", next);
      }),
    );
  }

  /** The node is alive but stored as down: ready again (unless a newer mark-down stands). */
  private async revive(nodeId: string): Promise<void> {
    let revived = false;
    await this.writeNode(nodeId, (n) => {
      revived = false;
      const w = this.watches.get(nodeId);
      if (!this.o.leading() || !w || w.decided || n.Status.State !== "down") return undefined;
      revived = true;
      return { ...n, Status: { State: "ready", Addr: n.Status.Addr } };
    });
    if (revived)
      this.o.log.info({ node: nodeId }, "dispatcher: a node marked down is heartbeating; marked ready");
  }

  private markDown(nodeId: string, generation: number): Promise<void> {
    return this.serially(nodeId, async () => {
      let marked = false;
      try {
        await retryConflicts(() =>
          this.o.store.update((tx) => {
            marked = false;
            if (!this.stands(nodeId, generation)) return;
            const n = tx.get("nodes", nodeId);
            if (!n || n.Status.State === "down") return;
            tx.update("nodes", {
              ...n,
              Status: { ...n.Status, State: "down", Message: "heartbeat failure" },
            });
            marked = true;
          }),
        );
      } catch (e) {
        this.o.log.warn(
          { node: nodeId, err: messageOf(e) },
          "dispatcher: marking a node down failed; retrying",
        );
        const w = this.watches.get(nodeId);
        if (w && this.stands(nodeId, generation)) {
          w.decided = false;
          w.deadline = this.now() + this.o.retryMs();
        }
        return;
      }
      if (marked) this.o.log.warn({ node: nodeId }, "dispatcher: node missed its heartbeats; marked down");
      if (this.stands(nodeId, generation)) this.watches.delete(nodeId);
      // The node showed life while the mark-down was being committed: it is not down.
      else if (marked && this.o.leading() && this.watches.has(nodeId)) await this.revive(nodeId);
    });
  }
}
