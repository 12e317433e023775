import { CompactedError, UnavailableError, type RaftStorage } from "./storage.js";
import { Unstable } from "./log-unstable.js";
import type { Entry, Snapshot } from "./types.js";
import { NO_LIMIT, limitSize } from "./util.js";

/**
 * etcd's raftLog: the stable log (RaftStorage) followed by the unstable tail, plus the commit
 * and applied cursors. Invariant: applied <= committed <= lastIndex().
 */
export class RaftLog {
  readonly unstable: Unstable;
  committed: number;
  applied: number;

  constructor(
    readonly storage: RaftStorage,
    /** Byte budget of the committed entries handed out in one Ready. */
    readonly maxNextEntsSize: number = NO_LIMIT,
  ) {
    const firstIndex = storage.firstIndex();
    const lastIndex = storage.lastIndex();
    this.unstable = new Unstable(lastIndex + 1);
    // Everything up to the snapshot is committed and applied by definition.
    this.committed = firstIndex - 1;
    this.applied = firstIndex - 1;
  }

  /**
   * Handles the entries of an AppendEntries whose previous entry is (index, logTerm). Returns the
   * index of the last entry the message vouches for, or undefined if the log does not match.
   * Entries already present with the same term are left alone and only a real conflict
   * truncates (Raft paper §5.3): a stale, reordered or duplicated message therefore never cuts
   * entries appended by a later one. The commit index moves only up to the last entry this
   * message covers, not to our lastIndex, for the same reason.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNewIndex = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new Error(`entry ${ci} conflicts with committed entry [committed(${this.committed})]`);
      }
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNewIndex));
    return lastNewIndex;
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0].index - 1;
    if (after < this.committed) {
      throw new Error(`after(${after}) is out of range [committed(${this.committed})]`);
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * The index of the first entry of ents whose term differs from ours (or that we lack), or 0
   * if all match. ents must be contiguous.
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest (index, term) at or below `index` whose term is <= `term`: the fast
   * rejection-hint search of etcd (one probe per term instead of per entry). Term 0 if the
   * search ran off the available log.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (;;) {
      let t: number;
      try {
        t = this.term(index);
      } catch {
        return { index, term: 0 };
      }
      if (t <= term) return { index, term: t };
      index--;
    }
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  /** Committed entries not yet applied, at most maxNextEntsSize bytes (but at least one). */
  nextCommittedEnts(): Entry[] {
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 > off) return this.slice(off, this.committed + 1, this.maxNextEntsSize);
    return [];
  }

  hasNextCommittedEnts(): boolean {
    const off = Math.max(this.applied + 1, this.firstIndex());
    return this.committed + 1 > off;
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  commitTo(toCommit: number): void {
    // The commit index never decreases.
    if (this.committed < toCommit) {
      if (this.lastIndex() < toCommit) {
        throw new Error(
          `tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]. Was the raft log corrupted, truncated, or lost?`,
        );
      }
      this.committed = toCommit;
    }
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (this.committed < i || i < this.applied) {
      throw new Error(
        `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`,
      );
    }
    this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /**
   * Term of entry i. Valid range: [firstIndex-1 (the snapshot), lastIndex]. Throws CompactedError
   * below it and UnavailableError above it.
   */
  term(i: number): number {
    const dummyIndex = this.firstIndex() - 1;
    if (i < dummyIndex) throw new CompactedError(i);
    if (i > this.lastIndex()) throw new UnavailableError(i);
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    return this.storage.term(i);
  }

  /**
   * term(i), or undefined when i is outside the log. The bounds are checked first so that the
   * hot path (matching entries of an append just past our last index) throws nothing.
   */
  private maybeTerm(i: number): number | undefined {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return undefined;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (e instanceof CompactedError || e instanceof UnavailableError) return undefined;
      throw e;
    }
  }

  /** term(i), or 0 when i is outside the log (no real entry has term 0 except index 0). */
  termOrZero(i: number): number {
    return this.maybeTerm(i) ?? 0;
  }

  entries(i: number, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxSize);
  }

  allEntries(): Entry[] {
    return this.entries(this.firstIndex(), NO_LIMIT);
  }

  /** §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  /** True only if entry i exists here with term t (an index outside the log never matches). */
  matchTerm(i: number, t: number): boolean {
    return this.maybeTerm(i) === t;
  }

  /**
   * Commits up to maxIndex only if that entry is of the given (the leader's current) term: the
   * Figure 8 rule of the Raft paper (§5.4.2). Earlier-term entries are committed indirectly.
   */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /** Entries [lo, hi), at most maxSize bytes but at least one, from storage then unstable. */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    this.mustCheckOutOfBounds(lo, hi);
    if (lo === hi) return [];
    let ents: Entry[] = [];
    const offset = this.unstable.offset;
    if (lo < offset) {
      const storedHi = Math.min(hi, offset);
      const stored = this.storage.entries(lo, storedHi, maxSize);
      // Storage hit the size limit: the unstable part is not wanted.
      if (stored.length < storedHi - lo) return stored;
      ents = stored;
    }
    if (hi > offset) {
      const u = this.unstable.slice(Math.max(lo, offset), hi);
      ents = ents.length > 0 ? ents.concat(u) : u;
    }
    return limitSize(ents, maxSize);
  }

  private mustCheckOutOfBounds(lo: number, hi: number): void {
    if (lo > hi) throw new Error(`invalid slice ${lo} > ${hi}`);
    const fi = this.firstIndex();
    if (lo < fi) throw new CompactedError(lo);
    const length = this.lastIndex() + 1 - fi;
    if (hi > fi + length) throw new UnavailableError(hi - 1);
  }
}
