// Promotion and demotion: the store gives this node a new role (the agent's session tells it),
// and the node acts on it. A promotion gets a manager's certificate, then joins the Raft group;
// a demotion leaves the group, then gets a worker's certificate. A change that fails (a leader
// lost or slow in the middle of it) is tried again, with backoff, for as long as the store still
// wants it.
import { randomInt } from "node:crypto";
import { messageOf } from "../../shared/errors.js";
import { callLeader } from "../../shared/leader-call.js";
import { nodeClient } from "./clients.js";
import type { ClusterNode } from "./node.js";
import type { SwarmState } from "./state.js";

export class RoleChanges {
  /** The role the store last gave this node, while a change to it has not yet held. */
  private wanted: string | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private attempts = 0;
  /**
   * The Raft id a promotion that failed half-way asked to join with: the next try joins with it
   * again (the leader's JoinRaft is idempotent for it), so no stray learner is left behind.
   */
  private joiningRaftId: number | undefined;

  constructor(private readonly node: ClusterNode) {}

  /** Act on the role the store gives this node, retrying until it holds or is no longer wanted. */
  want(role: string): void {
    this.wanted = role;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    void this.node.serial(async () => {
      try {
        await this.change(role);
        this.attempts = 0;
      } catch (e) {
        // A half-made manager (certificate, Raft member started, the join not confirmed) goes,
        // so the next try starts clean.
        if (role === "manager" && this.node.state?.role !== "manager")
          await this.node.stopManager().catch(() => undefined);
        const delayMs = Math.min(10_000, 500 * 2 ** this.attempts++);
        this.node.log.error(
          { role, err: messageOf(e), retryInMs: delayMs },
          "changing this node's role failed; trying again",
        );
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          if (this.wanted === role && this.node.state) this.want(role);
        }, delayMs);
      }
    });
  }

  /** No more retries (the node leaves the cluster or the daemon stops). */
  stop(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wanted = undefined;
  }

  /** The store changed this node's role (promote/demote): get a certificate for it and act on it. */
  private async change(role: string): Promise<void> {
    const node = this.node;
    const state = node.state;
    if (!state || (role !== "manager" && role !== "worker") || role === state.role) return;
    node.log.info({ from: state.role, to: role }, "this node's role changed");
    if (role === "manager") {
      // The manager certificate first: joining Raft needs it.
      const { role: granted, leader } = await node.certificates.renew(state);
      if (granted !== role) return;
      this.joiningRaftId ??= randomInt(1, 2 ** 31);
      state.raftId = this.joiningRaftId;
      await node.files.removeRaft();
      await this.joinRaft(state, leader);
      this.joiningRaftId = undefined;
      state.role = "manager";
    } else {
      // Leaving Raft needs the manager certificate still; the worker one comes after.
      await this.leaveRaft(state, node.manager?.leaderAddr() ?? state.advertiseAddr);
      await node.stopManager();
      await node.files.removeRaft();
      state.role = "worker";
      await node.certificates.renew(state);
    }
    await node.saveState();
  }

  /** Become a Raft member: open an empty member, have the leader add it, learn the others. */
  async joinRaft(state: SwarmState, leaderAddr: string): Promise<void> {
    const manager = await this.node.startManager(state, false);
    const { res } = await callLeader(leaderAddr, nodeClient(this.node.requireIdentity()), (c) => c.joinRaft, {
      raftId: state.raftId,
      addr: state.advertiseAddr,
    });
    await manager.learnMembers(
      res.members.map((m) => ({ raftId: m.raftId, addr: m.addr, nodeId: m.nodeId })),
    );
    await manager.waitForLeader(30_000);
  }

  /** Ask the leader to drop this member; a leader leaving hands leadership over first, so retry. */
  async leaveRaft(state: SwarmState, leaderAddr: string): Promise<void> {
    const until = Date.now() + 15_000;
    let target = this.node.manager?.leaderAddr() ?? leaderAddr;
    for (;;) {
      try {
        await callLeader(target, nodeClient(this.node.requireIdentity()), (c) => c.leaveRaft, {
          raftId: state.raftId,
        });
        return;
      } catch (e) {
        if (Date.now() > until) throw e;
        await new Promise((r) => setTimeout(r, 300));
        target = this.node.manager?.leaderAddr() ?? target;
      }
    }
  }
}
