// shoald's cluster membership: `swarm init` makes this daemon a cluster's first manager,
// `swarm join` makes it a worker or a manager of an existing one, a restart reopens whatever it
// was from <data-root>/swarm, and `swarm leave` takes it out. Every node serves the cluster port
// (NodeServer) and runs an agent whose session goes to the leader's dispatcher over gRPC, the
// manager's own agent included, so a failover changes nothing for it. Lives in daemon/ because
// it is where manager and agent code meet.
import { randomInt } from "node:crypto";
import { availableParallelism, hostname, totalmem } from "node:os";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import {
  conflict,
  forbidden,
  invalid,
  isShoalError,
  messageOf,
  notFound,
  unavailable,
  type ShoalError,
} from "../shared/errors.js";
import { ensureDir, readJsonIfExists, writeFileAtomic, writeJsonAtomic } from "../shared/fsutil.js";
import { runCommand } from "../shared/command.js";
import {
  clientCredentials,
  MANAGER_TLS_NAME,
  channelOptions,
  peerCertificatePem,
} from "../shared/grpc-tls.js";
import type { TlsIdentity } from "../shared/grpc-tls.js";
import type { Logger } from "../shared/logging.js";
import type { ImagePuller } from "../shared/cluster.js";
import { EMPTY_NETWORK_STATE, type NetworkState } from "../shared/network-state.js";
import type { NodeDescription } from "../proto/gen/cluster.js";
import {
  caDigest,
  createCsr,
  createRootCA,
  issueNodeCertificate,
  makeJoinToken,
  newNodeKey,
  parseJoinToken,
  renewalTime,
  verifyNodeCertificate,
} from "../manager/ca/ca.js";
import { CAServer } from "../manager/ca/server.js";
import { Manager } from "../manager/manager.js";
import { ControlApi, view } from "../manager/controlapi/control.js";
import { ClusterNetworksApi } from "../manager/controlapi/networks.js";
import type { SwarmHost } from "../manager/controlapi/routes.js";
import { newObjectId } from "../manager/store/store.js";
import { DispatcherServer } from "../manager/dispatcher/server.js";
import { ResourceAllocatorServer } from "../manager/allocator/server.js";
import type { ContainerEngineApi } from "../agent/engine/container/api.js";
import type { ClusterAttacher } from "../agent/engine/network/cluster-attach.js";
import { Worker } from "../agent/worker/worker.js";
import { DispatcherSession } from "../agent/worker/dispatcher-session.js";
import { NodeServer } from "./node-server.js";
import { nodeService } from "./node-service.js";
import {
  caClient,
  caClientJoining,
  callLeader,
  nodeClient,
  resourceAllocatorClient,
  withPort,
} from "./cluster-client.js";
import type { ForwardRouter } from "./api-forward.js";

type Role = "manager" | "worker";

interface SwarmState {
  nodeId: string;
  clusterId: string;
  role: Role;
  /** This node's Raft member id while it manages (a new one for every promotion). */
  raftId: number;
  /** What the cluster port binds, e.g. 0.0.0.0:2377. */
  listenAddr: string;
  /** host:port the other nodes use to reach this one. */
  advertiseAddr: string;
  /** Managers last heard of (a worker's way back after its restart). */
  managers: string[];
}

export interface SwarmOptions {
  dataRoot: string;
  socketPath: string;
  engine: ContainerEngineApi;
  log: Logger;
  pull?: ImagePuller;
  /** The engine's overlay side: makes this host match the cluster's network state (issue 7). */
  overlay?: {
    applyOverlay(state: NetworkState, self: { nodeId: string; hostAddr: string }): Promise<unknown>;
    readonly overlayVersion: number;
    /** Plain containers on attachable overlay networks ask the leader through this. */
    setClusterAttacher?(a: ClusterAttacher | undefined): void;
  };
}

/** How long an attach or detach call to the leader may take. */
const ATTACH_CALL_MS = 10_000;

/** A ResourceAllocator refusal as the status `docker run` should show (the leader's words). */
function attachError(addr: string, e: grpc.ServiceError): ShoalError {
  const what = e.details || e.message;
  switch (e.code) {
    case grpc.status.NOT_FOUND:
      return notFound(what);
    case grpc.status.PERMISSION_DENIED:
      return forbidden(what);
    case grpc.status.ALREADY_EXISTS:
    case grpc.status.ABORTED:
      return conflict(what);
    case grpc.status.INVALID_ARGUMENT:
      return invalid(what);
    case grpc.status.UNAUTHENTICATED:
      return forbidden(`the leader at ${addr} refused this node: ${what}`);
    default:
      return unavailable(
        `the cluster's leader (${addr}) could not be reached to attach or detach the container (${what}): try again when the managers are reachable`,
      );
  }
}

/** How often a host re-applies the network state it has, to correct drift. */
const DRIFT_CHECK_MS = 10_000;

/** Paths of the cluster API that a node without the store sends to a manager. */
const CLUSTER_API = /^\/(?:swarm|nodes|services|tasks|secrets|configs)(?:\/|$)/;
/** Membership calls every node answers for itself. */
const LOCAL_ONLY = /^\/swarm\/(?:init|join|leave)$/;

function platformArch(): string {
  return process.arch === "x64" ? "x86_64" : process.arch === "arm64" ? "aarch64" : process.arch;
}

export class Swarm implements SwarmHost, ForwardRouter {
  private state: SwarmState | undefined;
  private identity: TlsIdentity | undefined;
  private server: NodeServer | undefined;
  private manager: Manager | undefined;
  private dispatcher: DispatcherServer | undefined;
  private controlApi: ControlApi | undefined;
  private clusterNetworksApi: ClusterNetworksApi | undefined;
  private session: DispatcherSession | undefined;
  private worker: Worker | undefined;
  private readonly clients = new Map<string, ReturnType<ReturnType<typeof nodeClient>>>();
  private changing: Promise<unknown> = Promise.resolve();
  private renewTimer: NodeJS.Timeout | undefined;
  private driftTimer: NodeJS.Timeout | undefined;
  private lastNetwork: NetworkState | undefined;
  /** The role the store last gave this node, while a change to it has not yet held. */
  private wantedRole: string | undefined;
  private roleRetryTimer: NodeJS.Timeout | undefined;
  private roleAttempts = 0;
  /**
   * The Raft id a promotion that failed half-way asked to join with: the next try joins with it
   * again (the leader's JoinRaft is idempotent for it), so no stray learner is left behind.
   */
  private joiningRaftId: number | undefined;

  constructor(private readonly o: SwarmOptions) {}

  private get dir(): string {
    return join(this.o.dataRoot, "swarm");
  }

  private get log(): Logger {
    return this.o.log;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.changing.then(fn, fn);
    this.changing = next.catch(() => undefined);
    return next;
  }

  // ---- start-up ------------------------------------------------------------------------------

  /** At daemon start: rejoin the cluster this daemon was part of. */
  async open(): Promise<void> {
    const state = await readJsonIfExists<SwarmState>(join(this.dir, "state.json"));
    if (!state || !state.role) return;
    const certs = join(this.dir, "certs");
    this.identity = {
      caPem: await readFile(join(certs, "ca.crt"), "utf8"),
      certPem: await readFile(join(certs, "node.crt"), "utf8"),
      keyPem: await readFile(join(certs, "node.key"), "utf8"),
    };
    this.state = state;
    await this.startServer(state);
    if (state.role === "manager") await this.startManager(state, false);
    await this.startAgent(state);
    this.log.info({ node: state.nodeId, role: state.role }, "rejoined the cluster");
  }

  private async startServer(state: SwarmState): Promise<void> {
    const identity = this.requireIdentity();
    const server = new NodeServer(
      identity,
      nodeService({
        socketPath: this.o.socketPath,
        caPem: () => this.identity?.caPem,
        role: () => this.state?.role,
        manager: () => this.manager,
        log: this.log.child({ module: "node-service" }),
      }),
    );
    await server.listen(state.listenAddr);
    this.server = server;
  }

  private requireIdentity(): TlsIdentity {
    if (!this.identity) throw new Error("this node has no certificate");
    return this.identity;
  }

  private async startManager(state: SwarmState, bootstrap: boolean): Promise<Manager> {
    const server = this.server;
    if (!server) throw new Error("the cluster port is not open");
    const identity = this.requireIdentity();
    const log = this.log.child({ component: "manager" });
    const manager = await Manager.open({
      dir: join(this.dir, "raft"),
      raftId: state.raftId,
      nodeId: state.nodeId,
      addr: state.advertiseAddr,
      bootstrap,
      log,
      network: {
        server: server.server,
        credentials: { server: server.credentials, client: clientCredentials(identity) },
        channelOptions: channelOptions(MANAGER_TLS_NAME),
        authorize: (call) => {
          const pem = peerCertificatePem(call);
          if (!pem) return "raft needs a manager's certificate";
          try {
            const who = verifyNodeCertificate(pem, identity.caPem);
            return who.role === "manager" ? undefined : `node ${who.nodeId} is not a manager`;
          } catch (e) {
            return messageOf(e);
          }
        },
      },
      onRemoved: () => void this.serial(() => this.stopManager()),
      onLeadership: (leading) => this.dispatcher?.leadershipChanged(leading),
    });
    this.manager = manager;
    const convergence = () => {
      const d = this.dispatcher;
      return d && manager.isLeader()
        ? { version: manager.networkState().version, applied: d.networkConvergence() }
        : undefined;
    };
    this.controlApi = new ControlApi(manager.store, state.nodeId, () => manager.leaderNodeId(), convergence);
    this.clusterNetworksApi = new ClusterNetworksApi(manager.store, convergence);
    this.dispatcher = new DispatcherServer({
      store: manager.store,
      core: manager.dispatcher,
      isLeader: () => manager.isLeader(),
      leaderAddr: () => manager.leaderAddr(),
      managers: () => manager.memberList().map((m) => ({ nodeId: m.nodeId, addr: m.addr })),
      caPem: () => this.requireIdentity().caPem,
      networkState: () => manager.networkState(),
      log: log.child({ module: "dispatcher" }),
    });
    if (manager.isLeader()) this.dispatcher.leadershipChanged(true);
    const ca = new CAServer({
      store: manager.store,
      isLeader: () => manager.isLeader(),
      leaderAddr: () => manager.leaderAddr(),
      log: log.child({ module: "ca" }),
    });
    const resourceAllocator = new ResourceAllocatorServer({
      store: manager.store,
      isLeader: () => manager.isLeader(),
      leaderAddr: () => manager.leaderAddr(),
      caPem: () => this.requireIdentity().caPem,
      log: log.child({ module: "resource-allocator" }),
    });
    server.setManagerServices({
      ca: ca.implementation(),
      dispatcher: this.dispatcher.implementation(),
      resourceAllocator: resourceAllocator.implementation(),
    });
    return manager;
  }

  private async stopManager(): Promise<void> {
    this.server?.setManagerServices(undefined);
    this.dispatcher?.close();
    this.dispatcher = undefined;
    this.controlApi = undefined;
    this.clusterNetworksApi = undefined;
    const m = this.manager;
    this.manager = undefined;
    await m?.close();
  }

  private description(state: SwarmState): NodeDescription {
    return {
      hostname: hostname(),
      os: "linux",
      architecture: platformArch(),
      nanoCpus: availableParallelism() * 1e9,
      memoryBytes: totalmem(),
      addr: state.advertiseAddr.replace(/:\d+$/, ""),
    };
  }

  private async startAgent(state: SwarmState): Promise<void> {
    const managers = [
      ...new Set([...(state.role === "manager" ? [state.advertiseAddr] : []), ...state.managers]),
    ];
    const session = new DispatcherSession({
      nodeId: state.nodeId,
      managers,
      identity: () => this.requireIdentity(),
      description: this.description(state),
      listenAddr: state.advertiseAddr,
      stateDir: join(this.dir, "worker"),
      log: this.log.child({ component: "session" }),
      onRole: (role) => this.wantRole(role),
      onManagers: (list) => void this.rememberManagers(list.map((m) => m.addr)),
      onNetworkState: (network) => void this.applyNetworkState(state, network),
    });
    this.session = session;
    this.worker = new Worker(
      state.nodeId,
      session,
      this.o.engine,
      this.log.child({ component: "worker" }),
      this.o.pull,
    );
    this.worker.start();
    this.o.overlay?.setClusterAttacher?.(this.clusterAttacher(state));
    await session.start();
    this.scheduleRenewal();
  }

  /**
   * The engine's way to the leader's ResourceAllocator for plain containers on attachable
   * overlay networks (moby's AttachNetwork/DetachNetwork), with this node's identity. Calls go
   * to the manager this node's session is with (the leader) and follow redirects.
   */
  private clusterAttacher(state: SwarmState): ClusterAttacher {
    const leader = (): string | undefined => (this.state === state ? this.session?.manager : undefined);
    return {
      connected: async (waitMs) => {
        const until = Date.now() + waitMs;
        while (!leader()) {
          if (Date.now() >= until || this.state !== state) return false;
          await new Promise((r) => setTimeout(r, 100));
        }
        return true;
      },
      attach: async (req) => {
        const addr = leader();
        if (!addr)
          throw unavailable(
            "this node has no connection to the cluster's leader, which gives the container its address on the overlay network: try again when the managers are reachable",
          );
        const { res } = await callLeader(
          addr,
          resourceAllocatorClient(this.requireIdentity()),
          (c) => c.attachNetwork,
          {
            network: req.network,
            containerId: req.containerId,
            containerName: req.containerName,
            aliases: req.aliases,
            address: req.address ?? "",
          },
          { timeoutMs: ATTACH_CALL_MS, mapError: attachError },
        );
        return res;
      },
      detach: async (attachmentId) => {
        const addr = leader() ?? state.managers[0];
        if (!addr) throw unavailable("no manager is known to this node");
        try {
          await callLeader(
            addr,
            resourceAllocatorClient(this.requireIdentity()),
            (c) => c.detachNetwork,
            { attachmentId },
            { timeoutMs: ATTACH_CALL_MS, mapError: attachError },
          );
        } catch (e) {
          // Gone already (its node was removed, or an earlier call got through): given back.
          if (isShoalError(e) && e.status === 404) return;
          throw e;
        }
      },
    };
  }

  /** Bring this host's overlay devices, DNS and load balancing to the cluster's state. */
  private async applyNetworkState(state: SwarmState, network: NetworkState): Promise<void> {
    const overlay = this.o.overlay;
    if (!overlay) return;
    this.lastNetwork = network;
    // Applying is a diff against what the host has, so doing it again now and then puts back
    // whatever drifted (a device or entry removed by hand, a rule flushed by another tool).
    this.driftTimer ??= setInterval(() => {
      const s = this.state;
      if (s && this.lastNetwork) void this.applyNetworkState(s, this.lastNetwork);
    }, DRIFT_CHECK_MS).unref();
    try {
      await overlay.applyOverlay(network, {
        nodeId: state.nodeId,
        hostAddr: state.advertiseAddr.replace(/:\d+$/, ""),
      });
      if (this.session) this.session.networkApplied = overlay.overlayVersion;
    } catch (e) {
      this.log.warn({ version: network.version, err: messageOf(e) }, "applying the network state failed");
    }
  }

  private async rememberManagers(addrs: string[]): Promise<void> {
    const state = this.state;
    if (!state || addrs.length === 0) return;
    const sorted = [...new Set(addrs)].sort();
    if (JSON.stringify(sorted) === JSON.stringify([...state.managers].sort())) return;
    state.managers = sorted;
    await this.saveState().catch((e: unknown) =>
      this.log.warn({ err: messageOf(e) }, "saving the manager list failed"),
    );
  }

  private async saveState(): Promise<void> {
    if (this.state) await writeJsonAtomic(join(this.dir, "state.json"), this.state);
  }

  private async writeCerts(identity: TlsIdentity): Promise<void> {
    const certs = await ensureDir(join(this.dir, "certs"));
    await writeFileAtomic(join(certs, "ca.crt"), identity.caPem);
    await writeFileAtomic(join(certs, "node.crt"), identity.certPem);
    await writeFileAtomic(join(certs, "node.key"), identity.keyPem, 0o600);
  }

  // ---- what the API routes call ------------------------------------------------------------------

  control(): ControlApi | undefined {
    return this.controlApi;
  }

  /** Overlay networks (`network create -d overlay` and friends) while this node manages. */
  clusterNetworks(): ClusterNetworksApi | undefined {
    return this.clusterNetworksApi;
  }

  init(request: { ListenAddr?: string; AdvertiseAddr?: string }): Promise<string> {
    return this.serial(async () => {
      if (this.state)
        throw unavailable(
          'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.',
        );
      const listenAddr = withPort(request.ListenAddr || "0.0.0.0:2377");
      const port = Number(listenAddr.split(":").pop());
      const advertiseAddr = request.AdvertiseAddr
        ? withPort(request.AdvertiseAddr, port)
        : listenAddr.startsWith("0.0.0.0")
          ? `127.0.0.1:${port}`
          : listenAddr;
      const state: SwarmState = {
        nodeId: newObjectId(),
        clusterId: newObjectId(),
        role: "manager",
        raftId: randomInt(1, 2 ** 31),
        listenAddr,
        advertiseAddr,
        managers: [],
      };
      try {
        await ensureDir(this.dir);
        const ca = await createRootCA();
        const own = await issueNodeCertificate(ca, {
          nodeId: state.nodeId,
          role: "manager",
          clusterId: state.clusterId,
        });
        this.identity = { caPem: ca.certPem, certPem: own.certPem, keyPem: own.keyPem };
        await this.writeCerts(this.identity);
        this.state = state;
        await this.startServer(state);
        const manager = await this.startManager(state, true);
        const d = this.description(state);
        await manager.store.update((tx) => {
          tx.create("clusters", {
            ID: state.clusterId,
            Spec: {
              Name: "default",
              Orchestration: { TaskHistoryRetentionLimit: 5 },
              Dispatcher: { HeartbeatPeriod: 1e9 },
            },
            JoinTokens: { Worker: makeJoinToken(ca.certPem), Manager: makeJoinToken(ca.certPem) },
            RootCA: { CACert: ca.certPem, CAKey: ca.keyPem },
          });
          tx.create("nodes", {
            ID: state.nodeId,
            Spec: { Role: "manager", Availability: "active" },
            Description: {
              Hostname: d.hostname,
              Platform: { Architecture: d.architecture, OS: d.os },
              Resources: { NanoCPUs: d.nanoCpus, MemoryBytes: d.memoryBytes },
            },
            Status: { State: "ready", Addr: d.addr },
            ManagerStatus: { Leader: true, Reachability: "reachable", Addr: state.advertiseAddr },
            ListenAddr: state.advertiseAddr,
          });
        });
        await this.startAgent(state);
        // Written last: a daemon that dies before this point starts outside any cluster.
        await this.saveState();
      } catch (e) {
        await this.teardown();
        throw e;
      }
      this.log.info(
        { node: state.nodeId, cluster: state.clusterId },
        "cluster initialised; this node is its manager",
      );
      return state.nodeId;
    });
  }

  join(request: {
    ListenAddr?: string;
    AdvertiseAddr?: string;
    RemoteAddrs?: string[];
    JoinToken?: string;
  }): Promise<void> {
    return this.serial(async () => {
      if (this.state)
        throw unavailable(
          'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.',
        );
      if (!request.JoinToken)
        throw invalid("joining needs a token: pass --token (see `join-token` on a manager)");
      const remotes = (request.RemoteAddrs ?? []).filter(Boolean).map((a) => withPort(a));
      if (remotes.length === 0)
        throw invalid("joining needs a manager's address: give HOST:PORT after the options");
      const token = parseJoinToken(request.JoinToken);
      const listenAddr = withPort(request.ListenAddr || "0.0.0.0:2377");
      const port = Number(listenAddr.split(":").pop());
      const advertiseAddr = request.AdvertiseAddr
        ? withPort(request.AdvertiseAddr, port)
        : await this.routeSourceAddr(remotes[0], port, listenAddr);
      try {
        // The CA's certificate, checked against the digest the token carries before anything
        // from this manager is trusted.
        const { res: root, addr: caAddr } = await callLeader(
          remotes[0],
          caClientJoining(),
          (c) => c.getRootCaCertificate,
          {},
        );
        if (caDigest(root.caCert) !== token.caDigest) {
          this.log.warn({ manager: caAddr }, "refused to join: the manager's CA does not match the token");
          throw forbidden(
            `the manager at ${caAddr} belongs to another cluster: its CA does not match the join token; check the token and the address`,
          );
        }
        const keyPem = await newNodeKey();
        const csr = await createCsr(keyPem, { nodeId: "joining", role: "worker", clusterId: "joining" });
        const draft: SwarmState = {
          nodeId: "",
          clusterId: "",
          role: "worker",
          raftId: randomInt(1, 2 ** 31),
          listenAddr,
          advertiseAddr,
          managers: remotes,
        };
        const { res: issued, addr: leader } = await callLeader(
          caAddr,
          caClientJoining(root.caCert),
          (c) => c.issueNodeCertificate,
          {
            token: request.JoinToken.trim(),
            csr,
            description: this.description(draft),
            listenAddr: advertiseAddr,
          },
        );
        const state: SwarmState = {
          ...draft,
          nodeId: issued.nodeId,
          clusterId: issued.clusterId,
          role: issued.role === "manager" ? "manager" : "worker",
          managers: [...new Set([leader, ...remotes])],
        };
        this.identity = { caPem: issued.caCert, certPem: issued.cert, keyPem };
        await ensureDir(this.dir);
        await this.writeCerts(this.identity);
        this.state = state;
        await this.startServer(state);
        if (state.role === "manager") await this.joinRaft(state, leader);
        await this.startAgent(state);
        await this.saveState();
        this.log.info({ node: state.nodeId, role: state.role, manager: leader }, "joined the cluster");
      } catch (e) {
        await this.teardown();
        throw e;
      }
    });
  }

  /** The local address the kernel would use to reach a manager (what Docker advertises by default). */
  private async routeSourceAddr(remote: string, port: number, listenAddr: string): Promise<string> {
    if (!listenAddr.startsWith("0.0.0.0")) return listenAddr;
    const ip = remote.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
    try {
      const { stdout } = await runCommand("ip", ["-j", "route", "get", ip]);
      const src = (JSON.parse(stdout) as Array<{ prefsrc?: string }>)[0]?.prefsrc;
      if (src) return `${src}:${port}`;
    } catch {
      // fall through to the error below
    }
    throw invalid(`cannot tell which address to advertise for reaching ${remote}: pass --advertise-addr`);
  }

  /** Become a Raft member: open an empty member, have the leader add it, learn the others. */
  private async joinRaft(state: SwarmState, leaderAddr: string): Promise<void> {
    const manager = await this.startManager(state, false);
    const { res } = await callLeader(leaderAddr, nodeClient(this.requireIdentity()), (c) => c.joinRaft, {
      raftId: state.raftId,
      addr: state.advertiseAddr,
    });
    await manager.learnMembers(
      res.members.map((m) => ({ raftId: m.raftId, addr: m.addr, nodeId: m.nodeId })),
    );
    await manager.waitForLeader(30_000);
  }

  /**
   * Act on the role the store gives this node; a change that fails (a leader lost or slow in the
   * middle of it) is tried again, with backoff, for as long as the store still wants it.
   */
  private wantRole(role: string): void {
    this.wantedRole = role;
    if (this.roleRetryTimer) clearTimeout(this.roleRetryTimer);
    this.roleRetryTimer = undefined;
    void this.serial(async () => {
      try {
        await this.changeRole(role);
        this.roleAttempts = 0;
      } catch (e) {
        // A half-made manager (certificate, Raft member started, the join not confirmed) goes,
        // so the next try starts clean.
        if (role === "manager" && this.state?.role !== "manager")
          await this.stopManager().catch(() => undefined);
        const delayMs = Math.min(10_000, 500 * 2 ** this.roleAttempts++);
        this.log.error(
          { role, err: messageOf(e), retryInMs: delayMs },
          "changing this node's role failed; trying again",
        );
        this.roleRetryTimer = setTimeout(() => {
          this.roleRetryTimer = undefined;
          if (this.wantedRole === role && this.state) this.wantRole(role);
        }, delayMs);
      }
    });
  }

  /** The store changed this node's role (promote/demote): get a certificate for it and act on it. */
  private async changeRole(role: string): Promise<void> {
    const state = this.state;
    if (!state || (role !== "manager" && role !== "worker") || role === state.role) return;
    this.log.info({ from: state.role, to: role }, "this node's role changed");
    if (role === "manager") {
      // The manager certificate first: joining Raft needs it.
      const { role: granted, leader } = await this.renewCertificate(state);
      if (granted !== role) return;
      this.joiningRaftId ??= randomInt(1, 2 ** 31);
      state.raftId = this.joiningRaftId;
      await rm(join(this.dir, "raft"), { recursive: true, force: true });
      await this.joinRaft(state, leader);
      this.joiningRaftId = undefined;
      state.role = "manager";
    } else {
      // Leaving Raft needs the manager certificate still; the worker one comes after.
      await this.leaveRaft(state, this.manager?.leaderAddr() ?? state.advertiseAddr);
      await this.stopManager();
      await rm(join(this.dir, "raft"), { recursive: true, force: true });
      state.role = "worker";
      await this.renewCertificate(state);
    }
    await this.saveState();
  }

  /**
   * A new key and certificate from the CA, with the role the store gives this node now. Used for
   * role changes and before the certificate expires; links made from now on use the new one.
   */
  private async renewCertificate(state: SwarmState): Promise<{ role: string; leader: string }> {
    const keyPem = await newNodeKey();
    const csr = await createCsr(keyPem, {
      nodeId: state.nodeId,
      role: state.role,
      clusterId: state.clusterId,
    });
    const { res, addr: leader } = await callLeader(
      this.session?.manager ?? state.managers[0] ?? state.advertiseAddr,
      caClient(this.requireIdentity()),
      (c) => c.renewNodeCertificate,
      { csr },
    );
    this.identity = { caPem: res.caCert, certPem: res.cert, keyPem };
    await this.writeCerts(this.identity);
    this.server?.provider.update(this.identity);
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    this.scheduleRenewal();
    this.log.info({ role: res.role }, "renewed this node's certificate");
    return { role: res.role, leader };
  }

  /** Renew at a random point between half and four fifths of the validity (swarmkit's rule). */
  private scheduleRenewal(): void {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    const identity = this.identity;
    if (!identity) return;
    const due = renewalTime(identity.certPem).getTime();
    // setTimeout holds at most ~24.8 days: wake up then and look again.
    const wait = Math.min(Math.max(due - Date.now(), 1000), 2 ** 31 - 1);
    this.renewTimer = setTimeout(() => {
      const state = this.state;
      if (!state) return;
      if (Date.now() < due) return this.scheduleRenewal();
      void this.serial(() => this.renewCertificate(state)).catch((e: unknown) => {
        this.log.warn(
          { err: messageOf(e) },
          "renewing this node's certificate failed; trying again in a minute",
        );
        this.renewTimer = setTimeout(() => this.scheduleRenewal(), 60_000);
      });
    }, wait);
    this.renewTimer.unref();
  }

  /** Ask the leader to drop this member; a leader leaving hands leadership over first, so retry. */
  private async leaveRaft(state: SwarmState, leaderAddr: string): Promise<void> {
    const until = Date.now() + 15_000;
    let target = this.manager?.leaderAddr() ?? leaderAddr;
    for (;;) {
      try {
        await callLeader(target, nodeClient(this.requireIdentity()), (c) => c.leaveRaft, {
          raftId: state.raftId,
        });
        return;
      } catch (e) {
        if (Date.now() > until) throw e;
        await new Promise((r) => setTimeout(r, 300));
        target = this.manager?.leaderAddr() ?? target;
      }
    }
  }

  leave(force: boolean): Promise<void> {
    return this.serial(async () => {
      const state = this.state;
      if (!state) throw unavailable("This node is not part of a swarm");
      if (state.role === "manager") {
        if (!force)
          throw unavailable(
            "You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message.",
          );
        if (this.manager && this.manager.memberList().length > 1)
          await this.leaveRaft(state, this.manager.leaderAddr() ?? state.advertiseAddr).catch((e: unknown) =>
            this.log.warn({ err: messageOf(e) }, "leaving the raft group failed; leaving anyway"),
          );
      }
      await this.teardown();
      for (const c of this.o.engine.list({
        all: true,
        filters: { label: [`com.docker.swarm.node.id=${state.nodeId}`] },
      }))
        await this.o.engine.remove(c.Id, { force: true }).catch(() => undefined);
      // Devices its task containers kept go now that they are gone.
      await this.o.overlay
        ?.applyOverlay(EMPTY_NETWORK_STATE, {
          nodeId: state.nodeId,
          hostAddr: state.advertiseAddr.replace(/:\d+$/, ""),
        })
        .catch(() => undefined);
      this.log.info({ node: state.nodeId }, "left the cluster");
    });
  }

  /** Stop every cluster part and forget the cluster (also what a failed init or join undoes). */
  private async teardown(): Promise<void> {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    if (this.roleRetryTimer) clearTimeout(this.roleRetryTimer);
    this.wantedRole = undefined;
    if (this.driftTimer) clearInterval(this.driftTimer);
    this.driftTimer = undefined;
    this.lastNetwork = undefined;
    this.o.overlay?.setClusterAttacher?.(undefined);
    const state = this.state;
    // Out of the cluster: no overlay device, entry or rule of it stays on this host.
    if (state)
      await this.o.overlay
        ?.applyOverlay(EMPTY_NETWORK_STATE, {
          nodeId: state.nodeId,
          hostAddr: state.advertiseAddr.replace(/:\d+$/, ""),
        })
        .catch((e: unknown) => this.log.warn({ err: messageOf(e) }, "removing the overlay networks failed"));
    this.worker?.close();
    await this.session?.close();
    await this.stopManager().catch(() => undefined);
    await this.server?.close().catch(() => undefined);
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    this.worker = undefined;
    this.session = undefined;
    this.server = undefined;
    this.state = undefined;
    this.identity = undefined;
    await rm(this.dir, { recursive: true, force: true });
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
    const state = this.state;
    if (!state) return undefined;
    const m = this.manager;
    const nodes = m?.store.view((tx) => tx.list("nodes"));
    const remote = m
      ? m.memberList().map((x) => ({ NodeID: x.nodeId, Addr: x.addr }))
      : state.managers.map((addr) => ({ NodeID: "", Addr: addr }));
    return {
      NodeID: state.nodeId,
      NodeAddr: state.advertiseAddr.replace(/:\d+$/, ""),
      LocalNodeState: "active",
      ControlAvailable: state.role === "manager" && !!m,
      Error: "",
      RemoteManagers: remote,
      ...(nodes
        ? {
            Nodes: nodes.length,
            Managers: nodes.filter((n) => n.Spec.Role === "manager").length,
            Cluster: this.inspect(),
          }
        : {}),
    };
  }

  // ---- ForwardRouter -------------------------------------------------------------------------

  target(method: string, path: string): string | undefined {
    const state = this.state;
    if (!state || !CLUSTER_API.test(path) || LOCAL_ONLY.test(path)) return undefined;
    const m = this.manager;
    if (m) {
      if (method === "GET" || m.isLeader()) return undefined;
      return m.leaderAddr();
    }
    return this.session?.manager ?? state.managers[0];
  }

  client(addr: string): ReturnType<ReturnType<typeof nodeClient>> {
    let c = this.clients.get(addr);
    if (!c) {
      c = nodeClient(this.requireIdentity())(addr);
      this.clients.set(addr, c);
    }
    return c;
  }

  async afterWrite(): Promise<void> {
    await this.manager?.readBarrier(5_000);
  }

  /** A node's Node service, to read a task's logs where it runs. */
  nodeAddr(nodeId: string): string | undefined {
    return this.manager?.store.view((tx) => tx.get("nodes", nodeId))?.ListenAddr;
  }

  get nodeId(): string | undefined {
    return this.state?.nodeId;
  }

  /** A cached client of a node's own Node service (its certificate names its id), for Forward. */
  nodeForwardClient(nodeId: string): ReturnType<ReturnType<typeof nodeClient>> | undefined {
    const addr = this.nodeAddr(nodeId);
    if (!addr || !this.identity) return undefined;
    const key = `${nodeId}@${addr}`;
    let c = this.clients.get(key);
    if (!c) {
      c = nodeClient(this.requireIdentity(), nodeId)(addr);
      this.clients.set(key, c);
    }
    return c;
  }

  async close(): Promise<void> {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    if (this.roleRetryTimer) clearTimeout(this.roleRetryTimer);
    this.wantedRole = undefined;
    if (this.driftTimer) clearInterval(this.driftTimer);
    this.worker?.close();
    await this.session?.close();
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    await this.stopManager().catch(() => undefined);
    await this.server?.close().catch(() => undefined);
  }
}
