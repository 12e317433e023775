// shoald's cluster membership, as the HTTP routes see it: `swarm init` makes this daemon a
// cluster's first manager (init.ts), `swarm join` a worker or a manager of an existing one
// (join.ts), a restart reopens whatever it was from <data-root>/swarm, and `swarm leave` takes it
// out (leave.ts). What runs meanwhile, and how it starts and stops, is node.ts; promotions and
// demotions are role-change.ts. Lives in daemon/ because it is where manager and agent code meet.
import { setTimeout as sleep } from "node:timers/promises";
import { messageOf } from "../../shared/errors.js";
import type { ControlApi } from "../../manager/controlapi/control.js";
import type { ClusterNetworksApi } from "../../manager/controlapi/networks.js";
import type { ClusterRoute, ForwardRouter, SwarmHost } from "../../api/deps.js";
import { MANAGER_NOT_READY, WORKER_NOT_A_MANAGER } from "../../api/control.js";
import { nodeClient, type NodeClient } from "./clients.js";
import { initCluster } from "./init.js";
import type { InitRequest } from "../../api/routes/swarm-requests.js";
import { joinCluster, type JoinRequest } from "./join.js";
import { leaveCluster } from "./leave.js";
import { ClusterNode, type SwarmOptions } from "./node.js";

export type { SwarmOptions } from "./node.js";

const HERE: ClusterRoute = { serve: "here" };

export class Swarm implements SwarmHost, ForwardRouter {
  private readonly node: ClusterNode;

  constructor(o: SwarmOptions) {
    this.node = new ClusterNode(o);
  }

  /** At daemon start: rejoin the cluster this daemon was part of. */
  async open(): Promise<void> {
    const node = this.node;
    const saved = await node.files.read();
    if (!saved) return;
    const { state, identity } = saved;
    node.identity = identity;
    node.state = state;
    await node.startServer(state);
    if (state.role === "manager") await node.startManager(state, false);
    await node.startAgent(state);
    node.log.info({ node: state.nodeId, role: state.role }, "rejoined the cluster");
  }

  // ---- what the API routes call ------------------------------------------------------------------

  control(): ControlApi | undefined {
    return this.node.manager?.control;
  }

  /** Overlay networks (`network create -d overlay` and friends) while this node manages. */
  clusterNetworks(): ClusterNetworksApi | undefined {
    return this.node.manager?.clusterNetworks;
  }

  init(request: InitRequest): Promise<string> {
    return this.node.serial(() => initCluster(this.node, request));
  }

  join(request: JoinRequest): Promise<void> {
    return this.node.serial(() => joinCluster(this.node, request));
  }

  leave(force: boolean): Promise<void> {
    return this.node.serial(() => leaveCluster(this.node, force));
  }

  inspect(): Record<string, unknown> | undefined {
    const state = this.node.state;
    if (!state) return undefined;
    return this.node.manager?.inspectSwarm(state.clusterId);
  }

  /** /info's Swarm section. */
  info(): Record<string, unknown> | undefined {
    const state = this.node.state;
    if (!state) return undefined;
    const m = this.node.manager;
    return {
      NodeID: state.nodeId,
      NodeAddr: state.advertiseAddr.replace(/:\d+$/, ""),
      LocalNodeState: "active",
      ControlAvailable: state.role === "manager" && !!m,
      Error: "",
      ...(m
        ? m.swarmInfo(state.clusterId)
        : { RemoteManagers: state.managers.map((addr) => ({ NodeID: "", Addr: addr })) }),
    };
  }

  // ---- ForwardRouter -------------------------------------------------------------------------

  /**
   * Asked only for the cluster routes (api/cluster.ts scopes the hook), so the path does not
   * matter. A worker answers none of them and sends none on: what it may learn of the cluster is
   * in /info (swarmkit's rule; a worker's certificate is refused at a manager's Forward too).
   */
  route(method: string): ClusterRoute {
    const state = this.node.state;
    // Not in a cluster: the routes answer with Docker's "swarm init or join" words.
    if (!state) return HERE;
    const m = this.node.manager;
    if (!m)
      return {
        serve: "refused",
        message: state.role === "manager" ? MANAGER_NOT_READY : WORKER_NOT_A_MANAGER,
      };
    if (method === "GET" || m.isLeader()) return HERE;
    const addr = m.leaderAddr();
    return addr ? { serve: "leader", addr } : HERE;
  }

  client(addr: string): NodeClient {
    const clients = this.node.clients;
    let c = clients.get(addr);
    if (!c) {
      c = nodeClient(this.node.requireIdentity())(addr);
      clients.set(addr, c);
    }
    return c;
  }

  /**
   * A write forwarded to the leader is answered only once this manager's store has it, so the
   * client's next read here sees it (reads confirm it too; this spares them the wait). A failure
   * is logged, not hidden.
   */
  async afterWrite(): Promise<void> {
    await this.confirmCurrent(10_000)?.catch((e: unknown) =>
      this.node.log.warn(
        { err: messageOf(e) },
        "a forwarded write is not yet in this manager's store; a read right after it may not show it",
      ),
    );
  }

  /**
   * A linearizable read's barrier (api/linearizable-read.ts): a ReadIndex through the leader.
   * One can be dropped (no leader known for a moment, a leader change): it is asked again until
   * the deadline. A manager whose Raft node stopped fails at once.
   */
  confirmCurrent(timeoutMs: number): Promise<void> | undefined {
    const manager = this.node.manager;
    if (!manager) return undefined;
    return (async () => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        try {
          await manager.readBarrier(Math.max(100, Math.min(3_000, deadline - Date.now())));
          return;
        } catch (e) {
          if (manager.stoppedBy || Date.now() + 100 >= deadline) throw e;
          await sleep(100);
        }
      }
    })();
  }

  /** A node's Node service, to read a task's logs where it runs. */
  nodeAddr(nodeId: string): string | undefined {
    return this.node.manager?.store.view((tx) => tx.get("nodes", nodeId))?.ListenAddr;
  }

  get nodeId(): string | undefined {
    return this.node.state?.nodeId;
  }

  /** A cached client of a node's own Node service (its certificate names its id), for Forward. */
  nodeForwardClient(nodeId: string): NodeClient | undefined {
    const addr = this.nodeAddr(nodeId);
    if (!addr || !this.node.identity) return undefined;
    const key = `${nodeId}@${addr}`;
    const clients = this.node.clients;
    let c = clients.get(key);
    if (!c) {
      c = nodeClient(this.node.requireIdentity(), nodeId)(addr);
      clients.set(key, c);
    }
    return c;
  }

  close(): Promise<void> {
    return this.node.close();
  }
}
