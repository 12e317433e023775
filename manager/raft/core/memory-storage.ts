import { CompactedError, UnavailableError, type RaftStorage } from "./storage.js";
import type { ConfState, Entry, HardState, Snapshot } from "./types.js";
import { EMPTY_BYTES, limitSize } from "./util.js";

export class SnapshotOutOfDateError extends Error {
  constructor(requested: number, current: number) {
    super(`snapshot at index ${requested} is not newer than the current one at ${current}`);
    this.name = "SnapshotOutOfDateError";
  }
}

function cloneConfState(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}

/**
 * etcd's MemoryStorage: the stable log in memory. ents[0] is a dummy entry carrying the
 * snapshot's index and term, so term(snapshotIndex) answers without special cases and
 * firstIndex = snapshotIndex + 1.
 */
export class MemoryStorage implements RaftStorage {
  private hard: HardState = { term: 0, vote: 0, commit: 0 };
  private snap: Snapshot;
  private ents: Entry[];

  /** confState seeds a new cluster's membership (etcd tests' withPeers) in the empty snapshot. */
  constructor(confState: ConfState = { voters: [], learners: [] }) {
    this.snap = { metadata: { index: 0, term: 0, confState: cloneConfState(confState) }, data: EMPTY_BYTES };
    this.ents = [{ term: 0, index: 0, type: "normal", data: EMPTY_BYTES }];
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hard }, confState: cloneConfState(this.snap.metadata.confState) };
  }

  setHardState(hs: HardState): void {
    this.hard = { ...hs };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.ents[0].index;
    if (lo <= offset) throw new CompactedError(lo);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1);
    // Only the dummy entry: nothing past the snapshot is stored yet.
    if (this.ents.length === 1) throw new UnavailableError(lo);
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxBytes);
  }

  term(i: number): number {
    const offset = this.ents[0].index;
    if (i < offset) throw new CompactedError(i);
    if (i - offset >= this.ents.length) throw new UnavailableError(i);
    return this.ents[i - offset].term;
  }

  lastIndex(): number {
    return this.ents[0].index + this.ents.length - 1;
  }

  firstIndex(): number {
    return this.ents[0].index + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the whole log by the snapshot (etcd: ApplySnapshot). An older snapshot is refused. */
  applySnapshot(s: Snapshot): void {
    const cur = this.snap.metadata.index;
    if (cur >= s.metadata.index) throw new SnapshotOutOfDateError(s.metadata.index, cur);
    this.snap = {
      metadata: { ...s.metadata, confState: cloneConfState(s.metadata.confState) },
      data: s.data,
    };
    this.ents = [{ term: s.metadata.term, index: s.metadata.index, type: "normal", data: EMPTY_BYTES }];
  }

  /** Records a snapshot of the applied state at index i (etcd: CreateSnapshot); the log is kept. */
  createSnapshot(i: number, confState: ConfState | undefined, data: Uint8Array): Snapshot {
    const cur = this.snap.metadata.index;
    if (i <= cur) throw new SnapshotOutOfDateError(i, cur);
    if (i > this.lastIndex()) throw new UnavailableError(i);
    const offset = this.ents[0].index;
    this.snap = {
      metadata: {
        index: i,
        term: this.ents[i - offset].term,
        confState: cloneConfState(confState ?? this.snap.metadata.confState),
      },
      data,
    };
    return this.snap;
  }

  /** Discards entries up to compactIndex (it becomes the new dummy). */
  compact(compactIndex: number): void {
    const offset = this.ents[0].index;
    if (compactIndex <= offset) throw new CompactedError(compactIndex);
    if (compactIndex > this.lastIndex()) throw new UnavailableError(compactIndex);
    const i = compactIndex - offset;
    const dummy: Entry = {
      term: this.ents[i].term,
      index: this.ents[i].index,
      type: "normal",
      data: EMPTY_BYTES,
    };
    this.ents = [dummy, ...this.ents.slice(i + 1)];
  }

  /**
   * Appends entries, first dropping any stored suffix they replace (a new leader overwrote it).
   * Entries already compacted are skipped, as in etcd: this is what lets a restart replay a WAL
   * whose entries lie partly behind the snapshot.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return;
    let ents = entries;
    if (first > entries[0].index) ents = entries.slice(first - entries[0].index);
    const offset = ents[0].index - this.ents[0].index;
    if (this.ents.length < offset) {
      throw new Error(`missing log entry [last: ${this.lastIndex()}, append at: ${ents[0].index}]`);
    }
    // Truncate in place then push one by one: the log can be long, and spreading it would copy it
    // (or overflow the argument limit) on every append.
    this.ents.length = offset;
    for (const e of ents) this.ents.push(e);
  }
}
