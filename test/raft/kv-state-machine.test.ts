import { describe, expect, it } from "vitest";
import { KvStateMachine } from "./kv/state-machine.js";
import { encodeKvCommand } from "./kv/commands.js";

describe("KvStateMachine", () => {
  it("applies put, get and cas in order", () => {
    const sm = new KvStateMachine();
    expect(
      sm.apply(1, encodeKvCommand({ client: "a", seq: 1, cmd: { op: "put", key: "x", value: "1" } })),
    ).toEqual({ ok: true, value: null });
    expect(
      sm.apply(
        2,
        encodeKvCommand({ client: "a", seq: 2, cmd: { op: "cas", key: "x", expected: "0", value: "2" } }),
      ),
    ).toEqual({ ok: false, value: "1" });
    expect(
      sm.apply(
        3,
        encodeKvCommand({ client: "a", seq: 3, cmd: { op: "cas", key: "x", expected: "1", value: "2" } }),
      ),
    ).toEqual({ ok: true, value: "1" });
    expect(sm.apply(4, encodeKvCommand({ client: "b", seq: 1, cmd: { op: "get", key: "x" } }))).toEqual({
      ok: true,
      value: "2",
    });
    expect(sm.read("x")).toBe("2");
  });

  it("applies a retried command once and an old index never", () => {
    const sm = new KvStateMachine();
    const put = encodeKvCommand({
      client: "a",
      seq: 1,
      cmd: { op: "cas", key: "n", expected: null, value: "1" },
    });
    expect(sm.apply(1, put)).toEqual({ ok: true, value: null });
    // the same command committed again after a client retry: same answer, no second effect
    expect(sm.apply(2, put)).toEqual({ ok: true, value: null });
    expect(
      sm.apply(2, encodeKvCommand({ client: "b", seq: 1, cmd: { op: "put", key: "n", value: "9" } })),
    ).toBeUndefined();
    expect(sm.read("n")).toBe("1");
    expect(sm.apply(3, new Uint8Array())).toBeUndefined();
    expect(sm.applied).toBe(3);
  });

  it("restores from a snapshot with data, sessions and applied index", () => {
    const sm = new KvStateMachine();
    sm.apply(1, encodeKvCommand({ client: "a", seq: 1, cmd: { op: "put", key: "k", value: "v" } }));
    const copy = new KvStateMachine();
    copy.restore(sm.snapshot());
    expect(copy.applied).toBe(1);
    expect(copy.read("k")).toBe("v");
    expect(
      copy.apply(2, encodeKvCommand({ client: "a", seq: 1, cmd: { op: "put", key: "k", value: "other" } })),
    ).toEqual({ ok: true, value: null });
    expect(copy.read("k")).toBe("v");
  });
});
