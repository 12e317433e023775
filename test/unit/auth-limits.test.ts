// The cluster port's small defences on their own: failed-join token buckets per source, the
// once-per-interval log gate, peer strings to source addresses, and the constant-time secret
// compare (equal only for the same non-empty secret, whatever the lengths).
import { describe, expect, it } from "vitest";
import { OncePer, sourceOf, TokenBuckets } from "../../manager/auth/rate-limit.js";
import { sameSecret } from "../../manager/auth/secret-compare.js";

const clockAt = (t: { now: number }) => ({ now: () => t.now });

describe("failed-join buckets", () => {
  it("give a source its burst, then one try per refill period; other sources are untouched", () => {
    const t = { now: 0 };
    const b = new TokenBuckets({ burst: 3, refillMs: 1000 }, clockAt(t));
    expect([b.take("a"), b.take("a"), b.take("a"), b.take("a")]).toEqual([true, true, true, false]);
    expect(b.has("a")).toBe(false);
    expect(b.waitMs("a")).toBe(1000);
    expect(b.has("b")).toBe(true);
    t.now = 999;
    expect(b.has("a")).toBe(false);
    t.now = 2000;
    expect(b.take("a")).toBe(true);
    t.now = 1_000_000;
    // Refilled to the burst, not beyond it.
    expect([b.take("a"), b.take("a"), b.take("a"), b.take("a")]).toEqual([true, true, true, false]);
  });

  it("forget the oldest sources beyond their bound, so a flood of addresses cannot grow them", () => {
    const t = { now: 0 };
    const b = new TokenBuckets({ burst: 1, refillMs: 1_000_000, maxSources: 2 }, clockAt(t));
    b.take("a");
    b.take("b");
    b.take("c");
    expect(b.has("a")).toBe(true);
    expect(b.has("c")).toBe(false);
  });
});

describe("OncePer", () => {
  it("says yes once per interval per key and counts what it held back", () => {
    const t = { now: 0 };
    const gate = new OncePer(1000, clockAt(t));
    expect(gate.due("x")).toEqual({ due: true, suppressed: 0 });
    expect(gate.due("x").due).toBe(false);
    expect(gate.due("x").due).toBe(false);
    expect(gate.due("y").due).toBe(true);
    t.now = 1000;
    expect(gate.due("x")).toEqual({ due: true, suppressed: 2 });
  });
});

describe("sourceOf", () => {
  it("keeps the address of a gRPC peer string", () => {
    expect(sourceOf("10.0.0.5:43210")).toBe("10.0.0.5");
    expect(sourceOf("ipv4:10.0.0.5:43210")).toBe("10.0.0.5");
    expect(sourceOf("[::1]:43210")).toBe("::1");
    expect(sourceOf("::ffff:10.0.0.5:43210")).toBe("::ffff:10.0.0.5");
  });
});

describe("sameSecret", () => {
  it("is true only for the same non-empty secret", () => {
    const token = "SWMTKN-1-aaaa-bbbb";
    expect(sameSecret(token, token)).toBe(true);
    expect(sameSecret(`${token}x`, token)).toBe(false);
    expect(sameSecret(token.slice(0, -1), token)).toBe(false);
    expect(sameSecret("", "")).toBe(false);
    expect(sameSecret("x", "")).toBe(false);
  });
});
