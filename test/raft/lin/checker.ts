// A linearizability checker for key-value histories recorded by the Raft tests.
//
// The search is Wing & Gong's, as improved by Lowe and implemented in Porcupine
// (github.com/anishathalye/porcupine, checker.go): walk the history's call and return events in
// time order, try to linearize each op whose call has been seen, backtrack when a return is
// reached whose op is not yet linearized, and memoize (set of linearized ops, model state) so a
// configuration reached along two paths is explored once. Every op touches one key, so the
// history is checked key by key (P-compositionality), which keeps each search small.
//
// An op that never returned (timed out, connection lost) has `return: Infinity`. It may have
// taken effect at any time after its call, or never: the search may place it anywhere after its
// call, and a history whose completed ops are all placed is accepted without placing the rest
// (placing them last would change nothing anybody observed).

export type Value = string | number;

interface OpTimes {
  /** When the client sent the request. */
  call: number;
  /** When the client got the answer; Infinity when it never did (the outcome is unknown). */
  return: number;
  /** For messages only. */
  client?: number;
}

export interface PutOp extends OpTimes {
  kind: "put";
  key: string;
  value: Value;
}

export interface GetOp extends OpTimes {
  kind: "get";
  key: string;
  /** What the read returned; undefined = the key was absent. Ignored when the op never returned. */
  result?: Value;
}

export interface CasOp extends OpTimes {
  kind: "cas";
  key: string;
  /** undefined = succeed only if the key is absent. */
  expected: Value | undefined;
  value: Value;
  /** Whether the swap happened. Required unless the op never returned. */
  ok?: boolean;
}

export type KvOp = PutOp | GetOp | CasOp;

export type CheckResult = { ok: true } | { ok: false; key: string; minimalCounterexample?: string };

export interface CheckOptions {
  /** Describe a failing key in `minimalCounterexample`. Default true. */
  explain?: boolean;
  /**
   * Give up (throw SearchTooLargeError) after exploring this many configurations of one key.
   * Default 4 million, a few seconds and well inside a JavaScript Set's limit.
   */
  maxConfigurations?: number;
}

/** The search for one key outgrew its budget: the history is neither proven nor refuted. */
export class SearchTooLargeError extends Error {
  constructor(
    readonly key: string,
    readonly ops: number,
    readonly configurations: number,
  ) {
    super(
      `linearizability check of key ${JSON.stringify(key)} (${ops} ops) gave up after ${configurations} ` +
        `configurations; spread the history over more keys, or shorten it`,
    );
    this.name = "SearchTooLargeError";
  }
}

/**
 * The value written by a pending op whose value nobody observed. Such writes are interchangeable
 * (see prepare()), so they all write this one token, which equals no real value.
 */
const FRESH: unique symbol = Symbol("unobserved value");
type State = Value | undefined | typeof FRESH;

/**
 * Checks a history of put/get/cas ops against a single-copy key-value store whose keys all start
 * absent. On failure, names the first key (in order of first appearance) that has no
 * linearization.
 */
export function checkLinearizable(history: readonly KvOp[], options: CheckOptions = {}): CheckResult {
  const byKey = new Map<string, number[]>();
  history.forEach((op, i) => {
    validate(op, i);
    let ids = byKey.get(op.key);
    if (!ids) byKey.set(op.key, (ids = []));
    ids.push(i);
  });
  for (const [key, ids] of byKey) {
    const ops = ids.map((i) => ({ op: history[i], id: i }));
    const limit = options.maxConfigurations ?? 4_000_000;
    const r = search(ops, limit);
    if (r.gaveUp) throw new SearchTooLargeError(key, ops.length, limit);
    if (r.ok) continue;
    const result: CheckResult = { ok: false, key };
    if ((options.explain ?? true) && r.stuck) result.minimalCounterexample = explain(key, ops, r.stuck);
    return result;
  }
  return { ok: true };
}

function validate(op: KvOp, i: number): void {
  const where = `history[${i}] (${op.kind} ${JSON.stringify(op.key)})`;
  if (!Number.isFinite(op.call)) throw new RangeError(`${where}: call time must be a finite number`);
  if (Number.isNaN(op.return) || op.return < op.call)
    throw new RangeError(`${where}: returns before its call`);
  if (op.kind === "cas" && op.return !== Infinity && typeof op.ok !== "boolean") {
    throw new RangeError(`${where}: a cas that returned needs ok: boolean`);
  }
}

const pending = (op: KvOp): boolean => op.return === Infinity;

/** The model: may `op` take effect in `state`, and what state follows. */
function step(state: State, op: KvOp, write: State): { ok: boolean; next: State } {
  switch (op.kind) {
    case "put":
      return { ok: true, next: write };
    case "get":
      return { ok: pending(op) || state === op.result, next: state };
    case "cas": {
      const matches = state === op.expected;
      if (pending(op)) return { ok: true, next: matches ? write : state };
      return op.ok ? { ok: matches, next: write } : { ok: !matches, next: state };
    }
  }
}

function stateKey(s: State): string {
  if (s === FRESH) return "*";
  return s === undefined ? "-" : typeof s === "number" ? `n${s}` : `s${s}`;
}

interface Tagged {
  op: KvOp;
  /** Index in the caller's history, for messages. */
  id: number;
}

interface SearchResult {
  ok: boolean;
  gaveUp?: boolean;
  /**
   * On failure: the return time no configuration got past (the history up to it is already not
   * linearizable, and every shorter prefix is), and the linearization that got there, with the
   * state after each op.
   */
  stuck?: { at: number; ids: number[]; states: State[] };
}

interface Prepared {
  t: Tagged;
  /** What the op writes if it takes effect. */
  write: State;
  /** An interchangeable pending op called earlier, which must be linearized first; -1 if none. */
  before: number;
}

/**
 * Pending ops are what makes the search expensive: one that never returned stays concurrent with
 * everything after its call, so each one can double the configurations to explore. Three
 * reductions keep the answer exact:
 * - A read that never returned observed nothing and changed nothing: dropped.
 * - A pending write (put, or cas that may have applied) of a value nobody observed (no completed
 *   read returned it and no cas expected it) can only matter by making some failed cas fail. With
 *   no failed cas ending after its call it cannot matter at all: dropped. (In a linearization that
 *   contains it, the ops between it and the next write can only be other pending ops, which can
 *   be left out too.)
 * - Otherwise it writes FRESH, and such writes with the same effect (all puts; cas with the same
 *   expected value) are interchangeable, so they are linearized in call order only: any
 *   linearization using a later one where an earlier one is still unplaced can swap them.
 */
function prepare(input: readonly Tagged[]): Prepared[] {
  const observed = new Set<string>();
  let lastFailedCas = -Infinity;
  for (const { op } of input) {
    if (op.kind === "get" && !pending(op)) observed.add(stateKey(op.result));
    if (op.kind === "cas") {
      observed.add(stateKey(op.expected));
      if (!pending(op) && op.ok === false) lastFailedCas = Math.max(lastFailedCas, op.return);
    }
  }
  const out: Prepared[] = [];
  const lastOfGroup = new Map<string, number>();
  const byCall = [...input].sort((a, b) => a.op.call - b.op.call || a.id - b.id);
  for (const t of byCall) {
    const op = t.op;
    if (op.kind === "get") {
      if (!pending(op)) out.push({ t, write: undefined, before: -1 });
      continue;
    }
    if (!pending(op) || observed.has(stateKey(op.value))) {
      out.push({ t, write: op.value, before: -1 });
      continue;
    }
    if (lastFailedCas < op.call) continue;
    const group = op.kind === "put" ? "put" : `cas ${stateKey(op.expected)}`;
    out.push({ t, write: FRESH, before: lastOfGroup.get(group) ?? -1 });
    lastOfGroup.set(group, out.length - 1);
  }
  return out;
}

/** Deterministic, so a history checks the same way every run. */
function zobristTable(n: number): Uint32Array {
  const t = new Uint32Array(3 * n);
  let x = 0x9e3779b9;
  for (let i = 0; i < t.length; i++) {
    // xorshift32
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    t[i] = x >>> 0;
  }
  return t;
}

/** Wing–Gong–Lowe search over the ops of one key. */
function search(input: readonly Tagged[], maxConfigurations: number): SearchResult {
  const prepared = prepare(input);
  const ops = prepared.map((p) => p.t);
  const n = ops.length;
  const mustPlace = ops.filter((t) => !pending(t.op)).length;
  if (mustPlace === 0) return { ok: true };

  // Events: node 2i is op i's call, 2i+1 its return; node 2n is the list head.
  const events: number[] = [];
  for (let i = 0; i < n; i++) events.push(2 * i, 2 * i + 1);
  const time = (e: number): number => (e % 2 === 0 ? ops[e >> 1].op.call : ops[e >> 1].op.return);
  events.sort((a, b) => {
    const ta = time(a);
    const tb = time(b);
    if (ta !== tb) return ta < tb ? -1 : 1;
    // At equal times a call goes first: the ops count as concurrent, the lenient reading.
    if (a % 2 !== b % 2) return a % 2 === 0 ? -1 : 1;
    return a - b;
  });
  const head = 2 * n;
  const next = new Int32Array(2 * n + 1).fill(-1);
  const prev = new Int32Array(2 * n + 1).fill(-1);
  let last = head;
  for (const e of events) {
    next[last] = e;
    prev[e] = last;
    last = e;
  }

  // Removes op i's call and return from the list (it has been linearized), and puts them back.
  const lift = (i: number): void => {
    for (const e of [2 * i, 2 * i + 1]) {
      next[prev[e]] = next[e];
      if (next[e] !== -1) prev[next[e]] = prev[e];
    }
  };
  const unlift = (i: number): void => {
    for (const e of [2 * i + 1, 2 * i]) {
      next[prev[e]] = e;
      if (next[e] !== -1) prev[next[e]] = e;
    }
  };

  // The memo holds a 96-bit Zobrist hash of the linearized set instead of the set itself (as
  // Porcupine does), which makes a step O(1) instead of O(n/32) and the memo small. A collision
  // could wrongly prune a branch; at 96 bits that takes around 2^48 memo entries.
  const z = zobristTable(n);
  let h0 = 0;
  let h1 = 0;
  let h2 = 0;
  const toggle = (i: number): void => {
    h0 ^= z[3 * i];
    h1 ^= z[3 * i + 1];
    h2 ^= z[3 * i + 2];
  };
  const seen = new Set<string>();
  const done = new Uint8Array(n);

  const stack: Array<{ op: number; state: State }> = [];
  let state: State = undefined;
  let placed = 0;
  let stuck: SearchResult["stuck"];

  let e = next[head];
  for (;;) {
    if (placed === mustPlace) return { ok: true };
    if (e !== -1 && e % 2 === 0) {
      const i = e >> 1;
      const t = ops[i];
      const p = prepared[i];
      const r = step(state, t.op, p.write);
      if (r.ok && (p.before < 0 || done[p.before] === 1)) {
        toggle(i);
        const key = `${h0},${h1},${h2},${stateKey(r.next)}`;
        if (!seen.has(key)) {
          if (seen.size >= maxConfigurations) return { ok: false, gaveUp: true };
          seen.add(key);
          stack.push({ op: i, state });
          done[i] = 1;
          state = r.next;
          if (!pending(t.op)) placed++;
          lift(i);
          e = next[head];
          continue;
        }
        toggle(i);
      }
      e = next[e];
    } else {
      // The first return still in the list, and no op before it can be linearized next: back up.
      // (e is never -1 here: an unplaced completed op's return is still in the list.)
      const at = time(e);
      if (!stuck || at > stuck.at) {
        const states = stack.slice(1).map((f) => f.state);
        if (stack.length > 0) states.push(state);
        stuck = { at, ids: stack.map((f) => ops[f.op].id), states };
      }
      const top = stack.pop();
      if (!top) return { ok: false, stuck };
      const i = top.op;
      state = top.state;
      done[i] = 0;
      toggle(i);
      if (!pending(ops[i].op)) placed--;
      unlift(i);
      e = next[2 * i];
    }
  }
}

/**
 * Describes why the key's history is not linearizable: the shortest prefix that already is not
 * (cut where the search got stuck), the ops around that point, and a linearization that reached it.
 */
function explain(key: string, ops: readonly Tagged[], stuck: NonNullable<SearchResult["stuck"]>): string {
  const cut = stuck.at;
  const failing = ops.filter((x) => x.op.call <= cut);
  const culprits = failing.filter((x) => x.op.return === cut && !stuck.ids.includes(x.id));
  const callFrom = Math.min(...culprits.map((x) => x.op.call));
  const byId = new Map(ops.map((x) => [x.id, x.op]));

  const lines: string[] = [];
  lines.push(
    `key ${JSON.stringify(key)}: no linearization exists for its ${failing.length} ops up to time ${cut}, when ` +
      `${culprits.map((x) => `#${x.id}`).join(", ")} returned (every shorter prefix has one).`,
  );
  lines.push(`ops live at that point (#id [call, return] op; return ∞ = unknown outcome):`);
  const around = failing.filter((x) => x.op.return >= callFrom).sort((a, b) => a.op.call - b.op.call);
  const shown = around.slice(-30);
  if (shown.length < around.length) lines.push(`  ... ${around.length - shown.length} earlier ops not shown`);
  for (const x of shown) lines.push(`  #${x.id} [${x.op.call}, ${fmtTime(x.op.return)}] ${describe(x.op)}`);
  const tail = 12;
  const start = Math.max(0, stuck.ids.length - tail);
  lines.push(
    `a linearization of ${stuck.ids.length} ops that got that far` +
      (start > 0 ? ` (last ${tail} shown)` : "") +
      `, with the state after each:`,
  );
  for (let k = start; k < stuck.ids.length; k++) {
    const op = byId.get(stuck.ids[k]);
    if (op) lines.push(`  #${stuck.ids[k]} ${describe(op)} => ${fmtValue(stuck.states[k])}`);
  }
  const end = stuck.states.length > 0 ? stuck.states[stuck.states.length - 1] : undefined;
  lines.push(`  then none of the ops above can take effect in state ${fmtValue(end)}.`);
  return lines.join("\n");
}

function fmtTime(t: number): string {
  return t === Infinity ? "∞" : String(t);
}

function fmtValue(v: State): string {
  if (v === FRESH) return "(a value written by an op that never returned)";
  return v === undefined ? "(absent)" : JSON.stringify(v);
}

function describe(op: KvOp): string {
  const done = !pending(op);
  switch (op.kind) {
    case "put":
      return `put(${fmtValue(op.value)})`;
    case "get":
      return `get() -> ${done ? fmtValue(op.result) : "?"}`;
    case "cas":
      return `cas(${fmtValue(op.expected)} -> ${fmtValue(op.value)}) -> ${done ? String(op.ok) : "?"}`;
  }
}
