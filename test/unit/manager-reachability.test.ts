// A manager is reachable while the leader keeps hearing from it, whatever the phase of Raft's
// quorum check: the status sync must not read a flag the check has just cleared.
import { describe, expect, it } from "vitest";
import { PeerContact, REACHABLE_WINDOW_MS } from "../../manager/reachability.js";

describe("manager reachability", () => {
  it("is reachable from its last message until the window passes, then unreachable", () => {
    const c = new PeerContact();
    expect(c.reachable(7, 1_000)).toBe(false);
    c.heard(7, 1_000);
    expect(c.reachable(7, 1_000 + REACHABLE_WINDOW_MS)).toBe(true);
    expect(c.reachable(7, 1_001 + REACHABLE_WINDOW_MS)).toBe(false);
    c.heard(7, 5_000);
    expect(c.reachable(7, 5_500)).toBe(true);
  });

  it("forgets a removed member", () => {
    const c = new PeerContact();
    c.heard(3, 1_000);
    c.forget(3);
    expect(c.reachable(3, 1_000)).toBe(false);
  });
});
