// The agent of a node in a cluster: its session with the leader's dispatcher
// (worker/dispatcher-session.ts), the worker that runs the assigned tasks on the local engine
// (worker/worker.ts), the cluster's network state applied to the engine's overlay side as it
// arrives (and again now and then, to correct drift), and the way plain containers on
// attachable overlay networks ask the leader for their addresses (cluster-attacher.ts). Overlay
// state goes dispatcher → session → engine here, without leaving the agent. Role changes and the
// manager list are the node's business: the agent only tells them.
import type { NodeDescription } from "../proto/gen/cluster.js";
import type { ImagePuller } from "../shared/cluster.js";
import { messageOf } from "../shared/errors.js";
import type { TlsIdentity } from "../shared/grpc-tls.js";
import type { Logger } from "../shared/logging.js";
import { EMPTY_NETWORK_STATE, type NetworkState } from "../shared/network-state.js";
import type { ContainerEngineApi } from "./engine/container/api.js";
import type { ClusterAttacher } from "./engine/network/cluster-attach.js";
import { clusterAttacher } from "./cluster-attacher.js";
import { DispatcherSession } from "./worker/dispatcher-session.js";
import { Worker } from "./worker/worker.js";

/** The engine's overlay side: makes this host match the cluster's network state. */
export interface OverlayEngine {
  applyOverlay(state: NetworkState, self: { nodeId: string; hostAddr: string }): Promise<unknown>;
  readonly overlayVersion: number;
  /** Plain containers on attachable overlay networks ask the leader through this. */
  setClusterAttacher?(a: ClusterAttacher | undefined): void;
}

export interface AgentOptions {
  nodeId: string;
  /** host:port of the managers to open a session with at first; the managers tell the rest. */
  managers: string[];
  /** The node's current certificate; a renewed one is used from the next connection on. */
  identity(): TlsIdentity;
  description: NodeDescription;
  /** host:port of this node's cluster port, as the other nodes reach it. */
  advertiseAddr: string;
  /** Where the agent keeps what it was assigned. */
  stateDir: string;
  engine: ContainerEngineApi;
  overlay?: OverlayEngine;
  pull?: ImagePuller;
  log: Logger;
  /** The role the store gives this node (a promotion or demotion to act on). */
  onRole(role: string): void;
  /** The managers' addresses (and their node ids), whenever the list changes. */
  onManagers(addrs: string[], nodeIds: string[]): void;
}

/** How often a host re-applies the network state it has, to correct drift. */
const DRIFT_CHECK_MS = 10_000;

export class Agent {
  private readonly session: DispatcherSession;
  private readonly worker: Worker;
  private managers: string[];
  private driftTimer: NodeJS.Timeout | undefined;
  private lastNetwork: NetworkState | undefined;
  private closed = false;

  constructor(private readonly o: AgentOptions) {
    this.managers = [...new Set(o.managers)].sort();
    this.session = new DispatcherSession({
      nodeId: o.nodeId,
      managers: o.managers,
      identity: o.identity,
      description: o.description,
      listenAddr: o.advertiseAddr,
      stateDir: o.stateDir,
      log: o.log.child({ component: "session" }),
      onRole: (role) => o.onRole(role),
      onManagers: (list) => {
        const addrs = list.map((m) => m.addr);
        if (addrs.length > 0) this.managers = [...new Set(addrs)].sort();
        o.onManagers(
          addrs,
          list.map((m) => m.nodeId),
        );
      },
      onNetworkState: (network) => void this.applyNetworkState(network),
    });
    this.worker = new Worker(o.nodeId, this.session, o.engine, o.log.child({ component: "worker" }), o.pull);
  }

  /** The worker runs the stored assignments; the session loads them and starts connecting. */
  async start(): Promise<void> {
    this.worker.start();
    this.o.overlay?.setClusterAttacher?.(
      clusterAttacher({
        leader: () => (this.closed ? undefined : this.session.manager),
        anyManager: () => this.managers[0],
        active: () => !this.closed,
        identity: this.o.identity,
      }),
    );
    await this.session.start();
  }

  /** The manager this node has a session with now (the leader), if any. */
  get manager(): string | undefined {
    return this.session.manager;
  }

  private get self(): { nodeId: string; hostAddr: string } {
    return { nodeId: this.o.nodeId, hostAddr: this.o.advertiseAddr.replace(/:\d+$/, "") };
  }

  /** Bring this host's overlay devices, DNS and load balancing to the cluster's state. */
  private async applyNetworkState(network: NetworkState): Promise<void> {
    const overlay = this.o.overlay;
    if (!overlay) return;
    this.lastNetwork = network;
    // Applying is a diff against what the host has, so doing it again now and then puts back
    // whatever drifted (a device or entry removed by hand, a rule flushed by another tool).
    if (!this.closed)
      this.driftTimer ??= setInterval(() => {
        if (this.lastNetwork) void this.applyNetworkState(this.lastNetwork);
      }, DRIFT_CHECK_MS).unref();
    try {
      await overlay.applyOverlay(network, this.self);
      this.session.networkApplied = overlay.overlayVersion;
    } catch (e) {
      this.o.log.warn({ version: network.version, err: messageOf(e) }, "applying the network state failed");
    }
  }

  private stopApplying(): void {
    this.closed = true;
    if (this.driftTimer) clearInterval(this.driftTimer);
    this.driftTimer = undefined;
  }

  /** The daemon stops: the session ends, the tasks' containers and the overlay stay as they are. */
  async close(): Promise<void> {
    this.stopApplying();
    this.worker.close();
    await this.session.close();
  }

  /** This node leaves the cluster: no overlay device, entry or rule of it stays on this host. */
  async leave(): Promise<void> {
    this.stopApplying();
    this.lastNetwork = undefined;
    this.o.overlay?.setClusterAttacher?.(undefined);
    await this.o.overlay
      ?.applyOverlay(EMPTY_NETWORK_STATE, this.self)
      .catch((e: unknown) => this.o.log.warn({ err: messageOf(e) }, "removing the overlay networks failed"));
    this.worker.close();
    await this.session.close();
  }

  /** After leaving: this node's task containers go, then the devices they kept. */
  async removeTasks(): Promise<void> {
    for (const c of this.o.engine.list({
      all: true,
      filters: { label: [`com.docker.swarm.node.id=${this.o.nodeId}`] },
    }))
      await this.o.engine.remove(c.Id, { force: true }).catch(() => undefined);
    await this.o.overlay?.applyOverlay(EMPTY_NETWORK_STATE, this.self).catch(() => undefined);
  }
}
