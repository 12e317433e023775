// This host's networks and what containers hold on them, as the container engine sees them.
// The engine calls it at create (check the request), between `runtime create` and `start`
// (allocate and wire), after an exit (release), and at daemon start (reconcile what a crash
// left behind); the daemon hands it the cluster's network state. It never reads the container
// store itself: the engine hands it the records, so network/ does not depend on container/ code.
//
// Each concern is its own part, composed here:
//   bridges.ts           the network table, bridge networks (create, rm, prune), the firewall
//   published-ports.ts   the host ports of running containers
//   loopback-proxy.ts    those ports as the host's own 127.0.0.1 reaches them
//   container-dns.ts     containers' DNS names and /etc files
//   endpoints.ts         which networks a container joins, its addresses and veths
//   attachments.ts       plain containers on attachable overlay networks (the leader's addresses)
//   overlay-state.ts     the cluster's network state applied on this host (VXLAN, LB tables)
import type { EventLog } from "../events.js";
import type { NetworkState } from "../../../shared/network-state.js";
import { forbidden, invalid, messageOf, notFound } from "../../../shared/errors.js";
import type { Logger } from "../../../shared/logging.js";
import type { ContainerRecord, EndpointSettings, NetworkSettings } from "../container/types.js";
import type { PortBinding } from "../../../shared/engine-api.js";
import { ClusterAttachments, isTaskContainer } from "./attachments.js";
import { BridgeNetworks } from "./bridges.js";
import type { ClusterAttacher } from "./cluster-attach.js";
import { ContainerDns } from "./container-dns.js";
import { isLoopback } from "./firewall.js";
import { LoopbackProxy, type LoopbackRoute } from "./loopback-proxy.js";
import { containerModeTarget, ContainerEndpoints, emptyEndpoint, primaryNetworkName } from "./endpoints.js";
import { deleteLink, wireVeths } from "./host-links.js";
import { NetworkTable, type Network } from "./networks.js";
import type { OverlaySelf } from "./overlay/driver.js";
import { OverlayState } from "./overlay-state.js";
import { portRequests } from "./ports.js";
import { PublishedPorts } from "./published-ports.js";
import { NetworkFile } from "./store.js";
import {
  DEFAULT_NETWORK,
  type AttachedContainer,
  type ContainersOf,
  type CreateNetworkRequest,
  type EtcPaths,
  type NetworkRecord,
} from "./types.js";

export interface HostNetworksOptions {
  /** <dataRoot>/network */
  dir: string;
  /** The default bridge's Linux name (dockerd's --bridge); differs between daemons on one host. */
  bridgeName: string;
  /** dockerd's --bip: the default bridge's gateway address with prefix. */
  bridgeIp?: string;
  ipForward: boolean;
  resolvConfPath: string;
  /** nftables table name. */
  firewallTable: string;
  dnsPort: number;
  log: Logger;
  /** The daemon's event log: network create and destroy are emitted here. */
  events?: EventLog;
}

/** Who is on a network: the container engine's answer, set once it is up (setContainersLookup). */
type Users = { of: ContainersOf };

/** A running container: its process (for its namespace) and its /etc files. */
type Running = { pid: number; etc: EtcPaths };

export class HostNetworks {
  private readonly overlay: OverlayState;
  private readonly attachments: ClusterAttachments;
  private readonly endpoints: ContainerEndpoints;
  private readonly loopback: LoopbackProxy;

  private constructor(
    private readonly opts: HostNetworksOptions,
    private readonly table: NetworkTable,
    private readonly dns: ContainerDns,
    private readonly bridges: BridgeNetworks,
    private readonly ports: PublishedPorts,
    private readonly users: Users,
  ) {
    this.loopback = new LoopbackProxy(opts.log.child({ module: "loopback-proxy" }));
    this.overlay = new OverlayState({
      dir: opts.dir,
      firewallTable: opts.firewallTable,
      log: opts.log,
      bridges,
      dns,
      afterApply: (state, self) => {
        this.attachments.detachUnused(state, self);
        void this.syncLoopback().catch(() => undefined);
      },
    });
    this.attachments = new ClusterAttachments(table, this.overlay, (id) => users.of(id), opts.log);
    this.endpoints = new ContainerEndpoints(table, this.overlay, this.attachments);
  }

  static async open(opts: HostNetworksOptions): Promise<HostNetworks> {
    const file = new NetworkFile(opts.dir);
    const table = new NetworkTable(await file.load());
    const dns = new ContainerDns(table, opts);
    const users: Users = { of: () => [] };
    /** A container as a clash message names it: "web (0123456789ab)". */
    const nameOf = (containerId: string): string => {
      for (const n of table.all())
        for (const c of users.of(n.record.Id))
          if (c.id === containerId) return `${c.name} (${containerId.slice(0, 12)})`;
      return containerId.slice(0, 12);
    };
    const ports = new PublishedPorts(nameOf);
    const bridges = await BridgeNetworks.open(opts, {
      table,
      file,
      dns,
      portsInForce: () => ports.inForce(),
      containersOf: (id) => users.of(id),
    });
    const networks = new HostNetworks(opts, table, dns, bridges, ports, users);
    await dns.hostResolvConf();
    return networks;
  }

  setContainersLookup(fn: ContainersOf): void {
    this.users.of = fn;
  }

  /** The daemon sets this while the node is in a cluster, and clears it when it leaves. */
  setClusterAttacher(a: ClusterAttacher | undefined): void {
    this.attachments.set(a);
  }

  // ---- networks -------------------------------------------------------------------------

  create(req: CreateNetworkRequest): Promise<{ Id: string; Warning: string }> {
    return this.bridges.create(req);
  }

  get(ref: string): NetworkRecord {
    return this.bridges.get(ref);
  }

  find(ref: string): NetworkRecord | undefined {
    return this.bridges.find(ref);
  }

  list(): NetworkRecord[] {
    return this.bridges.list();
  }

  attached(networkId: string): AttachedContainer[] {
    return this.users.of(networkId);
  }

  remove(ref: string): Promise<void> {
    return this.bridges.remove(ref);
  }

  /** Remove every user network no container uses (`filter` picks which are candidates). */
  prune(filter: (r: NetworkRecord) => boolean): Promise<string[]> {
    return this.bridges.prune(filter);
  }

  // ---- containers: create ---------------------------------------------------------------

  /**
   * The NetworkSettings a new container starts with: the networks it asked for (by NetworkMode
   * and NetworkingConfig), checked now so that a bad request creates nothing.
   */
  settingsForCreate(
    mode: string | undefined,
    endpoints: Record<string, Partial<EndpointSettings>> | null | undefined,
    ports: {
      bindings: Record<string, PortBinding[] | null> | null | undefined;
      exposed: Record<string, object> | undefined;
      publishAll: boolean;
    },
    selfId: string,
    /** A service task's container: its overlay addresses come from the managers with it. */
    task = false,
  ): NetworkSettings {
    this.ports.checkFree(portRequests(ports.bindings, ports.exposed, ports.publishAll), selfId);
    return this.endpoints.settingsFor(mode, endpoints, task);
  }

  /**
   * After settingsForCreate, for a container on attachable overlay networks: this node must be
   * connected to the cluster's leader (waiting a moment for a session being opened), or the
   * create is refused with a 503 rather than leaving a container that cannot start.
   */
  checkClusterReachable(settings: NetworkSettings, task = false): Promise<void> {
    return this.attachments.checkReachable(settings, task);
  }

  /**
   * Before settingsForCreate: a network this node knows neither locally nor from the cluster's
   * state may have been made on a manager a moment ago (the state reaches every node within
   * milliseconds); wait up to `waitMs` for an applied state that names it, then settle.
   */
  async awaitClusterNetworks(
    mode: string | undefined,
    endpoints: Record<string, unknown> | null | undefined,
    task = false,
    waitMs = 3000,
  ): Promise<void> {
    if (task || containerModeTarget(mode) !== undefined) return;
    const refs = [primaryNetworkName(mode), ...Object.keys(endpoints ?? {})].filter(
      (r) => r !== "default" && r !== DEFAULT_NETWORK,
    );
    await this.attachments.awaitNetworks(refs, waitMs);
  }

  // ---- containers: start and exit ---------------------------------------------------------

  /**
   * Before `runtime create`: addresses for each network, the host ports, the DNS names, and the
   * /etc files. Fills rec.NetworkSettings (the caller saves the record before wiring, so a crash
   * cannot lose what is held). On failure everything taken is given back.
   */
  async prepare(rec: ContainerRecord, etc: EtcPaths): Promise<void> {
    const mode = rec.HostConfig.NetworkMode;
    if (mode === "host") return this.dns.writeHostModeFiles(rec, etc);
    if (containerModeTarget(mode) !== undefined) return;
    const settings = (rec.NetworkSettings ??= { Networks: {}, Ports: {}, SandboxKey: "" });
    try {
      // Addresses on attachable overlay networks come from the leader, and the network itself
      // once this host has applied a state naming it there.
      const given = await this.attachments.attach(rec, this.attachments.endpointsOf(rec));
      await this.bridges.serial(async () => {
        this.endpoints.allocate(rec, settings, given);
        await this.bridges.persist();
        await this.ports.allocate(rec, settings);
      });
      this.dns.register(rec);
      if (this.ports.holds(rec.Id)) {
        await this.syncLoopback(rec.Id);
        await this.bridges.applySets();
      }
      await this.dns.writeEtcFiles(rec, etc);
    } catch (e) {
      await this.release(rec);
      throw e;
    }
  }

  /** After a rename: the old name stops resolving at once. */
  renamed(rec: ContainerRecord): void {
    if (rec.State.Status === "running" || rec.State.Status === "paused") this.dns.register(rec);
  }

  /** Between `runtime create` and `start`: veths from the bridges into the container's namespace. */
  async wire(rec: ContainerRecord, pid: number): Promise<void> {
    await wireVeths(pid, this.endpoints.vethPlans(rec));
    if (rec.NetworkSettings) rec.NetworkSettings.SandboxKey = `/proc/${pid}/ns/net`;
    // Its VIPs balance before its process runs.
    await this.overlay.join(rec, `/proc/${pid}/ns/net`);
    this.attachments.settled(rec.Id);
  }

  /**
   * After the container's run ended (or a start failed): give back addresses and ports, drop
   * its names and rules. The veths went with the namespace. Idempotent.
   */
  async release(rec: ContainerRecord): Promise<void> {
    this.dns.forget(rec.Id);
    this.attachments.settled(rec.Id);
    this.overlay.leave(rec.Id);
    const hadPorts = this.ports.drop(rec.Id);
    if (hadPorts) await this.syncLoopback().catch(() => undefined);
    if (!rec.NetworkSettings) return;
    if (this.endpoints.release(rec)) await this.bridges.persist();
    // Not awaited: taking elements out of an nftables map waits for the kernel's RCU grace
    // period (about 10 ms), which would hold up every exit and removal. Syncs stay ordered,
    // so a later start that takes the same port is applied after this one.
    if (hadPorts)
      void this.bridges
        .applySets()
        .catch((e: unknown) =>
          this.opts.log.error(
            { id: rec.Id, err: messageOf(e) },
            "removing a container's published ports failed",
          ),
        );
  }

  // ---- connect / disconnect -----------------------------------------------------------------

  /**
   * Join a network. A running container (pid given) gets its veth, address and names at once
   * and its /etc/hosts rewritten in place; a stopped one joins at its next start.
   */
  async connect(
    rec: ContainerRecord,
    networkRef: string,
    request: Partial<EndpointSettings> | undefined,
    running: Running | undefined,
  ): Promise<void> {
    const task = isTaskContainer(rec);
    const record = this.endpoints.networkFor(networkRef, task);
    const mode = rec.HostConfig.NetworkMode;
    if (
      mode === "host" ||
      mode === "none" ||
      containerModeTarget(mode) !== undefined ||
      (record.Driver !== "bridge" && record.Driver !== "overlay")
    )
      throw invalid(
        `container ${rec.Name} cannot be connected to ${record.Name}: its network mode is ${mode || record.Name}`,
      );
    const settings = (rec.NetworkSettings ??= { Networks: {}, Ports: {}, SandboxKey: "" });
    if (settings.Networks[record.Name])
      throw forbidden(`endpoint with name ${rec.Name} already exists in network ${record.Name}`);
    this.endpoints.checkRequest(record, request, task);
    if (running && !task && this.overlay.isClusterNetwork(record.Id))
      await this.checkClusterReachable({
        Networks: { [record.Name]: emptyEndpoint(record.Id) },
        Ports: {},
        SandboxKey: "",
      });
    const ep = emptyEndpoint(record.Id, request);
    settings.Networks[record.Name] = ep;
    if (!running) return;
    let n: Network | undefined;
    try {
      const given = await this.attachments.attach(rec, this.attachments.endpointsOf(rec, record.Name));
      const net = (n = this.table.get(record.Id));
      const index = Object.keys(settings.Networks).length - 1;
      await this.bridges.serial(async () => {
        this.endpoints.allocateOn(rec.Id, net, ep, index, settings, given.get(record.Id));
        await this.bridges.persist();
      });
      await wireVeths(running.pid, this.endpoints.vethPlans(rec, net.record.Name));
      this.dns.register(rec);
      await this.dns.writeEtcFiles(rec, running.etc);
      await this.overlay.join(rec, `/proc/${running.pid}/ns/net`);
      this.attachments.settled(rec.Id);
    } catch (e) {
      this.attachments.settled(rec.Id);
      this.endpoints.releaseAddress(rec.Id, ep, n);
      if (ep.AttachmentID) this.attachments.detach(ep.AttachmentID);
      const hostIf = settings.HostInterfaces?.[record.Name];
      if (hostIf) await deleteLink(hostIf).catch(() => undefined);
      delete settings.Networks[record.Name];
      delete settings.HostInterfaces?.[record.Name];
      this.dns.register(rec);
      await this.bridges.persist().catch(() => undefined);
      throw e;
    }
  }

  async disconnect(rec: ContainerRecord, networkRef: string, running: Running | undefined): Promise<void> {
    const n = this.table.find(networkRef);
    const settings = rec.NetworkSettings;
    const name = n?.record.Name ?? this.overlay.clusterNetwork(networkRef)?.name ?? networkRef;
    const ep = settings?.Networks[name];
    if (!settings || !ep) throw notFound(`container ${rec.Name} is not connected to network ${networkRef}`);
    const hostIf = settings.HostInterfaces?.[name];
    if (running && hostIf) await deleteLink(hostIf);
    if (ep.AttachmentID) this.attachments.detach(ep.AttachmentID);
    if (this.endpoints.releaseAddress(rec.Id, ep, n)) await this.bridges.persist();
    delete settings.Networks[name];
    delete settings.HostInterfaces?.[name];
    if (this.ports.dropAddress(rec.Id, ep.IPAddress)) {
      await this.syncLoopback().catch(() => undefined);
      await this.bridges.applySets();
    }
    if (running) {
      this.dns.register(rec);
      await this.dns.writeEtcFiles(rec, running.etc);
      await this.overlay.join(rec, `/proc/${running.pid}/ns/net`);
    }
  }

  // ---- daemon start ---------------------------------------------------------------------------

  /**
   * Make the kernel and the pools match the containers that still run: addresses of containers
   * that are gone are freed, their names, ports and leftover veths dropped, bridges of removed
   * networks deleted, and the firewall table rewritten whole; then the saved cluster state is
   * applied again.
   */
  async reconcile(running: ContainerRecord[]): Promise<void> {
    this.endpoints.restore(running);
    this.ports.clear();
    for (const rec of running) {
      this.dns.register(rec);
      if (rec.State.Pid > 0) this.overlay.track(rec, `/proc/${rec.State.Pid}/ns/net`);
      this.ports.restore(rec);
    }
    await this.bridges.persist();
    await this.bridges.removeStrayVeths(
      new Set(running.flatMap((r) => Object.values(r.NetworkSettings?.HostInterfaces ?? {}))),
    );
    await this.bridges.applyFirewall();
    await this.syncLoopback().catch(() => undefined);
    await this.overlay.reapplySaved();
  }

  // ---- the loopback proxy ----------------------------------------------------------------------

  /**
   * The relays of published ports for the host's own loopback: every TCP and UDP port published
   * on all addresses (on 127.0.0.1) or on a 127/8 address, and the routing mesh's ports, which go
   * through this node's ingress address so the mesh balances them as it does any connection.
   * A relay that cannot be opened for `owner`'s ports is thrown (its start fails); others are logged.
   */
  private async syncLoopback(owner?: string): Promise<void> {
    const routes: Array<LoopbackRoute & { owner?: string }> = [];
    const mesh = this.overlay.mesh;
    for (const p of mesh?.ports ?? [])
      routes.push({
        protocol: p.protocol,
        listenIp: "127.0.0.1",
        port: p.publishedPort,
        targetIp: mesh?.address ?? "",
        targetPort: p.publishedPort,
      });
    for (const [id, list] of this.ports.byContainer())
      for (const p of list) {
        const wildcard = p.hostIp === "" || p.hostIp === "0.0.0.0";
        if (!wildcard && !isLoopback(p.hostIp)) continue;
        routes.push({
          owner: id,
          protocol: p.protocol,
          listenIp: wildcard ? "127.0.0.1" : p.hostIp,
          port: p.hostPort,
          targetIp: p.containerIp,
          targetPort: p.containerPort,
        });
      }
    const failures = await this.loopback.sync(routes);
    let mine: Error | undefined;
    for (const f of failures) {
      const route = f.route as LoopbackRoute & { owner?: string };
      if (owner !== undefined && route.owner === owner) mine ??= f.error;
      else
        this.opts.log.warn(
          { port: route.port, protocol: route.protocol, err: messageOf(f.error) },
          "a published port is not reachable from this host's loopback",
        );
    }
    if (mine) throw mine;
  }

  // ---- the cluster's overlay networks ----------------------------------------------------------

  /**
   * Make this host match the cluster's NetworkState (overlay-state.ts). Calls made while one
   * runs collapse into one apply of the newest state; `overlayVersion` then says which.
   */
  applyOverlay(state: NetworkState, self: OverlaySelf): Promise<void> {
    return this.overlay.apply(state, self);
  }

  /** The version of the last NetworkState applied in full (0: none yet). */
  get overlayVersion(): number {
    return this.overlay.version;
  }

  async close(): Promise<void> {
    await this.loopback.close();
    await this.dns.close();
  }
}
