// shoald's cluster membership: `swarm init` makes this daemon a cluster's manager (a Raft
// member whose state machine is the cluster store) and its own worker; a restart reopens both
// from <data-root>/swarm; `swarm leave --force` takes them down. Lives in daemon/ because it is
// where manager and agent code meet: the worker gets its assignments from the manager's
// dispatcher through the shared AssignmentChannel interface.
import { randomInt } from "node:crypto";
import { availableParallelism, hostname, totalmem } from "node:os";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { unavailable } from "../shared/errors.js";
import { ensureDir, readJsonIfExists, writeFileAtomic, writeJsonAtomic } from "../shared/fsutil.js";
import { createRootCA, issueNodeCertificate, makeJoinToken } from "../manager/ca/ca.js";
import type { Logger } from "../shared/logging.js";
import type { ContainerEngineApi } from "../agent/engine/container/api.js";
import { Worker } from "../agent/worker/worker.js";
import type { ImagePuller } from "../shared/cluster.js";
import { Manager } from "../manager/manager.js";
import { ControlApi, view } from "../manager/controlapi/control.js";
import type { SwarmHost } from "../manager/controlapi/routes.js";
import { newObjectId } from "../manager/store/store.js";

interface SwarmState {
  nodeId: string;
  raftId: number;
  clusterId: string;
  addr: string;
}

export class Swarm implements SwarmHost {
  private manager: Manager | undefined;
  private worker: Worker | undefined;
  private controlApi: ControlApi | undefined;
  private state: SwarmState | undefined;
  private changing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly dataRoot: string,
    private readonly engine: ContainerEngineApi,
    private readonly log: Logger,
    private readonly pull?: ImagePuller,
  ) {}

  private get dir(): string {
    return join(this.dataRoot, "swarm");
  }

  /** At daemon start: rejoin the cluster this daemon was part of. */
  async open(): Promise<void> {
    const state = await readJsonIfExists<SwarmState>(join(this.dir, "state.json"));
    if (!state) return;
    await this.run(state, false);
    this.log.info({ node: state.nodeId }, "rejoined the cluster as its manager");
  }

  private async run(state: SwarmState, bootstrap: boolean): Promise<Manager> {
    const manager = await Manager.open({
      dir: join(this.dir, "raft"),
      raftId: state.raftId,
      bootstrap,
      log: this.log.child({ component: "manager" }),
    });
    this.manager = manager;
    this.controlApi = new ControlApi(manager.store, state.nodeId);
    this.state = state;
    this.worker = new Worker(
      state.nodeId,
      manager.dispatcher,
      this.engine,
      this.log.child({ component: "worker" }),
      this.pull,
    );
    this.worker.start();
    return manager;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.changing.then(fn, fn);
    this.changing = next.catch(() => undefined);
    return next;
  }

  control(): ControlApi | undefined {
    return this.controlApi;
  }

  init(request: { ListenAddr?: string; AdvertiseAddr?: string }): Promise<string> {
    return this.serial(async () => {
      if (this.manager)
        throw unavailable(
          'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.',
        );
      const state: SwarmState = {
        nodeId: newObjectId(),
        raftId: randomInt(1, 2 ** 31),
        clusterId: newObjectId(),
        addr: (request.AdvertiseAddr || request.ListenAddr || "127.0.0.1:2377").replace(
          /^0\.0\.0\.0/,
          "127.0.0.1",
        ),
      };
      await ensureDir(this.dir);
      // The cluster's CA, and this node's own certificate from it (what its gRPC links will use).
      const ca = await createRootCA();
      const own = await issueNodeCertificate(ca, {
        nodeId: state.nodeId,
        role: "manager",
        clusterId: state.clusterId,
      });
      await ensureDir(join(this.dir, "certs"));
      await writeFileAtomic(join(this.dir, "certs", "ca.crt"), ca.certPem);
      await writeFileAtomic(join(this.dir, "certs", "node.crt"), own.certPem);
      await writeFileAtomic(join(this.dir, "certs", "node.key"), own.keyPem, 0o600);
      const manager = await this.run(state, true);
      await manager.store.update((tx) => {
        tx.create("clusters", {
          ID: state.clusterId,
          Spec: { Name: "default", Orchestration: { TaskHistoryRetentionLimit: 5 } },
          JoinTokens: { Worker: makeJoinToken(ca.certPem), Manager: makeJoinToken(ca.certPem) },
          RootCA: { CACert: ca.certPem, CAKey: ca.keyPem },
        });
        tx.create("nodes", {
          ID: state.nodeId,
          Spec: { Role: "manager", Availability: "active" },
          Description: {
            Hostname: hostname(),
            Platform: { Architecture: process.arch === "x64" ? "x86_64" : process.arch, OS: "linux" },
            Resources: { NanoCPUs: availableParallelism() * 1e9, MemoryBytes: totalmem() },
          },
          Status: { State: "ready", Addr: state.addr.split(":")[0] },
          ManagerStatus: { Leader: true, Reachability: "reachable", Addr: state.addr },
        });
      });
      // Written last: a daemon that dies before this point starts outside any cluster.
      await writeJsonAtomic(join(this.dir, "state.json"), state);
      this.log.info(
        { node: state.nodeId, cluster: state.clusterId },
        "cluster initialised; this node is its manager",
      );
      return state.nodeId;
    });
  }

  join(): Promise<void> {
    return Promise.reject(unavailable("joining is being built"));
  }

  leave(force: boolean): Promise<void> {
    return this.serial(async () => {
      if (!this.manager) throw unavailable("This node is not part of a swarm");
      if (!force)
        throw unavailable(
          "You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message.",
        );
      this.worker?.close();
      const nodeId = this.state?.nodeId ?? "";
      await this.manager.close();
      this.manager = undefined;
      this.controlApi = undefined;
      this.worker = undefined;
      this.state = undefined;
      for (const c of this.engine.list({
        all: true,
        filters: { label: [`com.docker.swarm.node.id=${nodeId}`] },
      }))
        await this.engine.remove(c.Id, { force: true }).catch(() => undefined);
      await rm(this.dir, { recursive: true, force: true });
      this.log.info({ node: nodeId }, "left the cluster");
    });
  }

  inspect(): Record<string, unknown> | undefined {
    const m = this.manager;
    if (!m || !this.state) return undefined;
    const cluster = m.store.view((tx) => tx.get("clusters", this.state?.clusterId ?? ""));
    if (!cluster) return undefined;
    // The CA key never leaves the managers' store.
    const { RootCA, ...rest } = view(cluster);
    return {
      ...rest,
      JoinTokens: cluster.JoinTokens,
      TLSInfo: { TrustRoot: RootCA?.CACert ?? "", CertIssuerSubject: "", CertIssuerPublicKey: "" },
      RootRotationInProgress: false,
      DefaultAddrPool: [],
      SubnetSize: 24,
    };
  }

  /** /info's Swarm section. */
  info(): Record<string, unknown> | undefined {
    const m = this.manager;
    if (!m || !this.state) return undefined;
    const nodes = m.store.view((tx) => tx.list("nodes"));
    return {
      NodeID: this.state.nodeId,
      NodeAddr: this.state.addr.split(":")[0],
      LocalNodeState: "active",
      ControlAvailable: true,
      Error: "",
      RemoteManagers: [{ NodeID: this.state.nodeId, Addr: this.state.addr }],
      Nodes: nodes.length,
      Managers: nodes.filter((n) => n.Spec.Role === "manager").length,
      Cluster: this.inspect(),
    };
  }

  async close(): Promise<void> {
    this.worker?.close();
    await this.manager?.close();
  }
}
