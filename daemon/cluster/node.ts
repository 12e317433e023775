// The parts of this daemon that run while it is in a cluster, and how they start and stop: the
// cluster port (NodeServer with the Node service), the manager while the node manages, and the
// agent, whose session goes to the leader's dispatcher over gRPC on every node, the manager's own
// included, so a failover changes nothing for it. Changes of membership and role run one at a
// time (serial).
import type { ImagePuller } from "../../shared/cluster.js";
import type { TlsIdentity } from "../../shared/grpc-tls.js";
import type { Logger } from "../../shared/logging.js";
import { messageOf } from "../../shared/errors.js";
import { Manager } from "../../manager/manager.js";
import type { ContainerEngineApi } from "../../agent/engine/container/api.js";
import { Agent, type OverlayEngine } from "../../agent/agent.js";
import { callGuard } from "../../manager/auth/guard.js";
import { NodeServer } from "./node-server.js";
import { nodeService } from "./node-service.js";
import type { NodeClient } from "./clients.js";
import { CertificateRenewal } from "./certificates.js";
import { nodeDescription } from "./node-description.js";
import { RoleChanges } from "./role-change.js";
import { SwarmFiles, type SwarmState } from "./state.js";

export interface SwarmOptions {
  dataRoot: string;
  socketPath: string;
  engine: ContainerEngineApi;
  log: Logger;
  pull?: ImagePuller;
  /** The engine's overlay side: makes this host match the cluster's network state. */
  overlay?: OverlayEngine;
}

export class ClusterNode {
  state: SwarmState | undefined;
  identity: TlsIdentity | undefined;
  server: NodeServer | undefined;
  manager: Manager | undefined;
  agent: Agent | undefined;
  /**
   * The managers' node ids as the dispatcher last told this node's agent: on a worker, which has
   * no store, the only word on whether a manager's certificate still belongs to a manager.
   */
  private managerIds: ReadonlySet<string> | undefined;
  readonly files: SwarmFiles;
  /** Clients of other nodes' Node service, by address (or node@address), made with `identity`. */
  readonly clients = new Map<string, NodeClient>();
  readonly roles: RoleChanges;
  readonly certificates: CertificateRenewal;
  private changing: Promise<unknown> = Promise.resolve();

  constructor(readonly o: SwarmOptions) {
    this.files = new SwarmFiles(o.dataRoot);
    this.roles = new RoleChanges(this);
    this.certificates = new CertificateRenewal(this);
  }

  get log(): Logger {
    return this.o.log;
  }

  /** Runs `fn` after every change asked for before it has ended. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.changing.then(fn, fn);
    this.changing = next.catch(() => undefined);
    return next;
  }

  requireIdentity(): TlsIdentity {
    if (!this.identity) throw new Error("this node has no certificate");
    return this.identity;
  }

  /** A new certificate (and key): kept on disk, served on the cluster port, used by new links. */
  async adoptIdentity(identity: TlsIdentity): Promise<void> {
    this.identity = identity;
    await this.files.writeCerts(identity);
    this.server?.provider.update(identity);
    this.closeClients();
  }

  private closeClients(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  async saveState(): Promise<void> {
    if (this.state) await this.files.saveState(this.state);
  }

  async rememberManagers(addrs: string[]): Promise<void> {
    const state = this.state;
    if (!state || addrs.length === 0) return;
    const sorted = [...new Set(addrs)].sort();
    if (JSON.stringify(sorted) === JSON.stringify([...state.managers].sort())) return;
    state.managers = sorted;
    await this.saveState().catch((e: unknown) =>
      this.log.warn({ err: messageOf(e) }, "saving the manager list failed"),
    );
  }

  async startServer(state: SwarmState): Promise<void> {
    const identity = this.requireIdentity();
    const server = new NodeServer(
      identity,
      nodeService({
        socketPath: this.o.socketPath,
        caPem: () => this.identity?.caPem,
        role: () => this.state?.role,
        manager: () => this.manager,
        managerIds: () => this.managerIds,
        log: this.log.child({ module: "node-service" }),
      }),
      callGuard({
        caPem: () => this.identity?.caPem,
        manager: () => this.manager,
        log: this.log.child({ module: "cluster-port" }),
      }),
    );
    await server.listen(state.listenAddr);
    this.server = server;
  }

  async startManager(state: SwarmState, bootstrap: boolean): Promise<Manager> {
    const server = this.server;
    if (!server) throw new Error("the cluster port is not open");
    this.requireIdentity();
    this.manager = await Manager.open({
      dir: this.files.raftDir,
      raftId: state.raftId,
      nodeId: state.nodeId,
      addr: state.advertiseAddr,
      bootstrap,
      log: this.log.child({ component: "manager" }),
      node: { server, identity: () => this.requireIdentity() },
      onRemoved: () => void this.serial(() => this.stopManager()),
    });
    return this.manager;
  }

  async stopManager(): Promise<void> {
    const m = this.manager;
    this.manager = undefined;
    await m?.close();
  }

  async startAgent(state: SwarmState): Promise<void> {
    const managers = [
      ...new Set([...(state.role === "manager" ? [state.advertiseAddr] : []), ...state.managers]),
    ];
    const agent = new Agent({
      nodeId: state.nodeId,
      managers,
      identity: () => this.requireIdentity(),
      description: nodeDescription(state.advertiseAddr),
      advertiseAddr: state.advertiseAddr,
      stateDir: this.files.workerDir,
      engine: this.o.engine,
      overlay: this.o.overlay,
      pull: this.o.pull,
      log: this.log,
      onRole: (role) => this.roles.want(role),
      onManagers: (addrs, nodeIds) => {
        if (nodeIds.length > 0) this.managerIds = new Set(nodeIds);
        void this.rememberManagers(addrs);
      },
    });
    this.agent = agent;
    await agent.start();
    this.certificates.schedule();
  }

  /** Stop every cluster part and forget the cluster (also what a failed init or join undoes). */
  async teardown(): Promise<void> {
    this.certificates.stop();
    this.roles.stop();
    await this.agent?.leave();
    await this.stopManager().catch(() => undefined);
    await this.server?.close().catch(() => undefined);
    this.closeClients();
    this.agent = undefined;
    this.server = undefined;
    this.state = undefined;
    this.identity = undefined;
    await this.files.remove();
  }

  /** The daemon stops: everything closes, the membership stays for the next start. */
  async close(): Promise<void> {
    this.certificates.stop();
    this.roles.stop();
    await this.agent?.close();
    this.closeClients();
    await this.stopManager().catch(() => undefined);
    await this.server?.close().catch(() => undefined);
  }
}
