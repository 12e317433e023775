import { describe, expect, it } from "vitest";
import { SearchTooLargeError, checkLinearizable, type KvOp, type Value } from "./lin/checker.js";
import { seededRand } from "./sim/rand.js";

const P = Infinity; // never returned

const put = (key: string, value: Value, call: number, ret: number): KvOp => ({
  kind: "put",
  key,
  value,
  call,
  return: ret,
});
const get = (key: string, result: Value | undefined, call: number, ret: number): KvOp => ({
  kind: "get",
  key,
  result,
  call,
  return: ret,
});
const cas = (
  key: string,
  expected: Value | undefined,
  value: Value,
  ok: boolean | undefined,
  call: number,
  ret: number,
): KvOp => ({ kind: "cas", key, expected, value, ok, call, return: ret });

const ok = (h: KvOp[]): boolean => checkLinearizable(h).ok;

describe("checkLinearizable: linearizable histories", () => {
  it("accepts the empty history and sequential ones", () => {
    expect(ok([])).toBe(true);
    expect(ok([get("x", undefined, 0, 1)])).toBe(true);
    expect(ok([put("x", "a", 0, 1), get("x", "a", 2, 3), put("x", "b", 4, 5), get("x", "b", 6, 7)])).toBe(
      true,
    );
    expect(
      ok([
        put("x", 1, 0, 1),
        put("y", 2, 0, 1),
        get("x", 1, 2, 3),
        get("y", 2, 2, 3),
        get("z", undefined, 2, 3),
      ]),
    ).toBe(true);
  });

  it("lets overlapping ops take effect in either order, whichever the reads require", () => {
    // Two overlapping writes; later reads agree on the one that went last.
    for (const winner of ["a", "b"]) {
      expect(
        ok([put("x", "a", 0, 10), put("x", "b", 1, 9), get("x", winner, 11, 12), get("x", winner, 13, 14)]),
      ).toBe(true);
    }
    // A read during a write may see the old or the new value...
    expect(ok([put("x", "a", 0, 1), put("x", "b", 2, 10), get("x", "a", 3, 4)])).toBe(true);
    expect(ok([put("x", "a", 0, 1), put("x", "b", 2, 10), get("x", "b", 3, 4)])).toBe(true);
    // ...and a read may see a write that has not returned yet, even one called after the read.
    expect(ok([get("x", "a", 0, 5), put("x", "a", 3, 20)])).toBe(true);
    // Reads that flip between two concurrent writes, each overlapping both: a, then b.
    expect(
      ok([
        put("x", "a", 0, 100),
        put("x", "b", 0, 100),
        get("x", "a", 10, 20),
        get("x", "b", 30, 40),
        get("x", "b", 50, 60),
      ]),
    ).toBe(true);
  });

  it("treats equal call and return times as concurrent", () => {
    expect(ok([put("x", "a", 0, 5), get("x", undefined, 5, 6)])).toBe(true);
  });

  it("checks cas: success, failure, and create-if-absent", () => {
    expect(ok([put("x", "a", 0, 1), cas("x", "a", "b", true, 2, 3), get("x", "b", 4, 5)])).toBe(true);
    expect(ok([put("x", "a", 0, 1), cas("x", "z", "b", false, 2, 3), get("x", "a", 4, 5)])).toBe(true);
    expect(
      ok([cas("x", undefined, "a", true, 0, 1), cas("x", undefined, "b", false, 2, 3), get("x", "a", 4, 5)]),
    ).toBe(true);
    // Two concurrent cas from the same value: exactly one wins.
    expect(
      ok([put("x", 0, 0, 1), cas("x", 0, 1, true, 2, 10), cas("x", 0, 2, false, 3, 9), get("x", 1, 11, 12)]),
    ).toBe(true);
  });

  it("accepts a pending put that took effect, and one that did not", () => {
    expect(ok([put("x", "a", 0, P), get("x", "a", 5, 6)])).toBe(true);
    expect(ok([put("x", "a", 0, P), get("x", undefined, 5, 6), get("x", undefined, 7, 8)])).toBe(true);
    // It may take effect long after its call, even after a later write.
    expect(ok([put("x", "a", 0, P), put("x", "b", 2, 3), get("x", "b", 4, 5), get("x", "a", 6, 7)])).toBe(
      true,
    );
  });

  it("accepts a pending cas that took effect or did not, and ignores pending reads", () => {
    expect(ok([put("x", "a", 0, 1), cas("x", "a", "b", undefined, 2, P), get("x", "b", 3, 4)])).toBe(true);
    expect(ok([put("x", "a", 0, 1), cas("x", "a", "b", undefined, 2, P), get("x", "a", 3, 4)])).toBe(true);
    expect(ok([put("x", "a", 0, 1), get("x", "whatever", 2, P), get("x", "a", 3, 4)])).toBe(true);
  });
});

describe("checkLinearizable: non-linearizable histories", () => {
  it("catches a stale read", () => {
    const r = checkLinearizable([put("x", 1, 0, 1), put("x", 2, 2, 3), get("x", 1, 4, 5)]);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.key).toBe("x");
    expect(r.minimalCounterexample).toContain("#2");
  });

  it("catches a lost write and a read of a value never written", () => {
    expect(ok([put("x", 1, 0, 1), get("x", undefined, 2, 3)])).toBe(false);
    expect(ok([put("x", 1, 0, 1), get("x", 7, 2, 3)])).toBe(false);
  });

  it("catches reads going back in time between two concurrent writes", () => {
    expect(
      ok([put("x", "a", 0, 10), put("x", "b", 0, 10), get("x", "b", 11, 12), get("x", "a", 13, 14)]),
    ).toBe(false);
    expect(
      ok([
        put("x", "a", 0, 100),
        put("x", "b", 0, 100),
        get("x", "a", 10, 20),
        get("x", "b", 30, 40),
        get("x", "a", 50, 60),
      ]),
    ).toBe(false);
  });

  it("catches cas anomalies", () => {
    // Two cas from the same value both succeed.
    expect(ok([put("x", 0, 0, 1), cas("x", 0, 1, true, 2, 10), cas("x", 0, 2, true, 3, 9)])).toBe(false);
    expect(ok([put("x", 0, 0, 1), cas("x", 0, 1, true, 2, 3), cas("x", 0, 2, true, 4, 5)])).toBe(false);
    // A cas that should have matched reports failure.
    expect(ok([put("x", "a", 0, 1), cas("x", "a", "b", false, 2, 3)])).toBe(false);
    // A successful cas whose write then vanishes.
    expect(ok([put("x", "a", 0, 1), cas("x", "a", "b", true, 2, 3), get("x", "a", 4, 5)])).toBe(false);
    // Create-if-absent succeeding on a key that exists.
    expect(ok([put("x", "a", 0, 1), cas("x", undefined, "b", true, 2, 3)])).toBe(false);
  });

  it("rejects a pending write that was seen and then unseen", () => {
    expect(ok([put("x", "a", 0, P), get("x", "a", 5, 6), get("x", undefined, 7, 8)])).toBe(false);
    expect(
      ok([
        put("x", "a", 0, 1),
        cas("x", "a", "b", undefined, 2, P),
        get("x", "b", 3, 4),
        get("x", "a", 5, 6),
      ]),
    ).toBe(false);
  });

  it("names the failing key when other keys are fine", () => {
    const r = checkLinearizable([
      put("a", 1, 0, 1),
      get("a", 1, 2, 3),
      put("b", 1, 0, 1),
      put("b", 2, 2, 3),
      get("b", 1, 4, 5),
      get("c", undefined, 0, 1),
    ]);
    expect(r).toMatchObject({ ok: false, key: "b" });
  });

  it("explains the failure with the shortest failing prefix and the longest partial linearization", () => {
    const h = [
      put("x", "a", 0, 1), //         #0
      get("x", "a", 2, 3), //         #1
      put("x", "b", 4, 10), //        #2
      get("x", "b", 5, 6), //         #3: saw b before it returned: fine
      get("x", "a", 7, 8), //         #4: a again after b was seen: the first violation
      put("x", "c", 20, 21), //       #5: later ops must not hide the cause
      get("x", "c", 22, 23), //       #6
    ];
    const r = checkLinearizable(h);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const text = r.minimalCounterexample ?? "";
    expect(text).toMatch(/up to time 8, when #4 returned/);
    expect(text).toContain('#4 [7, 8] get() -> "a"');
    expect(text).not.toContain("#6");
    expect(checkLinearizable(h, { explain: false })).toEqual({ ok: false, key: "x" });
  });

  it("refuses malformed histories", () => {
    expect(() => checkLinearizable([put("x", 1, 5, 4)])).toThrow(RangeError);
    expect(() => checkLinearizable([cas("x", 1, 2, undefined, 0, 1)])).toThrow(/needs ok/);
    expect(() => checkLinearizable([put("x", 1, P, P)])).toThrow(/finite/);
  });
});

// ---- against a brute-force oracle on small random histories ----

/** Tries every subset of pending ops and every order that respects real time. */
function bruteForce(h: KvOp[]): boolean {
  const byKey = new Map<string, KvOp[]>();
  for (const op of h) byKey.set(op.key, [...(byKey.get(op.key) ?? []), op]);
  for (const ops of byKey.values()) {
    const required = ops.filter((o) => o.return !== P);
    const optional = ops.filter((o) => o.return === P);
    let found = false;
    for (let mask = 0; mask < 1 << optional.length && !found; mask++) {
      const chosen = [...required, ...optional.filter((_, i) => mask & (1 << i))];
      found = permute(chosen, [], undefined);
    }
    if (!found) return false;
  }
  return true;

  function permute(left: KvOp[], done: KvOp[], state: Value | undefined): boolean {
    if (left.length === 0) return true;
    for (let i = 0; i < left.length; i++) {
      const op = left[i];
      // op may go next only if no other remaining op returned before op was called.
      if (left.some((o, j) => j !== i && o.return < op.call)) continue;
      let next = state;
      if (op.kind === "put") next = op.value;
      else if (op.kind === "get") {
        if (op.return !== P && op.result !== state) continue;
      } else {
        const m = state === op.expected;
        if (op.return !== P && op.ok !== m) continue;
        if (m) next = op.value;
      }
      if (permute([...left.slice(0, i), ...left.slice(i + 1)], [...done, op], next)) return true;
    }
    return false;
  }
}

function randomSmallHistory(r: () => number): KvOp[] {
  const n = 1 + Math.floor(r() * 7);
  const keys = ["x", "y"];
  const vals = [1, 2, 3];
  const h: KvOp[] = [];
  for (let i = 0; i < n; i++) {
    const key = keys[Math.floor(r() * (r() < 0.8 ? 1 : 2))];
    const call = Math.floor(r() * 10);
    const ret = r() < 0.15 ? P : call + Math.floor(r() * 6);
    const v = vals[Math.floor(r() * vals.length)];
    const maybe = (): Value | undefined => (r() < 0.25 ? undefined : vals[Math.floor(r() * vals.length)]);
    const k = r();
    if (k < 0.35) h.push(put(key, v, call, ret));
    else if (k < 0.7) h.push(get(key, maybe(), call, ret));
    else h.push(cas(key, maybe(), v, ret === P ? undefined : r() < 0.5, call, ret));
  }
  return h;
}

describe("checkLinearizable against brute force", () => {
  it("agrees on 20,000 small random histories", () => {
    const r = seededRand(42);
    let yes = 0;
    for (let i = 0; i < 20000; i++) {
      const h = randomSmallHistory(r);
      const expected = bruteForce(h);
      const got = checkLinearizable(h, { explain: false }).ok;
      if (got !== expected)
        throw new Error(`disagreement (brute force: ${expected}) on ${JSON.stringify(h)}`);
      if (expected) yes++;
    }
    // Both outcomes must be well represented for the comparison to mean anything.
    expect(yes).toBeGreaterThan(2000);
    expect(yes).toBeLessThan(18000);
  });
});

// ---- scale ----

/**
 * A history from a real single-copy store: each op takes effect at a random point inside its
 * interval, so the history is linearizable by construction.
 */
function generated(seed: number, ops: number, keys: number, clients: number, pendingRate: number): KvOp[] {
  const r = seededRand(seed);
  const store = new Map<string, Value>();
  const events: Array<{ at: number; op: KvOp; effect: boolean }> = [];
  const clock = new Array<number>(clients).fill(0);
  let written = 0;
  for (let i = 0; i < ops; i++) {
    const c = i % clients;
    const call = clock[c] + r() * 3;
    const ret = call + 1 + r() * 20;
    const key = `k${Math.floor(r() * keys)}`;
    const k = r();
    const op: KvOp =
      k < 0.4
        ? put(key, `v${written++}`, call, ret)
        : k < 0.75
          ? get(key, undefined, call, ret)
          : cas(key, undefined, `v${written++}`, false, call, ret);
    const pendingOp = r() < pendingRate;
    events.push({ at: call + r() * (ret - call), op, effect: !pendingOp || r() < 0.5 });
    if (pendingOp) op.return = P;
    clock[c] = ret;
  }
  // Apply in linearization order to fill in what each op observed.
  for (const { op, effect } of [...events].sort((a, b) => a.at - b.at)) {
    if (!effect) continue;
    const cur = store.get(op.key);
    if (op.kind === "put") store.set(op.key, op.value);
    else if (op.kind === "get") op.result = cur;
    else {
      // Aim half the cas ops at the current value so that some succeed.
      if (r() < 0.5) op.expected = cur;
      op.ok = cur === op.expected;
      if (op.ok) store.set(op.key, op.value);
    }
  }
  for (const { op, effect } of events) {
    // A client whose request never returned learned nothing; one that was dropped never applied.
    if (!effect && op.return !== P) throw new Error("generator bug");
    if (op.return === P && op.kind === "cas") op.ok = undefined;
  }
  return events.map((e) => e.op);
}

describe("checkLinearizable at scale", () => {
  it("checks a 2,000-op history over 5 keys with 10 concurrent clients, and finds an injected anomaly", () => {
    const h = generated(7, 2000, 5, 10, 0.005);
    expect(h.length).toBe(2000);
    expect(checkLinearizable(h)).toEqual({ ok: true });

    // A read of a value nobody wrote, late in the history.
    const bad = h.map((op) => ({ ...op }));
    const victim = bad.findLastIndex((op) => op.kind === "get" && op.return !== P);
    (bad[victim] as Extract<KvOp, { kind: "get" }>).result = "never-written";
    const r = checkLinearizable(bad);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.key).toBe(bad[victim].key);
    expect(r.minimalCounterexample).toContain(`#${victim}`);
  });

  it("gives up with a clear error rather than running out of memory", () => {
    const h = generated(3, 400, 1, 10, 0);
    expect(() => checkLinearizable(h, { maxConfigurations: 50 })).toThrow(SearchTooLargeError);
    expect(checkLinearizable(h)).toEqual({ ok: true });
  });

  it("checks several more generated histories", () => {
    for (let seed = 100; seed < 105; seed++) {
      expect(checkLinearizable(generated(seed, 1000, 3, 10, 0.01))).toEqual({ ok: true });
    }
  });
});
