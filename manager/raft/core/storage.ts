import type { ConfState, Entry, HardState, Snapshot } from "./types.js";

/**
 * The core's read-only view of the stable log (etcd-raft's Storage). The driver fills it from
 * the WAL at start-up and appends to it after each Ready is persisted. MemoryStorage implements it.
 */
export interface RaftStorage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries [lo, hi), at most maxBytes in total but always at least one. Throws CompactedError / UnavailableError. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of entry i; i may be the snapshot's index. Throws CompactedError / UnavailableError. */
  term(i: number): number;
  /** Index of the first entry still in the log (snapshot index + 1). */
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

export class CompactedError extends Error {
  constructor(index: number) {
    super(`raft log entry ${index} has been compacted into a snapshot`);
    this.name = "CompactedError";
  }
}

export class UnavailableError extends Error {
  constructor(index: number) {
    super(`raft log entry ${index} is not available yet`);
    this.name = "UnavailableError";
  }
}
