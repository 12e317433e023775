// A history of what clients asked the cluster and what it answered, and a checker for it.
//
// The model: each service is a register. A write (create or scale) sets it to a value that no
// other write uses (a token the client puts in the service's labels, with the replica count
// beside it), so a value seen names the one write that made it. A read (`GET /services`, or one
// service) observes the register of every key it covers; a service absent from the answer was
// observed absent.
//
// What the checker verifies (issue 13's fault test):
//  (a) no acknowledged write is lost: the final state, and every read that started after the
//      write was acknowledged, shows it or a later write;
//  (b) no write that was refused shows up, ever;
//  (c) every successful read is linearizable against the history;
//  (d) no operation went without an answer past its deadline.
import { checkLinearizable, SearchTooLargeError, type KvOp } from "../raft/lin/checker.js";

/** How an operation ended, as the client saw it. */
export type Outcome =
  | { kind: "ok" }
  /** The cluster said it did not (and will not) apply it: a 4xx, or a 503 other than "outcome unknown". */
  | { kind: "refused"; status: number; message: string }
  /** It may or may not apply: 503 "outcome unknown", another 5xx, or the connection broke after sending. */
  | { kind: "unknown"; status: number; message: string }
  /** No answer before the client's deadline. */
  | { kind: "timeout" };

interface OpBase {
  client: string;
  /** Where it was sent (a host name), for the summaries. */
  via?: string;
  /** ms on the history's clock, when the request was sent. */
  invoke: number;
  /** ms when the answer came (or the client gave up); undefined while it is in flight. */
  complete?: number;
  outcome?: Outcome;
}

export interface WriteOp extends OpBase {
  kind: "write";
  /** The register (service name). */
  key: string;
  /** The unique token this write sets. */
  value: string;
  /** For people: "create web replicas=2", "scale web→3". */
  what: string;
}

export interface ReadOp extends OpBase {
  kind: "read";
  what: string;
  /** The keys the read covers; "all" = every key (a list: a key missing from `values` was absent). */
  scope: "all" | string[];
  /** What it saw per key: the token, or null for absent. Set once it succeeded. */
  values?: Record<string, string | null>;
  /** The final state read after the cluster settled: a miss here is a lost write, not a stale read. */
  final?: boolean;
}

export type Op = WriteOp | ReadOp;

/** A Docker-API answer as the checker classifies it. */
export function classify(status: number, message: string): Outcome {
  if (status >= 200 && status < 300) return { kind: "ok" };
  if (status === 503 && /outcome unknown/i.test(message)) return { kind: "unknown", status, message };
  if ((status >= 400 && status < 500) || status === 503) return { kind: "refused", status, message };
  return { kind: "unknown", status, message };
}

/** Records operations on one monotonic clock (ms since the recorder was made). */
export class HistoryRecorder {
  readonly ops: Op[] = [];
  private readonly t0 = performance.now();

  now(): number {
    return performance.now() - this.t0;
  }

  /**
   * Run one operation with a deadline. `run` gets an AbortSignal that fires at the deadline and
   * returns the answer, or what it saw for a read; it throws `OpFailed` for a non-2xx answer.
   * Any other throw after sending is an unknown outcome; a throw from the signal is a timeout.
   */
  async record<T>(
    op: Omit<WriteOp, "invoke"> | Omit<ReadOp, "invoke">,
    deadlineMs: number,
    run: (signal: AbortSignal) => Promise<T>,
  ): Promise<{ op: Op; result?: T }> {
    const full = { ...op, invoke: this.now() } as Op;
    this.ops.push(full);
    const ctl = new AbortController();
    // The deadline holds even if `run` ignores the signal.
    const expired = new Promise<never>((_, reject) =>
      ctl.signal.addEventListener("abort", () => reject(new Error("deadline passed"))),
    );
    const timer = setTimeout(() => ctl.abort(), deadlineMs);
    try {
      const result = await Promise.race([run(ctl.signal), expired]);
      full.outcome = { kind: "ok" };
      return { op: full, result };
    } catch (e) {
      if (ctl.signal.aborted) full.outcome = { kind: "timeout" };
      else if (e instanceof OpFailed) full.outcome = classify(e.status, e.message);
      else if (e instanceof NotSent) full.outcome = { kind: "refused", status: 0, message: e.message };
      else full.outcome = { kind: "unknown", status: 0, message: e instanceof Error ? e.message : String(e) };
      return { op: full };
    } finally {
      clearTimeout(timer);
      full.complete = this.now();
    }
  }
}

/** A non-2xx answer. */
export class OpFailed extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The request never reached the server (connection refused, no socket): nothing can apply. */
export class NotSent extends Error {}

export type ViolationRule =
  "lost-write" | "refused-applied" | "stale-read" | "impossible-read" | "not-linearizable" | "hang";

export interface Violation {
  rule: ViolationRule;
  message: string;
  /** For a stale read or lost write: how long before the read began the missed write was acknowledged. */
  ageMs?: number;
  /** The operation that shows it. */
  op?: Op;
}

export interface CheckReport {
  ok: boolean;
  violations: Violation[];
  counts: Record<ViolationRule, number>;
  /** Operations by outcome, for the log. */
  outcomes: Record<string, number>;
}

const RULES: ViolationRule[] = [
  "lost-write",
  "refused-applied",
  "stale-read",
  "impossible-read",
  "not-linearizable",
  "hang",
];

const fmt = (t: number | undefined): string => (t === undefined ? "∞" : `${(t / 1000).toFixed(3)}s`);
const describeOp = (op: Op): string =>
  `${op.client} ${op.what} [${fmt(op.invoke)}, ${fmt(op.complete)}] ${op.outcome?.kind ?? "in flight"}`;

/** A write's effective completion: Infinity when it may still apply at any later time. */
const ackedAt = (w: WriteOp): number => (w.outcome?.kind === "ok" ? (w.complete ?? Infinity) : Infinity);

/**
 * Check a finished history. `deadlineMs`: how long an operation may go without an answer; `now`:
 * the history clock's time at the check (for operations still in flight).
 */
export function checkHistory(ops: readonly Op[], o: { deadlineMs: number; now: number }): CheckReport {
  const violations: Violation[] = [];
  const add = (rule: ViolationRule, message: string, extra: Omit<Violation, "rule" | "message"> = {}): void =>
    void violations.push({ rule, message, ...extra });
  const outcomes: Record<string, number> = {};
  for (const op of ops) {
    const k = `${op.kind} ${op.outcome?.kind ?? "in flight"}`;
    outcomes[k] = (outcomes[k] ?? 0) + 1;
  }

  // (d) An answer within the deadline, for every operation.
  for (const op of ops) {
    const took = (op.complete ?? o.now) - op.invoke;
    if (op.outcome?.kind === "timeout" || (op.outcome === undefined && took > o.deadlineMs))
      add("hang", `no answer within ${o.deadlineMs / 1000}s: ${describeOp(op)}`);
    else if (op.outcome !== undefined && took > o.deadlineMs)
      add("hang", `answered only after ${fmt(took)} (deadline ${o.deadlineMs / 1000}s): ${describeOp(op)}`);
  }

  const writes = ops.filter((op): op is WriteOp => op.kind === "write");
  const byValue = new Map<string, WriteOp>();
  for (const w of writes) {
    if (byValue.has(w.value))
      throw new RangeError(`two writes set the token ${w.value}: tokens must be unique`);
    byValue.set(w.value, w);
  }
  const writesTo = new Map<string, WriteOp[]>();
  for (const w of writes) {
    const list = writesTo.get(w.key) ?? [];
    list.push(w);
    writesTo.set(w.key, list);
  }
  const keys = [...writesTo.keys()];
  const reads = ops.filter(
    (op): op is ReadOp & { values: Record<string, string | null> } =>
      op.kind === "read" && op.outcome?.kind === "ok" && op.values !== undefined,
  );
  const observed = (r: ReadOp & { values: Record<string, string | null> }, key: string): string | null =>
    r.values[key] ?? null;
  const covers = (r: ReadOp, key: string): boolean => r.scope === "all" || r.scope.includes(key);

  // (a), (b), (c) read by read. The argument, for a read r of key k that saw value v:
  //  - every operation takes effect at one instant between its invoke and its complete (an
  //    operation that never completed, or whose outcome is unknown, at any instant after its
  //    invoke, or never);
  //  - v is a token only one write w sets, so r's instant must fall after w's and before that of
  //    any write that replaced w;
  //  - so if w was refused, r saw what never happened (b); if w was invoked after r completed,
  //    r saw the future; and if some write w2 to k was acknowledged before r was invoked and
  //    was invoked after w completed (so w2 took effect after w and before r), then at r's
  //    instant the register held w2 or something later, never v: r is stale (and if r is the
  //    final state, w2 is lost). Absent (null) is the state before every write.
  // Each rule only needs times the client saw, so a flagged read is a real violation; the rule
  // does not catch every non-linearizable history (two reads ordering overlapping writes two
  // ways), which is what the full search below is for.
  const flaggedKeys = new Set<string>();
  const refusedSeen = new Map<WriteOp, { first: ReadOp; reads: number }>();
  for (const r of reads) {
    let stale: { message: string; ageMs: number } | undefined;
    for (const key of keys) {
      if (!covers(r, key)) continue;
      const v = observed(r, key);
      const w = v === null ? undefined : byValue.get(v);
      if (v !== null && w?.key !== key) {
        add("impossible-read", `${describeOp(r)} saw ${key}=${v}, which no write to ${key} set`);
        flaggedKeys.add(key);
        continue;
      }
      if (w && w.outcome?.kind === "refused") {
        // One violation per refused write, however many reads show it.
        const seen = refusedSeen.get(w);
        if (seen) seen.reads++;
        else refusedSeen.set(w, { first: r, reads: 1 });
        flaggedKeys.add(key);
        continue;
      }
      if (w && w.invoke > (r.complete ?? Infinity)) {
        add(
          "impossible-read",
          `${describeOp(r)} saw ${key}=${v} before its write was sent: ${describeOp(w)}`,
        );
        flaggedKeys.add(key);
        continue;
      }
      // A refused write never takes effect and an unknown one may take effect at any time, so
      // nothing is "definitely after" either: only an acknowledged w has an end.
      const wDone = w ? ackedAt(w) : -Infinity;
      const missed = (writesTo.get(key) ?? []).filter(
        (w2) => w2 !== w && w2.outcome?.kind === "ok" && ackedAt(w2) < r.invoke && w2.invoke > wDone,
      );
      if (missed.length > 0) {
        // The first write the read missed: how long the value it showed had been superseded.
        const newer = missed.reduce((a, b) => (ackedAt(b) < ackedAt(a) ? b : a));
        const seen = v === null ? "absent" : `${v} (${w ? describeOp(w) : "?"})`;
        const age = r.invoke - ackedAt(newer);
        const message = `${describeOp(r)} saw ${key} ${seen} though ${describeOp(newer)} was acknowledged ${fmt(age)} before it began`;
        // A lost write per key; a stale read once per read, with its oldest miss.
        if (r.final) add("lost-write", message, { ageMs: age, op: r });
        else if (!stale || age > stale.ageMs) stale = { message, ageMs: age };
        flaggedKeys.add(key);
      }
    }
    if (stale) add("stale-read", stale.message, { ageMs: stale.ageMs, op: r });
  }
  for (const [w, { first, reads: n }] of refusedSeen) {
    const o = w.outcome as { status: number; message: string };
    add(
      "refused-applied",
      `${describeOp(w)} was refused (${o.status} ${o.message}) but ${n} read(s) saw it, first ${describeOp(first)}`,
      { op: w },
    );
  }

  // (c) in full: the history of every key not already flagged must have a linearization
  // (Wing & Gong's search, test/raft/lin/checker.ts). Refused writes are left out (they never
  // apply); writes of unknown outcome may apply at any time after their invoke.
  for (const key of keys) {
    if (flaggedKeys.has(key)) continue;
    const kv: KvOp[] = [];
    for (const w of writesTo.get(key) ?? []) {
      if (w.outcome?.kind === "refused") continue;
      kv.push({ kind: "put", key, value: w.value, call: w.invoke, return: ackedAt(w) });
    }
    for (const r of reads) {
      if (!covers(r, key)) continue;
      const v = observed(r, key);
      kv.push({ kind: "get", key, call: r.invoke, return: r.complete ?? Infinity, result: v ?? undefined });
    }
    try {
      const res = checkLinearizable(kv);
      if (!res.ok)
        add("not-linearizable", `${key}: ${res.minimalCounterexample ?? "no linearization of its history"}`);
    } catch (e) {
      if (!(e instanceof SearchTooLargeError)) throw e;
      add("not-linearizable", `${key}: undecided (${e.message})`);
    }
  }

  const counts = Object.fromEntries(RULES.map((r) => [r, 0])) as Record<ViolationRule, number>;
  for (const v of violations) counts[v.rule]++;
  return { ok: violations.length === 0, violations, counts, outcomes };
}

/** A fault, on the history's clock. */
export interface FaultMark {
  name: string;
  at: number;
  /** When the fault was undone (restart, heal), if it was. */
  until?: number;
}

export interface RefusalWindow {
  fault: string;
  client: string;
  /** Writes after the fault (to the next fault) that were not acknowledged. */
  failed: number;
  /** From the fault to the first failed write's invoke, ms. */
  firstFailureAfterMs?: number;
  /** From the first failed write's invoke to the completion of the first acknowledged write after it, ms. */
  refusedForMs?: number;
  /** The first failed write never had an acknowledged one after it (before the next fault). */
  neverRecovered?: boolean;
  /** The longest any write in the window took to be answered, ms. */
  slowestMs: number;
}

/** Per fault and client: how long writes were refused (first failure → first success after). */
export function refusalWindows(ops: readonly Op[], faults: readonly FaultMark[]): RefusalWindow[] {
  const out: RefusalWindow[] = [];
  const clients = [...new Set(ops.map((op) => op.client))].sort();
  faults.forEach((f, i) => {
    const end = faults[i + 1]?.at ?? Infinity;
    for (const client of clients) {
      const ws = ops
        .filter((op): op is WriteOp => op.kind === "write" && op.client === client)
        .filter((w) => w.invoke >= f.at && w.invoke < end)
        .sort((a, b) => a.invoke - b.invoke);
      if (ws.length === 0) continue;
      const failedOps = ws.filter((w) => w.outcome?.kind !== "ok");
      const first = failedOps[0];
      const slowestMs = Math.max(...ws.map((w) => (w.complete ?? Infinity) - w.invoke));
      const window: RefusalWindow = { fault: f.name, client, failed: failedOps.length, slowestMs };
      if (first) {
        window.firstFailureAfterMs = first.invoke - f.at;
        const next = ws.find((w) => w.invoke > first.invoke && w.outcome?.kind === "ok");
        if (next?.complete !== undefined) window.refusedForMs = next.complete - first.invoke;
        else window.neverRecovered = true;
      }
      out.push(window);
    }
  });
  return out;
}

/** Not-acknowledged answers by status and message, most frequent first, for the test's log. */
export function failureSummary(ops: readonly Op[]): string[] {
  const seen = new Map<string, number>();
  for (const op of ops) {
    const o = op.outcome;
    if (!o || o.kind === "ok") continue;
    const k = `${op.kind} ${o.kind}${o.kind === "timeout" ? "" : ` ${o.status} ${o.message}`}`;
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  return [...seen].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n} × ${k}`);
}

/** Stale reads per place they were sent to: how many, and the oldest. */
export function staleSummary(report: CheckReport): string[] {
  const by = new Map<string, { n: number; maxAgeMs: number }>();
  for (const v of report.violations) {
    if (v.rule !== "stale-read" || !v.op) continue;
    const k = `${v.op.client} via ${v.op.via ?? "?"}`;
    const e = by.get(k) ?? { n: 0, maxAgeMs: 0 };
    e.n++;
    e.maxAgeMs = Math.max(e.maxAgeMs, v.ageMs ?? 0);
    by.set(k, e);
  }
  return [...by].map(
    ([k, e]) => `${k}: ${e.n} stale, the oldest missing a write acknowledged ${fmt(e.maxAgeMs)} earlier`,
  );
}

/** One line per window, for the test's log. */
export function formatWindows(ws: readonly RefusalWindow[]): string {
  return ws
    .map((w) => {
      const head = `${w.fault} / ${w.client}: slowest write answer ${fmt(w.slowestMs)};`;
      if (w.failed === 0) return `${head} no write refused`;
      const from = `first refusal ${fmt(w.firstFailureAfterMs)} after the fault`;
      const span = w.neverRecovered
        ? "no write succeeded after it before the next fault"
        : `writes refused for ${fmt(w.refusedForMs)}`;
      return `${head} ${w.failed} write(s) not acknowledged; ${from}; ${span}`;
    })
    .join("\n");
}
