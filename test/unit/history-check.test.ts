// The fault test's checker on hand-made histories: ones a correct cluster could produce pass,
// and each kind of wrong answer (stale read, lost write, applied refused write, hang) fails
// with its own rule.
import { describe, expect, it } from "vitest";
import {
  checkHistory,
  classify,
  HistoryRecorder,
  OpFailed,
  refusalWindows,
  staleSummary,
  type Op,
  type ReadOp,
  type WriteOp,
} from "../helpers/history-check.js";

const ok = { kind: "ok" } as const;
const write = (
  client: string,
  key: string,
  value: string,
  invoke: number,
  complete: number | undefined,
  outcome: WriteOp["outcome"] = ok,
): WriteOp => ({ kind: "write", client, key, value, what: `set ${key}=${value}`, invoke, complete, outcome });
const read = (
  client: string,
  values: Record<string, string | null>,
  invoke: number,
  complete: number,
  extra: Partial<ReadOp> = {},
): ReadOp => ({
  kind: "read",
  client,
  what: "GET /services",
  scope: "all",
  values,
  invoke,
  complete,
  outcome: ok,
  ...extra,
});
const check = (ops: Op[]) => checkHistory(ops, { deadlineMs: 30_000, now: 100_000 });

describe("history checker", () => {
  it("passes a history a single copy could give: reads overlapping a write see either value", () => {
    const r = check([
      write("a", "web", "a1", 0, 10),
      read("b", { web: "a1" }, 11, 20),
      write("a", "web", "a2", 30, 40),
      read("b", { web: "a1" }, 31, 35), // overlaps a2: the old value is still allowed
      read("b", { web: "a2" }, 32, 36),
      read("b", { web: "a2" }, 41, 50),
      read("final", { web: "a2" }, 60, 61, { final: true }),
    ]);
    expect(r.violations).toEqual([]);
    expect(r.ok).toBe(true);
  });

  it("passes reads before a create that see nothing, and a refused write that never shows", () => {
    const r = check([
      read("b", {}, 0, 5),
      write("a", "web", "a1", 1, 10),
      read("b", { web: null }, 6, 9),
      write("a", "web", "a2", 20, 25, { kind: "refused", status: 409, message: "update out of sequence" }),
      read("b", { web: "a1" }, 30, 31),
    ]);
    expect(r.violations).toEqual([]);
  });

  it("lets an unknown outcome apply late or never", () => {
    const unknown = {
      kind: "unknown",
      status: 503,
      message: "outcome unknown: check before retrying",
    } as const;
    const applied = check([
      write("a", "web", "a1", 0, 10),
      write("a", "web", "a2", 20, 25, unknown),
      read("b", { web: "a1" }, 30, 31),
      read("b", { web: "a2" }, 40, 41),
    ]);
    expect(applied.violations).toEqual([]);
    const never = check([write("a", "web", "a1", 0, 10), write("a", "web", "a2", 20, 25, unknown)]);
    expect(never.violations).toEqual([]);
  });

  it("fails a stale read: one that began after a write was acknowledged and shows the value before it", () => {
    const r = check([
      write("a", "web", "a1", 0, 10),
      write("a", "web", "a2", 20, 30),
      read("b", { web: "a1" }, 31, 40, { via: "m2" }),
    ]);
    expect(r.ok).toBe(false);
    expect(r.counts["stale-read"]).toBe(1);
    expect(r.violations[0].message).toContain("web a1");
    expect(staleSummary(r)).toEqual([
      "b via m2: 1 stale, the oldest missing a write acknowledged 0.001s earlier",
    ]);
  });

  it("fails a read that misses acknowledged creates, once per read, with its oldest miss", () => {
    const r = check([write("a", "web", "a1", 0, 10), write("a", "db", "d1", 0, 5), read("b", {}, 12, 13)]);
    expect(r.counts["stale-read"]).toBe(1);
    expect(r.violations[0].ageMs).toBe(7);
    expect(r.violations[0].message).toContain("saw db absent");
  });

  it("fails a lost write: the final state lacks an acknowledged one", () => {
    const r = check([
      write("a", "web", "a1", 0, 10),
      write("a", "web", "a2", 20, 30),
      read("final", { web: "a1" }, 100, 101, { final: true }),
    ]);
    expect(r.counts["lost-write"]).toBe(1);
    expect(r.counts["stale-read"]).toBe(0);
  });

  it("fails a refused write that shows up (a 503 that said to try again, then applied)", () => {
    const r = check([
      write("a", "web", "a1", 0, 10),
      write("a", "web", "a2", 20, 30, {
        kind: "refused",
        status: 503,
        message: "the cluster could not commit the change: try again",
      }),
      read("b", { web: "a2" }, 40, 41),
      read("b", { web: "a2" }, 50, 51),
    ]);
    // Once per refused write, however many reads show it.
    expect(r.counts["refused-applied"]).toBe(1);
    expect(r.violations[0].message).toContain("2 read(s) saw it");
  });

  it("fails a hang: a write with no answer by its deadline, and one answered late", () => {
    const r = check([
      write("a", "web", "a1", 0, 30_001, { kind: "timeout" }),
      write("a", "db", "b1", 0, 45_000),
      { ...write("a", "api", "c1", 50_000, undefined), outcome: undefined },
    ]);
    expect(r.counts.hang).toBe(3);
  });

  it("fails a read of a value no write set, or of a write sent after the read ended", () => {
    const r = check([
      write("a", "web", "a1", 0, 10),
      read("b", { web: "zz" }, 12, 13),
      write("a", "db", "d1", 20, 30),
      read("b", { web: "a1", db: "d1" }, 5, 15),
    ]);
    expect(r.counts["impossible-read"]).toBe(2);
  });

  it("fails reads that order two overlapping writes both ways (only the full search sees it)", () => {
    const r = check([
      write("a", "web", "a1", 0, 100),
      write("c", "web", "c1", 0, 100),
      read("b", { web: "a1" }, 10, 20),
      read("b", { web: "c1" }, 30, 40),
      read("b", { web: "a1" }, 50, 60),
    ]);
    expect(r.counts["not-linearizable"]).toBe(1);
    expect(r.counts["stale-read"]).toBe(0);
  });

  it("classifies answers: 503 outcome unknown is unknown, other 503 and 4xx are refusals", () => {
    expect(classify(200, "").kind).toBe("ok");
    expect(classify(409, "out of sequence").kind).toBe("refused");
    expect(classify(503, "no leader: try again").kind).toBe("refused");
    expect(classify(503, "outcome unknown: check before retrying").kind).toBe("unknown");
    expect(classify(500, "boom").kind).toBe("unknown");
  });

  it("records outcomes and times the refusal window after a fault", async () => {
    const h = new HistoryRecorder();
    const w = (value: string, run: () => Promise<void>) =>
      h.record({ kind: "write", client: "a", key: "web", value, what: value }, 50, run);
    await w("v1", async () => undefined);
    const faultAt = h.now();
    await w("v2", () => Promise.reject(new OpFailed(503, "no leader")));
    await w("v3", (): Promise<void> => new Promise(() => undefined)); // never answers
    await w("v4", async () => undefined);
    expect(h.ops.map((op) => op.outcome?.kind)).toEqual(["ok", "refused", "timeout", "ok"]);
    const [win] = refusalWindows(h.ops, [{ name: "kill", at: faultAt }]);
    expect(win.failed).toBe(2);
    expect(win.refusedForMs).toBeGreaterThanOrEqual(50);
    expect(checkHistory(h.ops, { deadlineMs: 1_000, now: h.now() }).counts.hang).toBe(1);
  });
});
