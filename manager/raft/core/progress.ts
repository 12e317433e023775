import { Inflights } from "./inflights.js";

/**
 * probe: the leader does not know where the follower's log ends; one MsgApp at a time, then
 * wait (heartbeat responses reopen the flow). replicate: pipelined MsgApps within the inflight
 * window. snapshot: a snapshot is on its way; nothing else is sent until snap_status or an ack.
 */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** The leader's view of one follower (etcd tracker.Progress). Invariant: match < next. */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** In snapshot state: the index of the snapshot sent. */
  pendingSnapshot = 0;
  /** Heard from within the last election timeout (CheckQuorum, and snapshots go only to live peers). */
  recentActive = false;
  /** No more MsgApps until an ack or a heartbeat response (probe sent, or inflights full). */
  msgAppFlowPaused = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(opts: {
    next: number;
    match?: number;
    maxInflight: number;
    maxInflightBytes: number;
    isLearner?: boolean;
  }) {
    this.next = opts.next;
    this.match = opts.match ?? 0;
    this.inflights = new Inflights(opts.maxInflight, opts.maxInflightBytes);
    this.isLearner = opts.isLearner ?? false;
  }

  resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // Leaving snapshot state after the snapshot was delivered: the follower has at least the
    // snapshot's entries, so probe right after it rather than from a stale match.
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot;
      this.resetState("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState("probe");
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState("snapshot");
    this.pendingSnapshot = snapshotIndex;
  }

  /** Account for a MsgApp carrying `entries` entries of `bytes` payload, starting at next. */
  sentEntries(entries: number, bytes: number): void {
    if (this.state === "replicate") {
      if (entries > 0) {
        this.next += entries;
        this.inflights.add(this.next - 1, bytes);
      }
      // An overflowing window pauses the flow; a heartbeat response lets one (empty) MsgApp
      // through, so replication recovers even if every inflight message was lost.
      this.msgAppFlowPaused = this.inflights.full();
    } else if (this.state === "probe") {
      if (entries > 0) this.msgAppFlowPaused = true;
    } else {
      throw new Error(`sending append in unhandled state ${this.state}`);
    }
  }

  /** An ack for index n. False if it is stale (n <= match). */
  maybeUpdate(n: number): boolean {
    if (n <= this.match) return false;
    this.match = n;
    this.next = Math.max(this.next, n + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /**
   * A rejection of the MsgApp whose previous index was `rejected`, with the follower's hint.
   * Stale rejections (reordered or duplicated messages) are recognised and ignored, else a
   * late rejection would rewind a follower that has since caught up.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // Probes go one at a time, so a genuine rejection is for next-1.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case "probe":
      case "replicate":
        return this.msgAppFlowPaused;
      case "snapshot":
        return true;
    }
  }
}
