// This host's network table and its bridge networks: the predefined ones, `network create`,
// `rm` and `prune`, the Linux bridge of each, the file they are kept in, and the nftables table
// (NAT and isolation of every bridge, and the published ports' maps). Overlay networks sit in the
// same table but come and go with the cluster's state (overlay-state.ts).
import type { EventLog } from "../events.js";
import { messageOf, conflict, forbidden } from "../../../shared/errors.js";
import type { Logger } from "../../../shared/logging.js";
import { parseSubnet } from "./cidr.js";
import type { ContainerDns } from "./container-dns.js";
import { FirewallApplier, type FirewallPort, type FirewallState } from "./firewall.js";
import { deleteLink, enableIpForward, ensureBridge, listLinks } from "./host-links.js";
import { newBridgeNetwork, predefinedNetworks, type Network, type NetworkTable } from "./networks.js";
import type { NetworkFile } from "./store.js";
import {
  BRIDGE_PREFIX,
  PREDEFINED,
  VETH_PREFIX,
  VXLAN_ID_OPTION,
  type ContainersOf,
  type CreateNetworkRequest,
  type NetworkRecord,
} from "./types.js";

export interface BridgeNetworksOptions {
  /** <dataRoot>/network */
  dir: string;
  /** The default bridge's Linux name (dockerd's --bridge); differs between daemons on one host. */
  bridgeName: string;
  /** dockerd's --bip: the default bridge's gateway address with prefix. */
  bridgeIp?: string;
  ipForward: boolean;
  /** nftables table name. */
  firewallTable: string;
  log: Logger;
  /** network create and destroy go here (docker events). */
  events?: EventLog;
}

/** Whether a network is one of the predefined ones, which are never removed. */
function isPredefined(r: NetworkRecord): boolean {
  return PREDEFINED.has(r.Name);
}

export interface BridgeNetworksDeps {
  /** Every network of this host, loaded from `file`. */
  table: NetworkTable;
  file: NetworkFile;
  /** Serves DNS on each bridge's gateway. */
  dns: ContainerDns;
  /** The published ports, for the firewall's port maps. */
  portsInForce: () => FirewallPort[];
  /** Who is on a network (a network in use is not removed). */
  containersOf: ContainersOf;
}

export class BridgeNetworks {
  readonly table: NetworkTable;
  private readonly dns: ContainerDns;
  private readonly firewall: FirewallApplier;
  private firewallWritten = false;
  /** The cluster's nodes' underlay addresses: the only senders of VXLAN for our overlay networks. */
  private overlayPeers: string[] = [];
  /** Serialises allocation so two starts cannot take the same address or port. */
  private allocating: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly opts: BridgeNetworksOptions,
    private readonly deps: BridgeNetworksDeps,
  ) {
    this.table = deps.table;
    this.dns = deps.dns;
    this.firewall = new FirewallApplier(opts.firewallTable);
  }

  /** The predefined networks made if missing, and every bridge network's bridge up. */
  static async open(opts: BridgeNetworksOptions, deps: BridgeNetworksDeps): Promise<BridgeNetworks> {
    const b = new BridgeNetworks(opts, deps);
    const table = deps.table;
    const made = await predefinedNetworks(table, { bridgeName: opts.bridgeName, bridgeIp: opts.bridgeIp });
    for (const n of made) table.add(n);
    if (made.length > 0) await b.persist();
    if (opts.ipForward && (await enableIpForward()))
      opts.log.info("enabled IPv4 forwarding (net.ipv4.ip_forward=1), as dockerd does");
    // Overlay bridges are the overlay driver's: the first apply (at reconcile) makes them.
    for (const n of table.bridges()) if (n.record.Driver === "bridge") await b.bringUp(n);
    return b;
  }

  persist(): Promise<void> {
    return this.deps.file.save(this.table.records());
  }

  /** Run `fn` alone among allocations (addresses, ports, table changes). */
  serial<T>(fn: () => Promise<T>): Promise<T> {
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
      await this.dns.listen(pool.state.gateway, pool.state.subnet);
    } catch (e) {
      // Containers then fall back to no name resolution; the network itself still works.
      this.opts.log.warn(
        { network: n.record.Name, err: messageOf(e) },
        "cannot serve DNS on the network's gateway",
      );
    }
  }

  private firewallState(): FirewallState {
    const bridges = this.table.bridges();
    const networks = bridges.map((n) => ({
      bridge: n.record.BridgeName as string,
      subnet: n.record.IPAM.Config[0].Subnet,
      gateway: n.pool?.state.gateway ?? "",
      internal: n.record.Internal,
    }));
    const vnis = bridges
      .filter((n) => n.record.Driver === "overlay")
      .map((n) => Number(n.record.Options?.[VXLAN_ID_OPTION]));
    return { networks, ports: this.deps.portsInForce(), overlay: { vnis, peers: this.overlayPeers } };
  }

  /** The cluster's nodes changed: the VXLAN peer set follows (one small transaction). */
  setOverlayPeers(peers: string[]): Promise<void> {
    const sorted = [...new Set(peers)].sort();
    if (sorted.join(" ") === this.overlayPeers.join(" ")) return Promise.resolve();
    this.overlayPeers = sorted;
    return this.applySets();
  }

  /** Whether the nftables table has been written since the daemon started. */
  get firewallInForce(): boolean {
    return this.firewallWritten;
  }

  /** Until the first bridge exists nothing is written, so a daemon without networks leaves nftables alone. */
  applyFirewall(): Promise<void> {
    if (!this.firewallWritten && this.table.bridges().length === 0) return Promise.resolve();
    this.firewallWritten = true;
    return this.firewall.update(() => this.firewallState());
  }

  /** Published ports (or VXLAN peers) changed: one small transaction on the maps and the set. */
  applySets(): Promise<void> {
    if (!this.firewallWritten && this.table.bridges().length === 0) return Promise.resolve();
    this.firewallWritten = true;
    return this.firewall.updateSets(() => this.firewallState());
  }

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
      this.opts.events?.emit("network", "create", n.record.Id, {
        name: n.record.Name,
        type: n.record.Driver,
      });
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

  async remove(ref: string): Promise<void> {
    const n = this.table.get(ref);
    if (isPredefined(n.record))
      throw forbidden(`${n.record.Name} is a pre-defined network and cannot be removed`);
    if (n.record.Driver === "overlay")
      throw forbidden(
        `${n.record.Name} is a cluster network: remove it on a manager (network rm), every node then drops it`,
      );
    const users = this.deps.containersOf(n.record.Id);
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
    this.opts.events?.emit("network", "destroy", n.record.Id, { name: n.record.Name, type: n.record.Driver });
  }

  /** Remove every user network no container uses (`filter` picks which are candidates). */
  async prune(filter: (r: NetworkRecord) => boolean): Promise<string[]> {
    const removed: string[] = [];
    for (const n of this.table.all()) {
      const r = n.record;
      if (isPredefined(r)) continue;
      if (r.Driver === "overlay") continue;
      if (!filter(r) || this.deps.containersOf(r.Id).length > 0) continue;
      await this.remove(r.Id);
      removed.push(r.Name);
    }
    return removed;
  }

  /**
   * Daemon start: veths on this daemon's bridges that no running container holds (`keep`) are
   * left from containers or networks that are gone. Another daemon in the same namespace keeps its own.
   */
  async removeStrayVeths(keep: Set<string>): Promise<void> {
    const ourBridges = new Set(this.table.bridges().map((n) => n.record.BridgeName));
    const stray = (await listLinks()).filter(
      (l) =>
        l.name.startsWith(VETH_PREFIX) &&
        l.kind === "veth" &&
        l.master !== undefined &&
        ourBridges.has(l.master) &&
        !keep.has(l.name),
    );
    for (const l of stray) {
      await deleteLink(l.name).catch((e: unknown) =>
        this.opts.log.warn({ link: l.name, err: messageOf(e) }, "cannot remove a leftover link"),
      );
      this.opts.log.info({ link: l.name }, "removed a link left by a container or network that is gone");
    }
  }
}
