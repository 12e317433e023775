// Detach keys: Docker's term.ToBytes forms, and the escape proxy holding back and passing on
// the bytes of a partial sequence.
import { describe, expect, it } from "vitest";
import {
  DEFAULT_DETACH_KEYS,
  EscapeProxy,
  keysToBytes,
  parseDetachKeys,
} from "../../api/stream/detach-keys.js";

describe("detach keys", () => {
  it("parses term.ToBytes forms", () => {
    expect([...keysToBytes("ctrl-p,ctrl-q")]).toEqual([16, 17]);
    expect([...keysToBytes("ctrl-a,x")]).toEqual([1, 120]);
    expect([...keysToBytes("ctrl-@,ctrl-[,ctrl-\\,ctrl-_,DEL")]).toEqual([0, 27, 28, 31, 127]);
    expect(parseDetachKeys(undefined)).toEqual(DEFAULT_DETACH_KEYS);
    expect(parseDetachKeys("")).toEqual(DEFAULT_DETACH_KEYS);
  });

  it("refuses a bad value with a 400 naming it", () => {
    for (const bad of ["ctrl-", "ctrl-P", "foo", "ctrl-a,,x"]) {
      let err: unknown;
      try {
        parseDetachKeys(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ kind: "invalid" });
      expect((err as Error).message).toContain(`Invalid detach keys (${bad}) provided`);
    }
  });

  it("finds the sequence within and across chunks", () => {
    const p = new EscapeProxy(Buffer.from([16, 17]));
    expect(p.feed(Buffer.from("ab\x10\x11cd"))).toEqual({ pass: Buffer.from("ab"), detached: true });
    const q = new EscapeProxy(Buffer.from([16, 17]));
    expect(q.feed(Buffer.from("x\x10"))).toEqual({ pass: Buffer.from("x"), detached: false });
    expect(q.feed(Buffer.from("\x11"))).toEqual({ pass: Buffer.alloc(0), detached: true });
  });

  it("passes on the bytes of a broken sequence", () => {
    const p = new EscapeProxy(Buffer.from([16, 17]));
    expect(p.feed(Buffer.from("\x10"))).toEqual({ pass: Buffer.alloc(0), detached: false });
    expect(p.feed(Buffer.from("z"))).toEqual({ pass: Buffer.from("\x10z"), detached: false });
    expect(p.feed(Buffer.from("\x10\x10\x11"))).toEqual({ pass: Buffer.from("\x10"), detached: true });
    const q = new EscapeProxy(Buffer.from([16, 17]));
    q.feed(Buffer.from("a\x10"));
    expect(q.flush()).toEqual(Buffer.from("\x10"));
  });
});
