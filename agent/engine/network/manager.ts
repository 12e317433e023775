// The network manager: networks and what containers hold on them (addresses, veths, published
// ports, DNS names). The container engine calls it at create (check the request), between
// `runtime create` and `start` (allocate and wire), after an exit (release), and at daemon start
// (reconcile what a crash left behind). It never reads the container store itself: the engine
// hands it the records, so network/ does not depend on container/ code.
import { hostname as hostHostname } from "node:os";
import { join } from "node:path";
import { readFile } from "node:fs/promises";
import { readJsonIfExists, writeJsonAtomic } from "../../../shared/fsutil.js";
import type { NetworkState, OverlayNetwork } from "../../../shared/network-state.js";
import {
  conflict,
  forbidden,
  invalid,
  isShoalError,
  messageOf,
  notFound,
  unavailable,
} from "../../../shared/errors.js";
import { newId } from "../../../shared/ids.js";
import type { Logger } from "../../../shared/logging.js";
import type { ContainerRecord, EndpointSettings, NetworkSettings, PortBinding } from "../container/types.js";
import { DnsRecords } from "../dns/records.js";
import { clusterNames } from "../dns/cluster.js";
import { DnsServer } from "../dns/server.js";
import { UpstreamResolver, type UpstreamServer } from "../dns/upstream.js";
import { renderHostname, renderHosts, writeInPlace } from "../dns/etc-files.js";
import {
  containerResolvConf,
  readHostResolvConf,
  renderResolvConf,
  type ResolvConf,
} from "../dns/resolv-conf.js";
import { contains, parseIp, parseSubnet } from "./cidr.js";
import {
  ATTACH_WAIT_MS,
  CONNECT_WAIT_MS,
  TASK_LABEL,
  type Attachment,
  type ClusterAttacher,
} from "./cluster-attach.js";
import { FirewallApplier, type FirewallPort, type FirewallState } from "./firewall.js";
import {
  deleteLink,
  enableIpForward,
  ensureBridge,
  listLinks,
  macForAddress,
  wireVeths,
  type VethPlan,
} from "./host-links.js";
import {
  newBridgeNetwork,
  newOverlayNetwork,
  NetworkTable,
  predefinedNetworks,
  updateOverlayNetwork,
  type Network,
} from "./networks.js";
import {
  applyLbTable,
  droppedBackends,
  forgetFlowsFrom,
  lbTableFor,
  OverlayDriver,
  type OverlaySelf,
} from "./overlay/driver.js";
import { vipBalances } from "./overlay/rules.js";
import { OVERLAY_MTU } from "./overlay/names.js";
import {
  clash,
  ephemeralRange,
  portRequests,
  probeHostPort,
  type PortRequest,
  type PublishedPort,
} from "./ports.js";
import { NetworkFile } from "./store.js";
import { DEFAULT_NETWORK, type CreateNetworkRequest, type NetworkRecord } from "./types.js";

/** Host-side veths and user bridges carry these prefixes; anything else is not ours. */
export const VETH_PREFIX = "shv";
export const BRIDGE_PREFIX = "shb-";

export interface NetworkManagerOptions {
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
}

/** The files a container gets as /etc/hosts, /etc/resolv.conf and /etc/hostname. */
export interface EtcPaths {
  hosts: string;
  resolvConf: string;
  hostname: string;
}

/** What a network's inspect lists per container. */
export interface AttachedContainer {
  id: string;
  name: string;
  endpoint: EndpointSettings;
}

type ContainersOf = (networkId: string) => AttachedContainer[];

/** A running container on overlay networks: where its namespace is, for its LB table. */
interface OverlayMember {
  netns: string;
  networks: Set<string>;
}

/** The last cluster state applied, kept so a restarted daemon re-applies it at once. */
interface SavedOverlayState {
  state: NetworkState;
  self: OverlaySelf;
}

/** What an endpoint holds only while its container runs; cleared at every exit. */
function unwired(): Pick<
  EndpointSettings,
  "EndpointID" | "Gateway" | "IPAddress" | "IPPrefixLen" | "MacAddress" | "DNSNames"
> {
  return { EndpointID: "", Gateway: "", IPAddress: "", IPPrefixLen: 0, MacAddress: "", DNSNames: null };
}

function emptyEndpoint(networkId: string, requested?: Partial<EndpointSettings>): EndpointSettings {
  return {
    IPAMConfig: requested?.IPAMConfig ?? null,
    Aliases: requested?.Aliases ?? null,
    NetworkID: networkId,
    ...unwired(),
  };
}

/** An overlay network named while this node is in no cluster (it left, or is still joining). */
function notInCluster(name: string): Error {
  return invalid(
    `network ${name} is a cluster overlay network and this node is not part of a cluster: join the cluster (docker swarm join) to use it, or use a local network`,
  );
}

/** A service task's container (the worker labels it): its overlay addresses come with the task. */
function isTaskContainer(rec: ContainerRecord): boolean {
  return (rec.Config.Labels ?? {})[TASK_LABEL] !== undefined;
}

/** The network a NetworkMode names, Docker's way: "", "default" → bridge. */
export function primaryNetworkName(mode: string | undefined): string {
  return !mode || mode === "default" ? DEFAULT_NETWORK : mode;
}

export function containerModeTarget(mode: string | undefined): string | undefined {
  return mode?.startsWith("container:") ? mode.slice("container:".length) : undefined;
}

export class NetworkManager {
  private readonly records = new DnsRecords();
  private readonly firewall: FirewallApplier;
  private readonly dns: DnsServer;
  /** Ports in force per running container. */
  private readonly ports = new Map<string, Array<PublishedPort & { containerIp: string }>>();
  private containersOf: ContainersOf = () => [];
  private firewallWritten = false;
  private readonly upstream: UpstreamResolver;
  private upstreams: UpstreamServer[] = [];
  /** Serialises allocation so two starts cannot take the same address or port. */
  private allocating: Promise<unknown> = Promise.resolve();
  private readonly overlay: OverlayDriver;
  /** The newest cluster state applied in full, and the one waiting to be (coalesced). */
  private overlayState: SavedOverlayState | undefined;
  private overlayPending: { next: SavedOverlayState; waiters: Array<(e?: unknown) => void> } | undefined;
  private overlayRunning = false;
  /** The version of the last NetworkState applied in full (0: none yet). */
  overlayVersion = 0;
  private readonly overlayMembers = new Map<string, OverlayMember>();
  /** The LB table text last written into each member's namespace. */
  private readonly lbApplied = new Map<string, string>();
  /** The VIP backends last written into each member's namespace (whose flows go when they leave). */
  private readonly lbBackends = new Map<string, Array<{ backends: string[] }>>();
  /** Serialises LB writes into containers' namespaces. */
  private lbQueue: Promise<unknown> = Promise.resolve();
  /** The leader's ResourceAllocator while this node is in a cluster (plain containers on overlays). */
  private attacher: ClusterAttacher | undefined;
  /**
   * Containers between asking for attachments and running (or giving up): the sweep of unused
   * attachments leaves theirs alone. Running ones are `overlayMembers`.
   */
  private readonly attaching = new Set<string>();
  /** Attachments being given back. */
  private readonly detaching = new Set<string>();
  /** Called after every applied network state (starts waiting for their attachment). */
  private readonly overlayApplied = new Set<() => void>();

  private constructor(
    private readonly opts: NetworkManagerOptions,
    private readonly table: NetworkTable,
    private readonly file: NetworkFile,
  ) {
    this.firewall = new FirewallApplier(opts.firewallTable);
    this.overlay = new OverlayDriver({ firewallTable: opts.firewallTable });
    this.upstream = new UpstreamResolver(() => this.upstreams);
    this.dns = new DnsServer({
      records: this.records,
      upstream: this.upstream,
      log: opts.log.child({ module: "dns" }),
    });
  }

  /**
   * The host's resolv.conf, read at start and again at every container start (cheap, and a
   * changed file is picked up without a restart). Our own gateways never become upstreams:
   * that would make the daemon forward to itself.
   */
  private async hostResolvConf(): Promise<ResolvConf> {
    const conf = await readHostResolvConf(this.opts.resolvConfPath);
    const gateways = new Set(this.table.bridges().map((n) => n.pool?.state.gateway));
    this.upstreams = conf.nameservers
      .filter((a) => !gateways.has(a))
      .map((address) => ({ address, port: 53 }));
    this.records.setSearchDomains(conf.search);
    return conf;
  }

  static async open(opts: NetworkManagerOptions): Promise<NetworkManager> {
    const file = new NetworkFile(opts.dir);
    const table = new NetworkTable(await file.load());
    const m = new NetworkManager(opts, table, file);
    const made = await predefinedNetworks(table, { bridgeName: opts.bridgeName, bridgeIp: opts.bridgeIp });
    for (const n of made) table.add(n);
    if (made.length > 0) await m.persist();
    if (opts.ipForward && (await enableIpForward()))
      opts.log.info("enabled IPv4 forwarding (net.ipv4.ip_forward=1), as dockerd does");
    // Overlay bridges are the overlay driver's: the first apply (at reconcile) makes them.
    for (const n of table.bridges()) if (n.record.Driver === "bridge") await m.bringUp(n);
    await m.hostResolvConf();
    return m;
  }

  setContainersLookup(fn: ContainersOf): void {
    this.containersOf = fn;
  }

  /** The daemon sets this while the node is in a cluster, and clears it when it leaves. */
  setClusterAttacher(a: ClusterAttacher | undefined): void {
    this.attacher = a;
  }

  private persist(): Promise<void> {
    return this.file.save(this.table.records());
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.allocating.then(fn, fn);
    this.allocating = next.catch(() => undefined);
    return next;
  }

  private async bringUp(n: Network): Promise<void> {
    const pool = n.pool;
    const bridge = n.record.BridgeName;
    if (!pool || !bridge) return;
    await ensureBridge(bridge, `${pool.state.gateway}/${parseSubnet(pool.state.subnet).prefix}`);
    try {
      await this.dns.listen(pool.state.gateway, this.opts.dnsPort);
    } catch (e) {
      // Containers then fall back to no name resolution; the network itself still works.
      this.opts.log.warn(
        { network: n.record.Name, err: messageOf(e) },
        "cannot serve DNS on the network's gateway",
      );
    }
  }

  private firewallState(): FirewallState {
    const networks = this.table.bridges().map((n) => ({
      bridge: n.record.BridgeName as string,
      subnet: n.record.IPAM.Config[0].Subnet,
      internal: n.record.Internal,
    }));
    const ports: FirewallPort[] = [];
    for (const list of this.ports.values()) {
      for (const p of list) {
        ports.push({
          protocol: p.protocol,
          hostIp: p.hostIp,
          hostPort: p.hostPort,
          containerIp: p.containerIp,
          containerPort: p.containerPort,
        });
      }
    }
    return { networks, ports };
  }

  /** Until the first bridge exists nothing is written, so a daemon without networks leaves nftables alone. */
  private applyFirewall(): Promise<void> {
    if (!this.firewallWritten && this.table.bridges().length === 0) return Promise.resolve();
    this.firewallWritten = true;
    return this.firewall.update(() => this.firewallState());
  }

  /** Published ports changed: one small transaction on the port maps. */
  private applyPorts(): Promise<void> {
    if (!this.firewallWritten && this.table.bridges().length === 0) return Promise.resolve();
    this.firewallWritten = true;
    return this.firewall.updatePorts(() => this.firewallState());
  }

  // ---- networks -------------------------------------------------------------------------

  async create(req: CreateNetworkRequest): Promise<{ Id: string; Warning: string }> {
    return this.serial(async () => {
      const n = await newBridgeNetwork(this.table, req, (id) => `${BRIDGE_PREFIX}${id.slice(0, 11)}`);
      this.table.add(n);
      try {
        await this.bringUp(n);
        await this.persist();
        await this.applyFirewall();
      } catch (e) {
        this.table.delete(n.record.Id);
        await this.dns.unlisten(n.pool?.state.gateway ?? "").catch(() => undefined);
        await deleteLink(n.record.BridgeName as string).catch(() => undefined);
        await this.persist().catch(() => undefined);
        throw e;
      }
      this.opts.log.info({ network: n.record.Name, id: n.record.Id }, "network created");
      return { Id: n.record.Id, Warning: "" };
    });
  }

  get(ref: string): NetworkRecord {
    return structuredClone(this.table.get(ref).record);
  }

  find(ref: string): NetworkRecord | undefined {
    const n = this.table.find(ref);
    return n ? structuredClone(n.record) : undefined;
  }

  list(): NetworkRecord[] {
    return this.table.records().map((r) => structuredClone(r));
  }

  attached(networkId: string): AttachedContainer[] {
    return this.containersOf(networkId);
  }

  async remove(ref: string): Promise<void> {
    const n = this.table.get(ref);
    if (n.record.Name === DEFAULT_NETWORK || n.record.Name === "host" || n.record.Name === "none")
      throw forbidden(`${n.record.Name} is a pre-defined network and cannot be removed`);
    if (n.record.Driver === "overlay")
      throw forbidden(
        `${n.record.Name} is a cluster network: remove it on a manager (network rm), every node then drops it`,
      );
    const users = this.containersOf(n.record.Id);
    if (users.length > 0) {
      throw conflict(
        `error while removing network: network ${n.record.Name} id ${n.record.Id} has active endpoints (${users
          .map((u) => u.name)
          .join(", ")}): disconnect or remove them first`,
      );
    }
    await this.serial(async () => {
      // The bridge goes first: a crash in between leaves a record whose bridge the next start
      // makes again, never a bridge nobody knows about.
      if (n.pool) await this.dns.unlisten(n.pool.state.gateway).catch(() => undefined);
      if (n.record.BridgeName) await deleteLink(n.record.BridgeName);
      this.table.delete(n.record.Id);
      await this.persist();
      await this.applyFirewall();
    });
    this.opts.log.info({ network: n.record.Name, id: n.record.Id }, "network removed");
  }

  /** Remove every user network no container uses (`filter` picks which are candidates). */
  async prune(filter: (r: NetworkRecord) => boolean): Promise<string[]> {
    const removed: string[] = [];
    for (const n of this.table.all()) {
      const r = n.record;
      if (r.Name === DEFAULT_NETWORK || r.Name === "host" || r.Name === "none") continue;
      if (r.Driver === "overlay") continue;
      if (!filter(r) || this.containersOf(r.Id).length > 0) continue;
      await this.remove(r.Id);
      removed.push(r.Name);
    }
    return removed;
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
    const settings: NetworkSettings = { Networks: {}, Ports: {}, SandboxKey: "" };
    const requests = portRequests(ports.bindings, ports.exposed, ports.publishAll);
    this.checkPortsFree(requests, selfId);
    if (containerModeTarget(mode) !== undefined) {
      if (Object.keys(endpoints ?? {}).length > 0)
        throw invalid("conflicting options: a container in another container's network cannot join networks");
      return settings;
    }
    const primary = this.networkForContainer(this.defaultedMode(mode), task);
    const asked = endpoints ?? {};
    const requestOf = (n: NetworkRecord): Partial<EndpointSettings> | undefined =>
      asked[n.Name] ??
      asked[n.Id] ??
      (n.Name === DEFAULT_NETWORK ? asked.default : undefined) ??
      (mode ? asked[mode] : undefined);
    const chosen: NetworkRecord[] = [primary];
    for (const ref of Object.keys(asked)) {
      const n = this.networkForContainer(this.defaultedMode(ref), task);
      if (!chosen.some((c) => c.Id === n.Id)) chosen.push(n);
    }
    const joinable = (n: NetworkRecord): boolean => n.Driver === "bridge" || n.Driver === "overlay";
    if (chosen.length > 1 && chosen.some((n) => !joinable(n))) {
      throw invalid(
        `container cannot be connected to network "${chosen.find((n) => !joinable(n))?.Name}" and other networks`,
      );
    }
    for (const n of chosen) {
      const req = requestOf(n);
      this.checkEndpointRequest(n, req, task);
      settings.Networks[n.Name] = emptyEndpoint(n.Id, req);
    }
    return settings;
  }

  /**
   * After settingsForCreate, for a container on attachable overlay networks: this node must be
   * connected to the cluster's leader (waiting a moment for a session being opened), or the
   * create is refused with a 503 rather than leaving a container that cannot start.
   */
  async checkClusterReachable(settings: NetworkSettings, task = false): Promise<void> {
    if (task) return;
    const names = Object.entries(settings.Networks)
      .filter(([, ep]) => this.isClusterNetwork(ep.NetworkID))
      .map(([name]) => name);
    if (names.length === 0) return;
    const a = this.attacher;
    if (!a) throw notInCluster(names[0]);
    if (!(await a.connected(CONNECT_WAIT_MS)))
      throw unavailable(
        `cannot attach to overlay network ${names[0]}: this node has no connection to the cluster's leader, which gives the container its address; try again when the managers are reachable (docker node ls on a manager)`,
      );
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
    if (task || !this.attacher || containerModeTarget(mode) !== undefined) return;
    const refs = [primaryNetworkName(mode), ...Object.keys(endpoints ?? {})].filter(
      (r) => r !== "default" && r !== DEFAULT_NETWORK,
    );
    const known = (): boolean =>
      refs.every((r) => {
        try {
          return this.table.find(r) !== undefined || this.clusterNetwork(r) !== undefined;
        } catch {
          return true; // ambiguous: settingsForCreate says so
        }
      });
    if (known()) return;
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (!known()) return;
        done();
      };
      const done = (): void => {
        clearTimeout(timer);
        this.overlayApplied.delete(check);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      this.overlayApplied.add(check);
    });
  }

  /** The cluster's overlay network `ref` names (id, name or unique id prefix), from this host's copy of the state. */
  private clusterNetwork(ref: string): OverlayNetwork | undefined {
    const nets = this.overlayState?.state.networks ?? [];
    const exact = nets.find((n) => n.id === ref) ?? nets.find((n) => n.name === ref);
    if (exact || ref === "") return exact;
    const prefixed = nets.filter((n) => n.id.startsWith(ref));
    return prefixed.length === 1 ? prefixed[0] : undefined;
  }

  private isClusterNetwork(id: string): boolean {
    return (
      this.table.find(id)?.record.Driver === "overlay" ||
      this.overlayState?.state.networks.some((n) => n.id === id) === true
    );
  }

  /**
   * The network a container names. A service task joins networks this host has (an overlay
   * shows up when the managers' state puts this node on it). A plain container may also name
   * a cluster overlay network this host does not take part in yet, if it is attachable: it
   * joins it at start (attachToCluster).
   */
  private networkForContainer(ref: string, task: boolean): NetworkRecord {
    if (task) return this.table.get(ref).record;
    const local = this.table.find(ref);
    if (local && local.record.Driver !== "overlay") return local.record;
    const net = this.clusterNetwork(ref);
    if (!net && !local)
      throw notFound(
        this.attacher
          ? `network ${ref} not found`
          : `network ${ref} not found: create it (docker network create ${ref}); a cluster's overlay network can be used only on a node that joined the cluster (docker swarm join)`,
      );
    const name = net?.name ?? local?.record.Name ?? ref;
    const ingress = net ? net.ingress : local?.record.Ingress === true;
    if (ingress)
      throw forbidden(
        `network ${name} is the routing mesh's network and is not manually attachable: publish a service's ports instead, or use an --attachable overlay network`,
      );
    if (net ? !net.attachable : !local?.record.Attachable)
      throw forbidden(
        `network ${name} is not manually attachable: recreate it with \`docker network create -d overlay --attachable ${name}\`, or run the container as a service (docker service create --network ${name})`,
      );
    if (!this.attacher) throw notInCluster(name);
    if (local) return local.record;
    return {
      Name: net!.name,
      Id: net!.id,
      Created: "",
      Scope: "swarm",
      Driver: "overlay",
      EnableIPv6: false,
      IPAM: { Driver: "default", Options: null, Config: [{ Subnet: net!.subnet, Gateway: "" }] },
      Internal: false,
      Attachable: true,
      Ingress: false,
      ConfigOnly: false,
      Options: {},
      Labels: {},
    };
  }

  /** "" and "default" name the default bridge, or "none" when the daemon runs without one. */
  private defaultedMode(mode: string | undefined): string {
    const name = primaryNetworkName(mode);
    return name === DEFAULT_NETWORK && !mode?.startsWith(DEFAULT_NETWORK) && !this.table.find(DEFAULT_NETWORK)
      ? "none"
      : name;
  }

  private checkEndpointRequest(
    n: NetworkRecord,
    req: Partial<EndpointSettings> | undefined,
    task: boolean,
  ): void {
    const userDefined = (n.Driver === "bridge" && n.Name !== DEFAULT_NETWORK) || n.Driver === "overlay";
    // The managers decide every address on an overlay network; a local pick could clash with a
    // task on another host. A task comes with its address; a plain container asks at start.
    if (n.Driver === "overlay" && task && !req?.IPAMConfig?.IPv4Address)
      throw invalid(
        `network ${n.Name} is a cluster overlay network: a container joins it with the address the managers assigned (IPAMConfig.IPv4Address)`,
      );
    if (n.Driver === "overlay" && !task) {
      // --ip on an attachable network: the managers give it if it is free (checked at start).
      const ip = req?.IPAMConfig?.IPv4Address;
      const subnet = n.IPAM.Config[0]?.Subnet;
      if (ip && subnet && !contains(parseSubnet(subnet), parseIp(ip, "--ip address")))
        throw invalid(
          `--ip ${ip} is not an address of network ${n.Name}'s subnet ${subnet}: choose one inside it`,
        );
      return;
    }
    if ((req?.Aliases?.length ?? 0) > 0 && !userDefined)
      throw invalid(
        `network-scoped alias is supported only for containers in user defined networks (not ${n.Name})`,
      );
    const ip = req?.IPAMConfig?.IPv4Address;
    if (ip) {
      if (!userDefined)
        throw invalid(`user specified IP address is supported on user defined networks only (not ${n.Name})`);
      const pool = this.table.get(n.Id).pool;
      if (!pool) throw invalid(`network ${n.Name} has no address pool`);
      // Throws 400 for an address outside the subnet; a held address is a clash at start.
      pool.allocate("probe", ip);
      pool.release(ip);
    }
  }

  private activePorts(exceptId: string): Array<{ id: string; port: PublishedPort }> {
    const out: Array<{ id: string; port: PublishedPort }> = [];
    for (const [id, list] of this.ports) if (id !== exceptId) for (const port of list) out.push({ id, port });
    return out;
  }

  /** 409 when a fixed host port is already published by another running container. */
  private checkPortsFree(requests: PortRequest[], selfId: string): void {
    const active = this.activePorts(selfId);
    for (const r of requests) {
      if (r.hostPorts[0] === 0 || r.hostPorts[0] !== r.hostPorts[1]) continue;
      const want = { protocol: r.protocol, hostIp: r.hostIp, hostPort: r.hostPorts[0] };
      const holder = active.find((a) => clash(a.port, want));
      if (holder) {
        throw conflict(
          `Bind for ${r.hostIp || "0.0.0.0"}:${want.hostPort}/${r.protocol} failed: port is already allocated to container ${this.nameOf(holder.id)}: stop it or pick another host port`,
        );
      }
    }
  }

  private nameOf(containerId: string): string {
    for (const n of this.table.all())
      for (const c of this.containersOf(n.record.Id))
        if (c.id === containerId) return `${c.name} (${containerId.slice(0, 12)})`;
    return containerId.slice(0, 12);
  }

  // ---- containers: start and exit ---------------------------------------------------------

  /**
   * Before `runtime create`: addresses for each network, the host ports, the DNS names, and the
   * /etc files. Fills rec.NetworkSettings (the caller saves the record before wiring, so a crash
   * cannot lose what is held). On failure everything taken is given back.
   */
  async prepare(rec: ContainerRecord, etc: EtcPaths): Promise<void> {
    const mode = rec.HostConfig.NetworkMode;
    if (mode === "host") return this.writeHostModeFiles(rec, etc);
    if (containerModeTarget(mode) !== undefined) return;
    const settings = (rec.NetworkSettings ??= { Networks: {}, Ports: {}, SandboxKey: "" });
    try {
      // Addresses on attachable overlay networks come from the leader, and the network itself
      // once this host has applied a state naming it there.
      const given = await this.attachToCluster(rec, this.attachmentEndpoints(rec));
      await this.serial(async () => {
        this.allocateAddresses(rec, settings, given);
        await this.persist();
        await this.allocatePorts(rec, settings);
      });
      this.registerNames(rec);
      if ((this.ports.get(rec.Id)?.length ?? 0) > 0) await this.applyPorts();
      await this.writeEtcFiles(rec, etc);
    } catch (e) {
      await this.release(rec);
      throw e;
    }
  }

  private allocateAddresses(
    rec: ContainerRecord,
    settings: NetworkSettings,
    given: Map<string, string> = new Map(),
  ): void {
    let index = 0;
    settings.HostInterfaces = {};
    for (const [name, ep] of Object.entries(settings.Networks)) {
      const n = this.table.find(ep.NetworkID) ?? this.table.find(name);
      if (!n) throw notFound(`network ${name} not found: it was removed; disconnect the container from it`);
      if (n.record.Name !== name) {
        // Renamed networks are not possible, but an id recorded under a stale key is fixed here.
        delete settings.Networks[name];
        settings.Networks[n.record.Name] = ep;
      }
      if (!n.pool) continue;
      this.allocateOn(rec.Id, n, ep, index++, settings, given.get(n.record.Id));
    }
  }

  private allocateOn(
    containerId: string,
    n: Network,
    ep: EndpointSettings,
    index: number,
    settings: NetworkSettings,
    /** The address the cluster gave (attachable overlay networks). */
    given?: string,
  ): void {
    const pool = n.pool;
    if (!pool) return;
    const ip = pool.allocate(containerId, given ?? (ep.IPAMConfig?.IPv4Address || undefined));
    ep.NetworkID = n.record.Id;
    ep.EndpointID = newId();
    ep.IPAddress = ip;
    ep.IPPrefixLen = parseSubnet(pool.state.subnet).prefix;
    ep.Gateway = n.record.Internal ? "" : pool.state.gateway;
    ep.MacAddress = macForAddress(ip);
    settings.HostInterfaces ??= {};
    settings.HostInterfaces[n.record.Name] = `${VETH_PREFIX}${ep.EndpointID.slice(0, 12)}`;
    (ep as EndpointSettings & { InterfaceName?: string }).InterfaceName = `eth${index}`;
  }

  private async allocatePorts(rec: ContainerRecord, settings: NetworkSettings): Promise<void> {
    const requests = portRequests(
      rec.HostConfig.PortBindings,
      rec.Config.ExposedPorts,
      rec.HostConfig.PublishAllPorts === true,
    );
    settings.Ports = {};
    for (const key of Object.keys(rec.Config.ExposedPorts ?? {})) settings.Ports[key] = null;
    if (requests.length === 0) return;
    const target = Object.values(settings.Networks).find((e) => e.IPAddress !== "");
    if (!target) return;
    this.checkPortsFree(requests, rec.Id);
    const taken: PublishedPort[] = this.activePorts(rec.Id).map((a) => a.port);
    const mine: Array<PublishedPort & { containerIp: string }> = [];
    const [low, high] = await ephemeralRange();
    for (const r of requests) {
      const [first, last] = r.hostPorts[0] === 0 ? [low, high] : r.hostPorts;
      let chosen: number | undefined;
      let lastError: unknown;
      const span = last - first + 1;
      // Ephemeral ports start at a random point so parallel daemons rarely probe the same ones.
      const start = r.hostPorts[0] === 0 ? Math.floor(Math.random() * span) : 0;
      for (let i = 0; i < span && chosen === undefined; i++) {
        const port = first + ((start + i) % span);
        const want = { protocol: r.protocol, hostIp: r.hostIp, hostPort: port };
        if ([...taken, ...mine].some((t) => clash(t, want))) continue;
        try {
          await probeHostPort(r.protocol, r.hostIp, port);
          chosen = port;
        } catch (e) {
          lastError = e;
          if (span === 1) throw e;
        }
      }
      if (chosen === undefined) {
        throw lastError instanceof Error
          ? lastError
          : conflict(`no free host port in ${first}-${last}/${r.protocol}: pick another range`);
      }
      mine.push({
        protocol: r.protocol,
        hostIp: r.hostIp,
        hostPort: chosen,
        containerPort: r.containerPort,
        containerIp: target.IPAddress,
      });
    }
    this.ports.set(rec.Id, mine);
    for (const p of mine) {
      const key = `${p.containerPort}/${p.protocol}`;
      const list = settings.Ports[key] ?? [];
      list.push({ HostIp: p.hostIp || "0.0.0.0", HostPort: String(p.hostPort) });
      settings.Ports[key] = list;
    }
  }

  private dnsNamesOf(rec: ContainerRecord, ep: EndpointSettings): string[] {
    return [rec.Name, rec.Id.slice(0, 12), ...(ep.Aliases ?? [])];
  }

  /** DNS names on user-defined networks (the default bridge has none, as in Docker). */
  private registerNames(rec: ContainerRecord): void {
    this.records.removeContainer(rec.Id);
    for (const [name, ep] of Object.entries(rec.NetworkSettings?.Networks ?? {})) {
      if (ep.IPAddress === "") continue;
      if (name === DEFAULT_NETWORK) {
        ep.DNSNames = null;
        continue;
      }
      ep.DNSNames = this.dnsNamesOf(rec, ep);
      this.records.setEndpoint({
        containerId: rec.Id,
        networkId: ep.NetworkID,
        ip: ep.IPAddress,
        names: ep.DNSNames,
      });
    }
  }

  /** After a rename: the old name stops resolving at once. */
  renamed(rec: ContainerRecord): void {
    if (rec.State.Status === "running" || rec.State.Status === "paused") this.registerNames(rec);
  }

  private async writeEtcFiles(rec: ContainerRecord, etc: EtcPaths): Promise<void> {
    const eps = Object.entries(rec.NetworkSettings?.Networks ?? {}).filter(([, e]) => e.IPAddress !== "");
    const hostname = rec.Config.Hostname || rec.Id.slice(0, 12);
    await writeInPlace(
      etc.hosts,
      renderHosts({
        hostname,
        domainname: rec.Config.Domainname,
        addresses: eps.map(([, e]) => e.IPAddress),
        extraHosts: rec.HostConfig.ExtraHosts ?? [],
        // --add-host name:host-gateway: the host as the container reaches it (Docker's default bridge gateway).
        hostGateway: this.table.find(DEFAULT_NETWORK)?.pool?.state.gateway ?? eps[0]?.[1].Gateway,
      }),
    );
    await writeInPlace(etc.hostname, renderHostname(hostname));
    const host = await this.hostResolvConf();
    const first = eps[0];
    const userDns = rec.HostConfig.Dns ?? [];
    let conf;
    if (first && !(first[0] === DEFAULT_NETWORK && userDns.length > 0)) {
      const gateway = this.table.find(first[1].NetworkID)?.pool?.state.gateway ?? first[1].Gateway;
      conf = containerResolvConf(host, gateway, {
        search: rec.HostConfig.DnsSearch ?? undefined,
        options: rec.HostConfig.DnsOptions ?? undefined,
      });
    } else {
      conf = {
        nameservers: userDns.length > 0 ? userDns : host.nameservers,
        search: rec.HostConfig.DnsSearch?.length ? rec.HostConfig.DnsSearch : host.search,
        options: rec.HostConfig.DnsOptions?.length ? rec.HostConfig.DnsOptions : host.options,
      };
    }
    await writeInPlace(etc.resolvConf, renderResolvConf(conf));
  }

  /** --network host: the host's own files, as Docker gives them. */
  private async writeHostModeFiles(rec: ContainerRecord, etc: EtcPaths): Promise<void> {
    const hosts = await readFile("/etc/hosts", "utf8").catch(() => "127.0.0.1\tlocalhost\n");
    const extra = renderHosts({ hostname: "", addresses: [], extraHosts: rec.HostConfig.ExtraHosts ?? [] })
      .split("\n")
      .slice(6)
      .join("\n");
    await writeInPlace(etc.hosts, hosts + extra);
    await writeInPlace(etc.hostname, renderHostname(hostHostname()));
    const resolv = await readFile(this.opts.resolvConfPath, "utf8").catch(() => "");
    await writeInPlace(etc.resolvConf, resolv);
  }

  /** Between `runtime create` and `start`: veths from the bridges into the container's namespace. */
  async wire(rec: ContainerRecord, pid: number): Promise<void> {
    const plans = this.vethPlans(rec);
    await wireVeths(pid, plans);
    if (rec.NetworkSettings) rec.NetworkSettings.SandboxKey = `/proc/${pid}/ns/net`;
    // Its VIPs balance before its process runs.
    await this.joinOverlays(rec, `/proc/${pid}/ns/net`);
    this.attaching.delete(rec.Id);
  }

  private vethPlans(rec: ContainerRecord, only?: string): VethPlan[] {
    const settings = rec.NetworkSettings;
    if (!settings) return [];
    const plans: VethPlan[] = [];
    let defaultTaken = false;
    for (const [name, ep] of Object.entries(settings.Networks)) {
      if (ep.IPAddress === "") continue;
      const n = this.table.find(ep.NetworkID);
      const hostName = settings.HostInterfaces?.[name];
      if (!n?.record.BridgeName || !hostName) continue;
      const wantsDefault = !n.record.Internal && !defaultTaken;
      if (wantsDefault) defaultTaken = true;
      if (only !== undefined && name !== only) continue;
      plans.push({
        hostName,
        containerName: (ep as EndpointSettings & { InterfaceName?: string }).InterfaceName ?? "eth0",
        bridge: n.record.BridgeName,
        mac: ep.MacAddress,
        address: ep.IPAddress,
        prefix: ep.IPPrefixLen,
        defaultGateway: wantsDefault && only === undefined ? ep.Gateway : undefined,
        mtu: n.record.Driver === "overlay" ? OVERLAY_MTU : undefined,
      });
    }
    return plans;
  }

  /**
   * After the container's run ended (or a start failed): give back addresses and ports, drop
   * its names and rules. The veths went with the namespace. Idempotent.
   */
  async release(rec: ContainerRecord): Promise<void> {
    const settings = rec.NetworkSettings;
    this.records.removeContainer(rec.Id);
    const member = this.overlayMembers.get(rec.Id);
    this.overlayMembers.delete(rec.Id);
    this.attaching.delete(rec.Id);
    this.lbApplied.delete(rec.Id);
    this.lbBackends.delete(rec.Id);
    // It kept the devices of a network this node has left: they go now, not at the next state.
    const applied = this.overlayState;
    if (member && applied && !this.overlayPending && !this.overlayRunning) {
      const left = [...member.networks].some(
        (id) => !applied.state.nodes.some((n) => n.networkId === id && n.nodeId === applied.self.nodeId),
      );
      if (left) void this.applyOverlay(applied.state, applied.self).catch(() => undefined);
    }
    const hadPorts = (this.ports.get(rec.Id)?.length ?? 0) > 0;
    this.ports.delete(rec.Id);
    if (!settings) return;
    let changed = false;
    for (const ep of Object.values(settings.Networks)) {
      // Docker detaches at every stop: the address goes back to the cluster (attaches again at start).
      if (ep.AttachmentID) {
        this.detach(ep.AttachmentID);
        delete ep.AttachmentID;
      }
      const pool = this.table.find(ep.NetworkID)?.pool;
      if (pool && ep.IPAddress && pool.state.allocated[ep.IPAddress] === rec.Id) {
        pool.release(ep.IPAddress);
        changed = true;
      }
      Object.assign(ep, unwired());
    }
    for (const key of Object.keys(settings.Ports)) settings.Ports[key] = null;
    settings.HostInterfaces = {};
    settings.SandboxKey = "";
    if (changed) await this.persist();
    // Not awaited: taking elements out of an nftables map waits for the kernel's RCU grace
    // period (about 10 ms), which would hold up every exit and removal. Syncs stay ordered,
    // so a later start that takes the same port is applied after this one.
    if (hadPorts)
      void this.applyPorts().catch((e: unknown) =>
        this.opts.log.error(
          { id: rec.Id, err: messageOf(e) },
          "removing a container's published ports failed",
        ),
      );
  }

  // ---- attachable overlay networks (plain containers in a cluster) ------------------------------

  /** The endpoints of a plain container on the cluster's overlay networks (none for a task's). */
  private attachmentEndpoints(rec: ContainerRecord, only?: string): Array<[string, EndpointSettings]> {
    if (isTaskContainer(rec)) return [];
    return Object.entries(rec.NetworkSettings?.Networks ?? {}).filter(
      ([name, ep]) => (only === undefined || name === only) && this.isClusterNetwork(ep.NetworkID),
    );
  }

  /**
   * Moby's AttachNetwork: for each endpoint, an attachment from the leader (its address), kept
   * in the endpoint; then wait until this host has applied a network state that holds every one
   * of them, with this node on the network (its bridge and VXLAN device made). Returns network
   * id → address. What was attached before a failure is in the endpoints: release gives it back.
   */
  private async attachToCluster(
    rec: ContainerRecord,
    endpoints: Array<[string, EndpointSettings]>,
  ): Promise<Map<string, string>> {
    const given = new Map<string, string>();
    if (endpoints.length === 0) return given;
    const attacher = this.attacher;
    if (!attacher) throw notInCluster(endpoints[0][0]);
    // Until the container runs (wire) or gives up (release).
    this.attaching.add(rec.Id);
    const made: Array<{ name: string; a: Attachment }> = [];
    for (const [name, ep] of endpoints) {
      let a: Attachment;
      try {
        a = await attacher.attach({
          network: ep.NetworkID,
          containerId: rec.Id,
          containerName: rec.Name,
          aliases: ep.Aliases ?? [],
          address: ep.IPAMConfig?.IPv4Address || undefined,
        });
      } catch (e) {
        // The cluster no longer has the network the container was made for.
        if (isShoalError(e) && e.status === 404 && e.message.includes(ep.NetworkID))
          throw notFound(
            `network ${name} not found: it was removed from the cluster; disconnect container ${rec.Name} from it (docker network disconnect) or recreate the container`,
          );
        throw e;
      }
      ep.AttachmentID = a.attachmentId;
      made.push({ name, a });
      given.set(a.networkId, a.address.split("/")[0]);
    }
    await Promise.all(made.map(({ name, a }) => this.waitForAttachment(rec, name, a)));
    return given;
  }

  /** Until the applied state holds the attachment and this node's endpoint on its network. */
  private async waitForAttachment(rec: ContainerRecord, name: string, a: Attachment): Promise<void> {
    const address = a.address.split("/")[0];
    const ready = (): boolean => {
      const applied = this.overlayState;
      if (!applied) return false;
      const { state, self } = applied;
      return (
        state.tasks.some((t) => t.taskId === a.attachmentId && t.address === address) &&
        state.nodes.some((n) => n.networkId === a.networkId && n.nodeId === self.nodeId) &&
        this.table.find(a.networkId)?.record.Driver === "overlay"
      );
    };
    if (ready()) return;
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!ready()) return;
        clearTimeout(timer);
        this.overlayApplied.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.overlayApplied.delete(check);
        reject(
          unavailable(
            `container ${rec.Name}: the managers gave it ${address} on overlay network ${name}, but this node did not get the network from them within ${ATTACH_WAIT_MS / 1000} s: check its connection to the managers (docker node ls) and start it again`,
          ),
        );
      }, ATTACH_WAIT_MS);
      this.overlayApplied.add(check);
    });
  }

  /** Give an attachment back in the background; the sweep after each state apply retries. */
  private detach(attachmentId: string): void {
    const attacher = this.attacher;
    if (!attacher || this.detaching.has(attachmentId)) return;
    this.detaching.add(attachmentId);
    attacher
      .detach(attachmentId)
      .then(
        () => this.opts.log.debug({ attachment: attachmentId }, "gave an overlay network attachment back"),
        (e: unknown) =>
          this.opts.log.warn(
            { attachment: attachmentId, err: messageOf(e) },
            "giving an overlay network attachment back failed; trying again with the next network state",
          ),
      )
      .finally(() => this.detaching.delete(attachmentId));
  }

  /**
   * The cluster's attachments of this node that no local container holds (its container
   * stopped while the leader was unreachable, the daemon died before it could say so, an
   * answer was lost): given back, so no address leaks. Containers still asking are left alone.
   */
  private detachUnused(state: NetworkState, self: OverlaySelf): void {
    if (!this.attacher) return;
    for (const t of state.tasks) {
      if (t.nodeId !== self.nodeId || !t.containerId || this.attaching.has(t.containerId)) continue;
      // Held: a running container's endpoint has it (a stopped one gave it back at exit, a
      // record left "created" by a crash mid-start never ran with it).
      const held =
        this.overlayMembers.has(t.containerId) &&
        this.containersOf(t.networkId).some(
          (c) => c.id === t.containerId && c.endpoint.AttachmentID === t.taskId,
        );
      if (held) continue;
      this.opts.log.info(
        { attachment: t.taskId, container: t.containerId.slice(0, 12), network: t.networkId },
        "giving back an overlay network attachment no local container uses",
      );
      this.detach(t.taskId);
    }
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
    running: { pid: number; etc: EtcPaths } | undefined,
  ): Promise<void> {
    const task = isTaskContainer(rec);
    const record = this.networkForContainer(networkRef, task);
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
    this.checkEndpointRequest(record, request, task);
    if (running && !task && this.isClusterNetwork(record.Id))
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
      const given = await this.attachToCluster(rec, this.attachmentEndpoints(rec, record.Name));
      const net = (n = this.table.get(record.Id));
      const index = Object.keys(settings.Networks).length - 1;
      await this.serial(async () => {
        this.allocateOn(rec.Id, net, ep, index, settings, given.get(record.Id));
        await this.persist();
      });
      const plan = this.vethPlans(rec, net.record.Name);
      await wireVeths(running.pid, plan);
      this.registerNames(rec);
      await this.writeEtcFiles(rec, running.etc);
      await this.joinOverlays(rec, `/proc/${running.pid}/ns/net`);
      this.attaching.delete(rec.Id);
    } catch (e) {
      this.attaching.delete(rec.Id);
      const pool = n?.pool;
      if (pool && ep.IPAddress && pool.state.allocated[ep.IPAddress] === rec.Id) pool.release(ep.IPAddress);
      if (ep.AttachmentID) this.detach(ep.AttachmentID);
      const hostIf = settings.HostInterfaces?.[record.Name];
      if (hostIf) await deleteLink(hostIf).catch(() => undefined);
      delete settings.Networks[record.Name];
      delete settings.HostInterfaces?.[record.Name];
      this.registerNames(rec);
      await this.persist().catch(() => undefined);
      throw e;
    }
  }

  async disconnect(
    rec: ContainerRecord,
    networkRef: string,
    running: { pid: number; etc: EtcPaths } | undefined,
  ): Promise<void> {
    const n = this.table.find(networkRef);
    const settings = rec.NetworkSettings;
    const name = n?.record.Name ?? this.clusterNetwork(networkRef)?.name ?? networkRef;
    const ep = settings?.Networks[name];
    if (!settings || !ep) throw notFound(`container ${rec.Name} is not connected to network ${networkRef}`);
    const hostIf = settings.HostInterfaces?.[name];
    if (running && hostIf) await deleteLink(hostIf);
    if (ep.AttachmentID) this.detach(ep.AttachmentID);
    const pool = n?.pool;
    if (pool && ep.IPAddress && pool.state.allocated[ep.IPAddress] === rec.Id) {
      pool.release(ep.IPAddress);
      await this.persist();
    }
    delete settings.Networks[name];
    delete settings.HostInterfaces?.[name];
    if ((this.ports.get(rec.Id) ?? []).some((p) => p.containerIp === ep.IPAddress)) {
      this.ports.set(
        rec.Id,
        (this.ports.get(rec.Id) ?? []).filter((p) => p.containerIp !== ep.IPAddress),
      );
      await this.applyPorts();
    }
    if (running) {
      this.registerNames(rec);
      await this.writeEtcFiles(rec, running.etc);
      await this.joinOverlays(rec, `/proc/${running.pid}/ns/net`);
    }
  }

  // ---- daemon start ---------------------------------------------------------------------------

  /**
   * Make the kernel and the pools match the containers that still run: addresses of containers
   * that are gone are freed, their names, ports and leftover veths dropped, bridges of removed
   * networks deleted, and the firewall table rewritten whole.
   */
  async reconcile(running: ContainerRecord[]): Promise<void> {
    const alive = new Set(running.map((r) => r.Id));
    for (const n of this.table.bridges()) {
      const pool = n.pool;
      if (!pool) continue;
      for (const { address, owner } of pool.inUse()) if (!alive.has(owner)) pool.release(address);
    }
    this.ports.clear();
    for (const rec of running) {
      for (const ep of Object.values(rec.NetworkSettings?.Networks ?? {})) {
        const pool = this.table.find(ep.NetworkID)?.pool;
        if (pool && ep.IPAddress && pool.state.allocated[ep.IPAddress] === undefined)
          pool.state.allocated[ep.IPAddress] = rec.Id;
      }
      this.registerNames(rec);
      if (rec.State.Pid > 0) this.trackOverlayMember(rec, `/proc/${rec.State.Pid}/ns/net`);
      const target = Object.values(rec.NetworkSettings?.Networks ?? {}).find((e) => e.IPAddress !== "");
      const ports: Array<PublishedPort & { containerIp: string }> = [];
      for (const [key, list] of Object.entries(rec.NetworkSettings?.Ports ?? {})) {
        const [port, protocol] = key.split("/");
        for (const b of list ?? []) {
          if (!target) continue;
          ports.push({
            protocol: protocol === "udp" ? "udp" : "tcp",
            hostIp: b.HostIp === "0.0.0.0" ? "" : b.HostIp,
            hostPort: Number(b.HostPort),
            containerPort: Number(port),
            containerIp: target.IPAddress,
          });
        }
      }
      if (ports.length > 0) this.ports.set(rec.Id, ports);
    }
    await this.persist();
    const keepVeths = new Set(running.flatMap((r) => Object.values(r.NetworkSettings?.HostInterfaces ?? {})));
    const ourBridges = new Set(this.table.bridges().map((n) => n.record.BridgeName));
    // Only veths on this daemon's own bridges: another daemon in the same namespace keeps its own.
    const stray = (await listLinks()).filter(
      (l) =>
        l.name.startsWith(VETH_PREFIX) &&
        l.kind === "veth" &&
        l.master !== undefined &&
        ourBridges.has(l.master) &&
        !keepVeths.has(l.name),
    );
    for (const l of stray) {
      await deleteLink(l.name).catch((e: unknown) =>
        this.opts.log.warn({ link: l.name, err: messageOf(e) }, "cannot remove a leftover link"),
      );
      this.opts.log.info({ link: l.name }, "removed a link left by a container or network that is gone");
    }
    await this.applyFirewall();
    // The cluster state of before the restart: devices, DNS and LB tables as they were, at once,
    // without waiting for a manager (the next state from one replaces it).
    const saved = await readJsonIfExists<SavedOverlayState>(this.overlayStatePath());
    if (saved?.state && saved.self && this.overlayVersion === 0) {
      await this.applyOverlay(saved.state, saved.self).catch((e: unknown) =>
        this.opts.log.warn({ err: messageOf(e) }, "re-applying the saved overlay network state failed"),
      );
    }
  }

  // ---- overlay networks (issue 7) ---------------------------------------------------------------

  private overlayStatePath(): string {
    return join(this.opts.dir, "overlay-state.json");
  }

  /**
   * Make this host match the cluster's NetworkState: VXLAN devices and bridges, forwarding and
   * neighbour entries, the overlay networks in the network table (so containers can join them
   * with their assigned address), DNS records, the routing mesh, and the LB table of every
   * local container on an overlay network. Idempotent and cheap when little changed; calls made
   * while one runs collapse into one apply of the newest state, and every caller's promise
   * settles when its state (or a newer one) is in force. `overlayVersion` then says which.
   */
  applyOverlay(state: NetworkState, self: OverlaySelf): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (e?: unknown): void => (e === undefined ? resolve() : reject(e as Error));
      if (this.overlayPending) {
        this.overlayPending.next = { state, self };
        this.overlayPending.waiters.push(done);
      } else {
        this.overlayPending = { next: { state, self }, waiters: [done] };
      }
      if (!this.overlayRunning) void this.drainOverlay();
    });
  }

  private async drainOverlay(): Promise<void> {
    this.overlayRunning = true;
    while (this.overlayPending) {
      const job = this.overlayPending;
      this.overlayPending = undefined;
      let error: unknown;
      try {
        await this.applyOverlayNow(job.next.state, job.next.self);
      } catch (e) {
        error = e;
        this.opts.log.warn(
          { version: job.next.state.version, err: messageOf(e) },
          "applying the overlay network state failed",
        );
      }
      for (const w of job.waiters) w(error);
    }
    this.overlayRunning = false;
  }

  private async applyOverlayNow(state: NetworkState, self: OverlaySelf): Promise<void> {
    const log = this.opts.log;
    const wanted = new Set(
      state.networks
        .filter((n) => state.nodes.some((e) => e.networkId === n.id && e.nodeId === self.nodeId))
        .map((n) => n.id),
    );
    // A network this node left stays while a running local container is still on it (its
    // devices go at the first apply after the container is gone).
    const inUse = (id: string): boolean => [...this.overlayMembers.values()].some((m) => m.networks.has(id));
    const keep = this.table
      .overlays()
      .filter((n) => !wanted.has(n.record.Id) && inUse(n.record.Id))
      .map((n) => n.record.Id);
    const result = await this.overlay.apply(state, self, { keep });
    await forgetFlowsFrom(result.meshDropped).catch((e: unknown) =>
      log.warn({ err: messageOf(e) }, "cannot forget the routing mesh's flows to stopped tasks"),
    );
    let tableChanged = false;
    const listen: string[] = [];
    const unlisten: string[] = [];
    await this.serial(async () => {
      for (const d of result.networks) {
        const existing = this.table.find(d.network.id);
        if (existing && existing.record.Id === d.network.id && existing.record.Driver === "overlay") {
          const before = existing.pool?.state.gateway;
          if (updateOverlayNetwork(existing, d.network, d.bridge, d.address)) tableChanged = true;
          if (before !== undefined && before !== d.address) unlisten.push(before);
        } else {
          const clash = this.table.find(d.network.name);
          if (clash && clash.record.Driver !== "overlay")
            log.warn(
              { network: d.network.name, id: d.network.id },
              "a local network has the name of a cluster overlay network: refer to the overlay network by id",
            );
          this.table.add(newOverlayNetwork(d.network, d.bridge, d.address));
          tableChanged = true;
          log.info({ network: d.network.name, id: d.network.id, bridge: d.bridge }, "overlay network up");
        }
        listen.push(d.address);
      }
      for (const n of this.table.overlays()) {
        if (wanted.has(n.record.Id) || keep.includes(n.record.Id)) continue;
        if (n.pool) unlisten.push(n.pool.state.gateway);
        this.table.delete(n.record.Id);
        tableChanged = true;
        log.info({ network: n.record.Name, id: n.record.Id }, "overlay network removed from this host");
      }
      if (tableChanged) await this.persist();
    });
    for (const a of unlisten) if (!listen.includes(a)) await this.dns.unlisten(a).catch(() => undefined);
    for (const a of listen) {
      await this.dns
        .listen(a, this.opts.dnsPort)
        .catch((e: unknown) =>
          log.warn({ address: a, err: messageOf(e) }, "cannot serve DNS on an overlay network"),
        );
    }
    if (tableChanged || !this.firewallWritten) await this.applyFirewall();
    this.records.setCluster(clusterNames(state));
    this.overlayState = { state, self };
    await this.syncLbTables();
    await writeJsonAtomic(this.overlayStatePath(), this.overlayState);
    this.overlayVersion = state.version;
    for (const fn of [...this.overlayApplied]) fn();
    this.detachUnused(state, self);
  }

  /** The overlay networks a container's endpoints are on (with an address). */
  private overlayNetworksOf(rec: ContainerRecord): Set<string> {
    const out = new Set<string>();
    for (const ep of Object.values(rec.NetworkSettings?.Networks ?? {})) {
      if (ep.IPAddress === "") continue;
      if (this.table.find(ep.NetworkID)?.record.Driver === "overlay") out.add(ep.NetworkID);
    }
    return out;
  }

  private trackOverlayMember(rec: ContainerRecord, netns: string): boolean {
    const networks = this.overlayNetworksOf(rec);
    if (networks.size === 0 && !this.overlayMembers.has(rec.Id)) return false;
    this.overlayMembers.set(rec.Id, { netns, networks });
    return true;
  }

  /** A running container joined (or left) overlay networks: its LB table now. */
  private async joinOverlays(rec: ContainerRecord, netns: string): Promise<void> {
    if (!this.trackOverlayMember(rec, netns)) return;
    await this.syncLbTables([rec.Id]);
  }

  /** Write the LB table of each member whose table differs from what it should hold. */
  private syncLbTables(only?: string[]): Promise<void> {
    const run = async (): Promise<void> => {
      const state = this.overlayState?.state;
      if (!state) return;
      const ids = only ?? [...this.overlayMembers.keys()];
      await Promise.all(
        ids.map(async (id) => {
          const m = this.overlayMembers.get(id);
          if (!m) return;
          const text = lbTableFor(state, m.networks);
          if (this.lbApplied.get(id) === text) return;
          const balances = vipBalances(state, m.networks);
          try {
            await applyLbTable(m.netns, text);
            if (this.overlayMembers.get(id) === m) this.lbApplied.set(id, text);
            const gone = droppedBackends(this.lbBackends.get(id) ?? [], balances);
            this.lbBackends.set(id, balances);
            await forgetFlowsFrom(gone, m.netns).catch((e: unknown) =>
              this.opts.log.warn(
                { id, err: messageOf(e) },
                "cannot forget a container's flows to stopped tasks",
              ),
            );
          } catch (e) {
            this.lbApplied.delete(id);
            this.opts.log.warn({ id, err: messageOf(e) }, "cannot write a container's load-balancing table");
          }
        }),
      );
    };
    const next = this.lbQueue.then(run, run);
    this.lbQueue = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    await this.dns.close();
    this.upstream.close();
  }
}
