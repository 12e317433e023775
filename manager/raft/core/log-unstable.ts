import type { Entry, Snapshot } from "./types.js";

/**
 * etcd's unstable: entries (and at most one incoming snapshot) not yet persisted by the driver.
 * entries[i] has index offset + i. The stable part lives in RaftStorage.
 */
export class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];

  constructor(public offset: number) {}

  /** The first index after a pending snapshot, if there is one. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.metadata.index : undefined;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset].term;
  }

  /**
   * Entries up to (i, t) are now durable. The term check matters: between Ready and advance a
   * new leader may have replaced that index with an entry of another term, which is not durable.
   */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined) return;
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset);
      this.offset = i + 1;
    }
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.metadata.index === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const fromIndex = ents[0].index;
    if (fromIndex === this.offset + this.entries.length) {
      // Directly after the last unstable entry.
      for (const e of ents) this.entries.push(e);
    } else if (fromIndex <= this.offset) {
      // Replaces everything unstable; the stable log beyond fromIndex-1 is overwritten too, and
      // the driver's storage append truncates it when these entries are persisted.
      this.offset = fromIndex;
      this.entries = [...ents];
    } else {
      const kept = this.slice(this.offset, fromIndex);
      for (const e of ents) kept.push(e);
      this.entries = kept;
    }
  }

  slice(lo: number, hi: number): Entry[] {
    const upper = this.offset + this.entries.length;
    if (lo > hi || lo < this.offset || hi > upper) {
      throw new Error(`invalid unstable.slice [${lo}, ${hi}) out of [${this.offset}, ${upper}]`);
    }
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
