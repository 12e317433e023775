// `swarm leave`: this node leaves the Raft group if it manages (only with --force, as Docker
// asks), stops every cluster part, forgets the cluster and removes its task containers.
import { messageOf, unavailable } from "../../shared/errors.js";
import type { ClusterNode } from "./node.js";

export async function leaveCluster(node: ClusterNode, force: boolean): Promise<void> {
  const state = node.state;
  if (!state) throw unavailable("This node is not part of a swarm");
  if (state.role === "manager") {
    if (!force)
      throw unavailable(
        "You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message.",
      );
    if (node.manager && node.manager.memberList().length > 1)
      await node.roles
        .leaveRaft(state, node.manager.leaderAddr() ?? state.advertiseAddr)
        .catch((e: unknown) =>
          node.log.warn({ err: messageOf(e) }, "leaving the raft group failed; leaving anyway"),
        );
  }
  const agent = node.agent;
  await node.teardown();
  await agent?.removeTasks();
  node.log.info({ node: state.nodeId }, "left the cluster");
}
