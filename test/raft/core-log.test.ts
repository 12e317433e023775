// Ports of etcd-raft storage_test.go, log_test.go, log_unstable_test.go, tracker tests and
// quorum tests: the data structures under the state machine.
import { describe, expect, test } from "vitest";
import { Inflights } from "../../manager/raft/core/inflights.js";
import { Unstable } from "../../manager/raft/core/log-unstable.js";
import { MemoryStorage, SnapshotOutOfDateError } from "../../manager/raft/core/memory-storage.js";
import { Progress } from "../../manager/raft/core/progress.js";
import { majorityCommittedIndex, majorityVoteResult } from "../../manager/raft/core/quorum.js";
import { RaftLog } from "../../manager/raft/core/raft-log.js";
import { CompactedError, UnavailableError } from "../../manager/raft/core/storage.js";
import type { Entry, Snapshot } from "../../manager/raft/core/types.js";
import { ENTRY_OVERHEAD, NO_LIMIT } from "../../manager/raft/core/util.js";

type IT = [index: number, term: number];
const e = (index: number, term: number, data = ""): Entry => ({
  index,
  term,
  type: "normal",
  data: new TextEncoder().encode(data),
});
const es = (pairs: IT[]): Entry[] => pairs.map(([i, t]) => e(i, t));
const it = (xs: Entry[]): IT[] => xs.map((x) => [x.index, x.term]);
const snap = (index: number, term: number): Snapshot => ({
  metadata: { index, term, confState: { voters: [1, 2, 3], learners: [] } },
  data: new Uint8Array(0),
});

/** etcd's storage fixture: a snapshot at (3,3) followed by entries 4 and 5. */
function storage345(): MemoryStorage {
  const s = new MemoryStorage();
  s.applySnapshot(snap(3, 3));
  s.append(
    es([
      [4, 4],
      [5, 5],
    ]),
  );
  return s;
}

describe("MemoryStorage (storage_test.go)", () => {
  test("term", () => {
    const s = storage345();
    expect(() => s.term(2)).toThrow(CompactedError);
    expect(s.term(3)).toBe(3);
    expect(s.term(4)).toBe(4);
    expect(s.term(5)).toBe(5);
    expect(() => s.term(6)).toThrow(UnavailableError);
  });

  test("entries with size limits", () => {
    const s = storage345();
    s.append(es([[6, 6]]));
    const sz = ENTRY_OVERHEAD;
    expect(() => s.entries(2, 6, NO_LIMIT)).toThrow(CompactedError);
    expect(() => s.entries(3, 4, NO_LIMIT)).toThrow(CompactedError);
    expect(it(s.entries(4, 5, NO_LIMIT))).toEqual([[4, 4]]);
    expect(it(s.entries(4, 6, NO_LIMIT))).toEqual([
      [4, 4],
      [5, 5],
    ]);
    expect(it(s.entries(4, 7, NO_LIMIT))).toHaveLength(3);
    // Even a zero budget returns one entry: progress must always be possible.
    expect(it(s.entries(4, 7, 0))).toEqual([[4, 4]]);
    expect(it(s.entries(4, 7, 2 * sz))).toHaveLength(2);
    expect(it(s.entries(4, 7, 2 * sz + sz / 2))).toHaveLength(2);
    expect(it(s.entries(4, 7, 3 * sz))).toHaveLength(3);
    expect(() => s.entries(4, 8, NO_LIMIT)).toThrow(UnavailableError);
  });

  test("first and last index, compact", () => {
    const s = storage345();
    expect(s.firstIndex()).toBe(4);
    expect(s.lastIndex()).toBe(5);
    expect(() => s.compact(2)).toThrow(CompactedError);
    expect(() => s.compact(3)).toThrow(CompactedError);
    s.compact(4);
    expect(s.firstIndex()).toBe(5);
    expect(s.term(4)).toBe(4);
    expect(s.lastIndex()).toBe(5);
    s.compact(5);
    expect(s.firstIndex()).toBe(6);
    expect(s.lastIndex()).toBe(5);
    expect(() => s.compact(6)).toThrow();
  });

  test("createSnapshot", () => {
    const s = storage345();
    const cs = { voters: [1, 2, 3], learners: [] };
    const sn = s.createSnapshot(4, cs, new Uint8Array([1]));
    expect(sn.metadata).toEqual({ index: 4, term: 4, confState: cs });
    expect(s.snapshot().metadata.index).toBe(4);
    // The log is kept: compaction is a separate step.
    expect(s.firstIndex()).toBe(4);
    expect(() => s.createSnapshot(4, cs, new Uint8Array())).toThrow(SnapshotOutOfDateError);
    expect(() => s.createSnapshot(9, cs, new Uint8Array())).toThrow(UnavailableError);
  });

  test.each<[string, IT[], IT[]]>([
    [
      "identical",
      [
        [3, 3],
        [4, 4],
        [5, 5],
      ],
      [
        [3, 3],
        [4, 4],
        [5, 5],
      ],
    ],
    [
      "conflict truncates",
      [
        [3, 3],
        [4, 6],
        [5, 6],
      ],
      [
        [3, 3],
        [4, 6],
        [5, 6],
      ],
    ],
    [
      "extends",
      [
        [3, 3],
        [4, 4],
        [5, 5],
        [6, 5],
      ],
      [
        [3, 3],
        [4, 4],
        [5, 5],
        [6, 5],
      ],
    ],
    [
      "compacted part skipped, rest truncates",
      [
        [2, 3],
        [3, 3],
        [4, 5],
      ],
      [
        [3, 3],
        [4, 5],
      ],
    ],
    [
      "truncate incoming at 4",
      [[4, 5]],
      [
        [3, 3],
        [4, 5],
      ],
    ],
    [
      "direct append",
      [[6, 5]],
      [
        [3, 3],
        [4, 4],
        [5, 5],
        [6, 5],
      ],
    ],
  ])("append: %s", (_name, input, want) => {
    const s = storage345();
    s.append(es(input));
    const got: IT[] = [[3, s.term(3)]];
    for (let i = 4; i <= s.lastIndex(); i++) got.push([i, s.term(i)]);
    expect(got).toEqual(want);
  });

  test("append with a gap is refused", () => {
    const s = storage345();
    expect(() => s.append(es([[7, 5]]))).toThrow(/missing log entry/);
  });

  test("applySnapshot replaces the log; an older snapshot is refused", () => {
    const s = new MemoryStorage();
    s.applySnapshot(snap(4, 4));
    expect(s.firstIndex()).toBe(5);
    expect(s.lastIndex()).toBe(4);
    expect(s.term(4)).toBe(4);
    expect(() => s.applySnapshot(snap(3, 3))).toThrow(SnapshotOutOfDateError);
    expect(() => s.applySnapshot(snap(4, 4))).toThrow(SnapshotOutOfDateError);
  });
});

function logWith(pairs: IT[]): RaftLog {
  const s = new MemoryStorage();
  s.append(es(pairs));
  return new RaftLog(s);
}

describe("RaftLog (log_test.go)", () => {
  const prev: IT[] = [
    [1, 1],
    [2, 2],
    [3, 3],
  ];

  test.each<[IT[], number]>([
    [[], 0],
    [
      [
        [1, 1],
        [2, 2],
        [3, 3],
      ],
      0,
    ],
    [
      [
        [2, 2],
        [3, 3],
      ],
      0,
    ],
    [[[3, 3]], 0],
    [
      [
        [1, 1],
        [2, 2],
        [3, 3],
        [4, 4],
        [5, 4],
      ],
      4,
    ],
    [
      [
        [2, 2],
        [3, 3],
        [4, 4],
        [5, 4],
      ],
      4,
    ],
    [
      [
        [3, 3],
        [4, 4],
        [5, 4],
      ],
      4,
    ],
    [
      [
        [4, 4],
        [5, 4],
      ],
      4,
    ],
    [
      [
        [1, 4],
        [2, 4],
      ],
      1,
    ],
    [
      [
        [2, 1],
        [3, 4],
        [4, 4],
      ],
      2,
    ],
    [
      [
        [3, 1],
        [4, 2],
        [5, 4],
        [6, 4],
      ],
      3,
    ],
  ])("findConflict %j -> %i", (input, want) => {
    const l = new RaftLog(new MemoryStorage());
    l.append(es(prev));
    expect(l.findConflict(es(input))).toBe(want);
  });

  test.each<[number, number, IT]>([
    [10, 5, [10, 5]],
    [10, 4, [8, 3]],
    [10, 3, [8, 3]],
    [10, 2, [5, 2]],
    [10, 0, [0, 0]],
    [5, 1, [3, 1]],
    [12, 6, [12, 0]], // beyond the log: no term known
  ])("findConflictByTerm(%i, %i)", (index, term, want) => {
    const terms = [1, 1, 1, 2, 2, 3, 3, 3, 5, 5];
    const l = logWith(terms.map((t, i) => [i + 1, t]));
    const got = l.findConflictByTerm(index, term);
    expect([got.index, got.term]).toEqual(want);
  });

  test("findConflictByTerm stops at the compaction point", () => {
    const s = new MemoryStorage();
    s.applySnapshot(snap(3, 1));
    s.append(
      es([
        [4, 2],
        [5, 3],
      ]),
    );
    const l = new RaftLog(s);
    expect(l.findConflictByTerm(5, 0)).toEqual({ index: 2, term: 0 });
    expect(l.findConflictByTerm(5, 1)).toEqual({ index: 3, term: 1 });
  });

  test.each<[number, number, boolean]>([
    [2, 4, true],
    [3, 4, true],
    [4, 4, true],
    [2, 2, false],
    [3, 2, false],
    [4, 2, false],
    [2, 3, false],
    [3, 3, true],
    [4, 3, true],
  ])("isUpToDate(lastIndex %i, term %i) = %s", (index, term, want) => {
    const l = new RaftLog(new MemoryStorage());
    l.append(es(prev));
    expect(l.isUpToDate(index, term)).toBe(want);
  });

  test.each<[IT[], number, IT[], number]>([
    [
      [],
      2,
      [
        [1, 1],
        [2, 2],
      ],
      3,
    ],
    [
      [[3, 2]],
      3,
      [
        [1, 1],
        [2, 2],
        [3, 2],
      ],
      3,
    ],
    [[[1, 2]], 1, [[1, 2]], 1], // conflicts from index 1
    [
      [
        [2, 3],
        [3, 3],
      ],
      3,
      [
        [1, 1],
        [2, 3],
        [3, 3],
      ],
      2,
    ], // conflicts from index 2
  ])("append %j", (input, wIndex, wLog, wUnstable) => {
    const s = new MemoryStorage();
    s.append(
      es([
        [1, 1],
        [2, 2],
      ]),
    );
    const l = new RaftLog(s);
    expect(l.append(es(input))).toBe(wIndex);
    expect(it(l.entries(1, NO_LIMIT))).toEqual(wLog);
    expect(l.unstable.offset).toBe(wUnstable);
  });

  // [logTerm, index, committed, ents, wLast | undefined, wCommit, wThrows]
  test.each<[string, number, number, number, IT[], number | undefined, number, boolean]>([
    ["term mismatch", 2, 3, 3, [[4, 4]], undefined, 1, false],
    ["index out of bounds", 3, 4, 3, [[5, 4]], undefined, 1, false],
    ["match last, nothing new", 3, 3, 3, [], 3, 3, false],
    ["commit bounded by the message's last entry", 3, 3, 4, [], 3, 3, false],
    ["commit below", 3, 3, 2, [], 3, 2, false],
    ["commit never decreases", 3, 3, 0, [], 3, 1, false],
    ["conflict with a committed entry", 0, 0, 3, [[1, 4]], undefined, 1, true],
    ["append one", 3, 3, 4, [[4, 4]], 4, 4, false],
    ["append one, commit bounded", 3, 3, 5, [[4, 4]], 4, 4, false],
    [
      "append two",
      3,
      3,
      4,
      [
        [4, 4],
        [5, 4],
      ],
      5,
      4,
      false,
    ],
    ["conflict at 3", 2, 2, 3, [[3, 4]], 3, 3, false],
    ["conflict at 2", 1, 1, 3, [[2, 4]], 2, 2, false],
    ["conflict at committed 1", 0, 0, 3, [[1, 4]], undefined, 1, true],
    [
      "conflict at 2, two entries",
      1,
      1,
      3,
      [
        [2, 3],
        [3, 3],
      ],
      3,
      3,
      false,
    ],
  ])("maybeAppend: %s", (_n, logTerm, index, committed, input, wLast, wCommit, wThrows) => {
    const l = new RaftLog(new MemoryStorage());
    l.append(es(prev));
    l.commitTo(1);
    if (wThrows) {
      expect(() => l.maybeAppend(index, logTerm, committed, es(input))).toThrow(/conflicts with committed/);
      return;
    }
    const got = l.maybeAppend(index, logTerm, committed, es(input));
    expect(got).toBe(wLast);
    expect(l.committed).toBe(wCommit);
    if (got !== undefined && input.length > 0) {
      expect(it(l.slice(l.lastIndex() - input.length + 1, l.lastIndex() + 1, NO_LIMIT))).toEqual(input);
    }
  });

  test("a stale (shorter) append never truncates a longer matching log", () => {
    const l = new RaftLog(new MemoryStorage());
    l.append(
      es([
        [1, 1],
        [2, 1],
        [3, 1],
        [4, 1],
      ]),
    );
    // A reordered message carrying only entry 2 arrives after entries up to 4.
    expect(l.maybeAppend(1, 1, 4, es([[2, 1]]))).toBe(2);
    expect(l.lastIndex()).toBe(4);
    // Commit moves only to what this message vouches for, not to our last index.
    expect(l.committed).toBe(2);
  });

  test("commitTo beyond the last index throws (corruption, not a silent jump)", () => {
    const l = logWith(prev);
    l.commitTo(3);
    expect(l.committed).toBe(3);
    l.commitTo(2);
    expect(l.committed).toBe(3);
    expect(() => l.commitTo(4)).toThrow(/out of range/);
  });

  test("maybeCommit only commits an entry of the given term (Figure 8)", () => {
    const l = logWith([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    expect(l.maybeCommit(2, 3)).toBe(false);
    expect(l.committed).toBe(0);
    expect(l.maybeCommit(3, 3)).toBe(true);
    expect(l.committed).toBe(3);
  });

  test("nextCommittedEnts honours applied, the snapshot and the size budget", () => {
    const s = new MemoryStorage();
    s.applySnapshot(snap(3, 1));
    s.append(
      es([
        [4, 1],
        [5, 1],
      ]),
    );
    const l = new RaftLog(s, ENTRY_OVERHEAD);
    l.append(es([[6, 1]]));
    expect(l.committed).toBe(3);
    expect(l.applied).toBe(3);
    expect(l.hasNextCommittedEnts()).toBe(false);
    l.commitTo(6);
    expect(it(l.nextCommittedEnts())).toEqual([[4, 1]]); // one entry per budget
    l.appliedTo(4);
    expect(it(l.nextCommittedEnts())).toEqual([[5, 1]]);
    l.appliedTo(5);
    expect(it(l.nextCommittedEnts())).toEqual([[6, 1]]); // spans into unstable
    l.appliedTo(6);
    expect(l.hasNextCommittedEnts()).toBe(false);
    expect(() => l.appliedTo(7)).toThrow();
    expect(() => l.appliedTo(5)).toThrow();
  });

  test("term() range and restore", () => {
    const s = new MemoryStorage();
    s.applySnapshot(snap(100, 5));
    s.append(
      es([
        [101, 5],
        [102, 6],
      ]),
    );
    const l = new RaftLog(s);
    expect(() => l.term(98)).toThrow(CompactedError);
    expect(l.term(100)).toBe(5);
    expect(l.term(102)).toBe(6);
    expect(() => l.term(103)).toThrow(UnavailableError);
    expect(l.matchTerm(103, 0)).toBe(false);
    expect(l.termOrZero(99)).toBe(0);
    l.restore(snap(200, 9));
    expect(l.committed).toBe(200);
    expect(l.firstIndex()).toBe(201);
    expect(l.lastIndex()).toBe(200);
    expect(l.term(200)).toBe(9);
    expect(l.snapshot().metadata.index).toBe(200);
  });

  test("slice spans storage and unstable with a size limit", () => {
    const s = new MemoryStorage();
    s.append(
      es([
        [1, 1],
        [2, 1],
        [3, 1],
      ]),
    );
    const l = new RaftLog(s);
    l.append(
      es([
        [4, 2],
        [5, 2],
      ]),
    );
    expect(it(l.slice(2, 6, NO_LIMIT))).toEqual([
      [2, 1],
      [3, 1],
      [4, 2],
      [5, 2],
    ]);
    expect(l.slice(2, 6, 3 * ENTRY_OVERHEAD)).toHaveLength(3);
    expect(l.slice(2, 6, ENTRY_OVERHEAD)).toHaveLength(1);
    expect(() => l.slice(2, 7, NO_LIMIT)).toThrow(UnavailableError);
    s.compact(2);
    expect(() => l.slice(2, 4, NO_LIMIT)).toThrow(CompactedError);
  });
});

describe("unstable (log_unstable_test.go)", () => {
  test("stableTo ignores a term mismatch (entry replaced between Ready and advance)", () => {
    const u = new Unstable(5);
    u.truncateAndAppend(
      es([
        [5, 1],
        [6, 1],
      ]),
    );
    u.stableTo(6, 2);
    expect(u.offset).toBe(5);
    u.stableTo(5, 1);
    expect(u.offset).toBe(6);
    expect(it(u.entries)).toEqual([[6, 1]]);
    u.stableTo(4, 1); // below offset
    expect(u.offset).toBe(6);
  });

  test.each<[IT[], number, IT[]]>([
    [
      [
        [7, 1],
        [8, 1],
      ],
      5,
      [
        [5, 1],
        [6, 1],
        [7, 1],
        [8, 1],
      ],
    ], // append
    [
      [
        [5, 2],
        [6, 2],
      ],
      5,
      [
        [5, 2],
        [6, 2],
      ],
    ], // replace all
    [
      [
        [4, 2],
        [5, 2],
        [6, 2],
      ],
      4,
      [
        [4, 2],
        [5, 2],
        [6, 2],
      ],
    ], // below offset
    [
      [[6, 2]],
      5,
      [
        [5, 1],
        [6, 2],
      ],
    ], // truncate then append
  ])("truncateAndAppend %j", (input, wOffset, want) => {
    const u = new Unstable(5);
    u.truncateAndAppend(
      es([
        [5, 1],
        [6, 1],
      ]),
    );
    u.truncateAndAppend(es(input));
    expect(u.offset).toBe(wOffset);
    expect(it(u.entries)).toEqual(want);
  });

  test("snapshot terms", () => {
    const u = new Unstable(5);
    u.restore(snap(4, 1));
    expect(u.maybeTerm(4)).toBe(1);
    expect(u.maybeTerm(3)).toBeUndefined();
    expect(u.maybeFirstIndex()).toBe(5);
    expect(u.maybeLastIndex()).toBe(4);
    u.stableSnapTo(3);
    expect(u.snapshot).toBeDefined();
    u.stableSnapTo(4);
    expect(u.snapshot).toBeUndefined();
  });
});

describe("Progress and Inflights (tracker/*_test.go)", () => {
  const pr = (state: "probe" | "replicate" | "snapshot", match: number, next: number): Progress => {
    const p = new Progress({ next, match, maxInflight: 256, maxInflightBytes: 0 });
    p.state = state;
    return p;
  };

  test.each<[string, "probe" | "replicate" | "snapshot", number, number, number, number, boolean, number]>([
    ["replicate: stale rejection", "replicate", 5, 10, 5, 5, false, 10],
    ["replicate: stale rejection below match", "replicate", 5, 10, 4, 4, false, 10],
    ["replicate: real rejection resets next to match+1", "replicate", 5, 10, 9, 9, true, 6],
    ["probe: not next-1, stale", "probe", 0, 0, 0, 0, false, 0],
    ["probe: rejection decreases next", "probe", 0, 10, 5, 5, false, 10],
    ["probe: next-1 rejected, use hint", "probe", 0, 10, 9, 9, true, 9],
    ["probe: hint 0", "probe", 0, 2, 1, 1, true, 1],
    ["probe: hint smaller", "probe", 0, 10, 9, 2, true, 3],
    ["probe: hint never below match+1", "probe", 5, 10, 9, 2, true, 6],
  ])("maybeDecrTo %s", (_n, state, match, next, rejected, hint, w, wNext) => {
    const p = pr(state, match, next);
    expect(p.maybeDecrTo(rejected, hint)).toBe(w);
    expect(p.match).toBe(match);
    expect(p.next).toBe(wNext);
  });

  test("maybeUpdate", () => {
    const p = pr("probe", 3, 5);
    expect(p.maybeUpdate(2)).toBe(false);
    expect(p.maybeUpdate(3)).toBe(false);
    expect(p.maybeUpdate(4)).toBe(true);
    expect(p.next).toBe(5);
    expect(p.maybeUpdate(6)).toBe(true);
    expect([p.match, p.next]).toEqual([6, 7]);
  });

  test("becomeProbe from snapshot resumes after the pending snapshot", () => {
    const p = pr("replicate", 1, 5);
    p.becomeSnapshot(10);
    expect(p.isPaused()).toBe(true);
    p.becomeProbe();
    expect([p.state, p.next]).toEqual(["probe", 11]);
    const q = pr("replicate", 1, 5);
    q.becomeSnapshot(10);
    q.pendingSnapshot = 0; // failed snapshot
    q.becomeProbe();
    expect(q.next).toBe(2);
  });

  test("probe pauses after a non-empty append; replicate pauses when the window is full", () => {
    const p = pr("probe", 0, 1);
    p.sentEntries(0, 0);
    expect(p.isPaused()).toBe(false);
    p.sentEntries(1, 10);
    expect(p.isPaused()).toBe(true);
    const r = new Progress({ next: 1, maxInflight: 2, maxInflightBytes: 0 });
    r.becomeReplicate();
    r.sentEntries(3, 30);
    expect(r.next).toBe(4);
    expect(r.isPaused()).toBe(false);
    r.sentEntries(1, 10);
    expect(r.isPaused()).toBe(true);
    r.inflights.freeLE(3);
    expect(r.inflights.count()).toBe(1);
  });

  test("inflights are bounded by count and by bytes", () => {
    const f = new Inflights(10, 100);
    f.add(1, 40);
    f.add(2, 40);
    expect(f.full()).toBe(false);
    f.add(3, 30); // may overshoot the byte budget by one message
    expect(f.full()).toBe(true);
    expect(() => f.add(4, 1)).toThrow();
    f.freeLE(1);
    expect([f.count(), f.bytes(), f.full()]).toEqual([2, 70, false]);
    f.freeLE(0);
    expect(f.count()).toBe(2);
    f.freeLE(10);
    expect([f.count(), f.bytes()]).toEqual([0, 0]);
    const c = new Inflights(2, 0);
    c.add(1, 1000);
    expect(c.full()).toBe(false);
    c.add(2, 1000);
    expect(c.full()).toBe(true);
    expect(() => new Inflights(5, 0).add(0, 0)).not.toThrow();
    const d = new Inflights(5, 0);
    d.add(5, 0);
    expect(() => d.add(5, 0)).toThrow(/must grow/);
  });
});

describe("quorum", () => {
  test.each<[number[], number]>([
    [[1], 1],
    [[1, 2], 1],
    [[2, 1], 1],
    [[1, 1, 2], 1],
    [[2, 2, 1], 2],
    [[3, 1, 2], 2],
    [[5, 4, 3, 2, 1], 3],
    [[5, 4, 3, 2], 3],
    [[0, 0, 9], 0],
  ])("committed index of %j is %i", (matches, want) => {
    const ids = matches.map((_, i) => i + 1);
    expect(majorityCommittedIndex(ids, (id) => matches[id - 1])).toBe(want);
  });

  test("empty config commits nothing real", () => {
    expect(majorityCommittedIndex([], () => 0)).toBe(Number.POSITIVE_INFINITY);
    expect(majorityVoteResult([], new Map())).toBe("won");
  });

  test("vote results", () => {
    const v = (entries: [number, boolean][]) => new Map(entries);
    expect(majorityVoteResult([1, 2, 3], v([[1, true]]))).toBe("pending");
    expect(
      majorityVoteResult(
        [1, 2, 3],
        v([
          [1, true],
          [2, true],
        ]),
      ),
    ).toBe("won");
    expect(
      majorityVoteResult(
        [1, 2, 3],
        v([
          [1, true],
          [2, false],
        ]),
      ),
    ).toBe("pending");
    expect(
      majorityVoteResult(
        [1, 2, 3],
        v([
          [1, false],
          [2, false],
        ]),
      ),
    ).toBe("lost");
    expect(
      majorityVoteResult(
        [1, 2, 3, 4],
        v([
          [1, true],
          [2, true],
        ]),
      ),
    ).toBe("pending");
    expect(
      majorityVoteResult(
        [1, 2, 3, 4],
        v([
          [1, true],
          [2, true],
          [3, false],
          [4, false],
        ]),
      ),
    ).toBe("lost");
    // Votes from non-voters are ignored.
    expect(majorityVoteResult([1], v([[2, true]]))).toBe("pending");
  });
});
