// What a proposer is told when its proposal does not apply: "dropped" only when raft certainly
// did not take it (no leader known), "outcome unknown" when it may still commit (it timed out
// after the leader appended it, or the leadership changed while it waited). A caller that
// retries on "dropped" never applies a change twice; one told "unknown" must check first.
import { describe, expect, it } from "vitest";
import { ProposalOutcomeUnknownError, RaftNode, type StateMachine } from "../../manager/raft/index.js";
import { ProposalDroppedError } from "../../manager/raft/core/errors.js";
import type { Message } from "../../manager/raft/core/types.js";
import { FakeDisk } from "./helpers/fake-disk.js";

class Counter implements StateMachine {
  applied: string[] = [];
  apply(_index: number, command: Uint8Array): unknown {
    if (command.length > 0) this.applied.push(Buffer.from(command).toString());
    return this.applied.length;
  }
  snapshot(): Uint8Array {
    return Buffer.from(JSON.stringify(this.applied));
  }
  restore(data: Uint8Array): void {
    this.applied = JSON.parse(Buffer.from(data).toString()) as string[];
  }
}

async function pair() {
  let linked = true;
  const nodes = new Map<number, RaftNode>();
  const send = (msgs: Message[]) => {
    if (!linked) return;
    for (const m of msgs) queueMicrotask(() => nodes.get(m.to)?.step(m));
  };
  const sms = [new Counter(), new Counter()];
  for (const id of [1, 2])
    nodes.set(
      id,
      await RaftNode.open({
        id,
        bootstrapPeers: [1, 2],
        dir: `/r${id}`,
        disk: new FakeDisk(),
        transport: { send },
        stateMachine: sms[id - 1],
        rand: () => 0.5,
        electionTick: 10,
        heartbeatTick: 1,
      }),
    );
  const settle = () => new Promise((r) => setTimeout(r, 5));
  const tick = async (n: number) => {
    for (let i = 0; i < n; i++) {
      for (const node of nodes.values()) node.tick();
      await settle();
    }
  };
  const n1 = nodes.get(1) as RaftNode;
  n1.campaign();
  for (let i = 0; i < 100 && n1.leadership().role !== "leader"; i++) await tick(1);
  expect(n1.leadership().role).toBe("leader");
  return {
    n1,
    n2: nodes.get(2) as RaftNode,
    sms,
    tick,
    cut: () => (linked = false),
    close: async () => {
      for (const n of nodes.values()) await n.close();
    },
  };
}

const cmd = (s: string) => Buffer.from(s);

describe("a proposal's outcome", () => {
  it("is unknown when it times out after the leader appended it, and unknown at once when the leader steps down", async () => {
    const c = await pair();
    try {
      expect(await c.n1.propose(cmd("a"), 2_000)).toBe(1);
      c.cut();
      // Appended to the leader's log, never acknowledged by the follower.
      await expect(c.n1.propose(cmd("b"), 50)).rejects.toBeInstanceOf(ProposalOutcomeUnknownError);
      // A long deadline: the leader's step-down (check quorum) answers it long before.
      const waiting = c.n1.propose(cmd("c"), 600_000);
      const outcome = waiting.then(
        () => "applied",
        (e: unknown) => e,
      );
      await c.tick(40);
      expect(c.n1.leadership().role).not.toBe("leader");
      expect(await outcome).toBeInstanceOf(ProposalOutcomeUnknownError);
      // No leader known now: raft refuses it before it enters any log.
      await c.tick(40);
      expect(c.n1.leadership().lead).toBe(0);
      await expect(c.n1.propose(cmd("d"), 600_000)).rejects.toBeInstanceOf(ProposalDroppedError);
      expect(c.sms[0].applied).toEqual(["a"]);
    } finally {
      await c.close();
    }
  });
});
