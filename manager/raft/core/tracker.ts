import { ConfChangeError } from "./errors.js";
import { Progress } from "./progress.js";
import { majorityCommittedIndex, majorityVoteResult, type VoteResult } from "./quorum.js";
import type { ConfChange, ConfState, NodeId } from "./types.js";

/**
 * etcd's ProgressTracker restricted to simple (non-joint) configurations: the voters, the
 * learners, a Progress for each, and the votes of the current election.
 */
export class ProgressTracker {
  voters = new Set<NodeId>();
  learners = new Set<NodeId>();
  progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();

  constructor(
    readonly maxInflight: number,
    readonly maxInflightBytes: number,
  ) {}

  confState(): ConfState {
    return { voters: sortedIds(this.voters), learners: sortedIds(this.learners) };
  }

  isSingleton(): boolean {
    return this.voters.size === 1;
  }

  /** The highest index replicated on a majority of voters (learners never count). */
  committed(): number {
    return majorityCommittedIndex(this.voters, (id) => this.progress.get(id)?.match);
  }

  /** Visits every tracked node in id order, so message order is deterministic. */
  visit(f: (id: NodeId, pr: Progress) => void): void {
    for (const id of sortedIds(this.progress.keys())) f(id, this.progress.get(id) as Progress);
  }

  /** CheckQuorum: a majority of voters was heard from within the last election timeout. */
  quorumActive(): boolean {
    const votes = new Map<NodeId, boolean>();
    for (const [id, pr] of this.progress) {
      if (!pr.isLearner) votes.set(id, pr.recentActive);
    }
    return majorityVoteResult(this.voters, votes) === "won";
  }

  voterNodes(): NodeId[] {
    return sortedIds(this.voters);
  }

  learnerNodes(): NodeId[] {
    return sortedIds(this.learners);
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  /** The first answer of each node counts; duplicates cannot flip a vote. */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === undefined) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected, result: majorityVoteResult(this.voters, this.votes) };
  }

  /**
   * Applies one simple change (etcd confchange.Changer.Simple). Validated before mutating, so a
   * refused change leaves the configuration untouched. lastIndex seeds a new node's Progress.
   */
  applyChange(cc: ConfChange, lastIndex: number): void {
    this.checkChange(cc);
    const id = cc.nodeId;
    // etcd ignores changes for node 0: applications zero the id to turn a change into a no-op.
    if (id === 0) return;
    switch (cc.type) {
      case "add_node": {
        this.voters.add(id);
        this.learners.delete(id);
        const pr = this.progress.get(id);
        if (pr) pr.isLearner = false;
        else this.initProgress(id, false, lastIndex);
        break;
      }
      case "add_learner": {
        const pr = this.progress.get(id);
        if (pr?.isLearner) return;
        // Demoting a voter: it stops counting at once, like a removal followed by an add.
        this.voters.delete(id);
        this.learners.add(id);
        if (pr) pr.isLearner = true;
        else this.initProgress(id, true, lastIndex);
        break;
      }
      case "remove_node":
        this.voters.delete(id);
        this.learners.delete(id);
        this.progress.delete(id);
        break;
    }
  }

  /** Throws ConfChangeError if cc cannot be applied (removing or demoting the last voter). */
  checkChange(cc: ConfChange): void {
    if (cc.nodeId === 0) return;
    if (!Number.isSafeInteger(cc.nodeId) || cc.nodeId < 0) {
      throw new ConfChangeError(`invalid node id ${cc.nodeId}`);
    }
    if (
      (cc.type === "remove_node" || cc.type === "add_learner") &&
      this.voters.has(cc.nodeId) &&
      this.voters.size === 1
    ) {
      throw new ConfChangeError(`refusing to remove the last voter ${cc.nodeId}`);
    }
  }

  private initProgress(id: NodeId, isLearner: boolean, lastIndex: number): void {
    const pr = new Progress({
      // etcd: probe from the last index; the first probe finds where the new log ends.
      next: Math.max(lastIndex, 1),
      maxInflight: this.maxInflight,
      maxInflightBytes: this.maxInflightBytes,
      isLearner,
    });
    // A node just added has not had a chance to talk to us yet: counting it as inactive would
    // make CheckQuorum depose the leader right after the change.
    pr.recentActive = true;
    this.progress.set(id, pr);
  }

  /** Rebuilds the configuration from a ConfState (etcd confchange.Restore). */
  static restore(
    cs: ConfState,
    lastIndex: number,
    maxInflight: number,
    maxInflightBytes: number,
  ): ProgressTracker {
    const t = new ProgressTracker(maxInflight, maxInflightBytes);
    for (const id of cs.voters) t.applyChange({ type: "add_node", nodeId: id }, lastIndex);
    for (const id of cs.learners) {
      if (t.voters.has(id)) throw new ConfChangeError(`node ${id} is both voter and learner`);
      t.applyChange({ type: "add_learner", nodeId: id }, lastIndex);
    }
    return t;
  }
}

function sortedIds(ids: Iterable<NodeId>): NodeId[] {
  return [...ids].sort((a, b) => a - b);
}
