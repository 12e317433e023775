// The cluster's network state on this host: each NetworkState the managers send is applied
// here (the VXLAN devices through overlay/driver.ts, the overlay networks in the network table,
// DNS on their gateways and the cluster's names, and the load-balancing table of every local
// container on an overlay network), and saved so a restarted daemon re-applies it at once.
import { join } from "node:path";
import { readJsonIfExists, writeJsonAtomic } from "../../../shared/fsutil.js";
import { checkNetworkState, type NetworkState, type OverlayNetwork } from "../../../shared/network-state.js";
import { messageOf } from "../../../shared/errors.js";
import type { Logger } from "../../../shared/logging.js";
import type { ContainerRecord } from "../container/types.js";
import type { BridgeNetworks } from "./bridges.js";
import type { ContainerDns } from "./container-dns.js";
import { newOverlayNetwork, updateOverlayNetwork } from "./networks.js";
import {
  applyLbTable,
  droppedBackends,
  forgetFlowsFrom,
  lbTableFor,
  OverlayDriver,
  type OverlaySelf,
} from "./overlay/driver.js";
import { overlayPeers, vipBalances, type MeshPlan } from "./overlay/rules.js";

/** A running container on overlay networks: where its namespace is, for its LB table. */
interface OverlayMember {
  netns: string;
  networks: Set<string>;
}

/** The last cluster state applied, kept so a restarted daemon re-applies it at once. */
export interface AppliedState {
  state: NetworkState;
  self: OverlaySelf;
}

export interface OverlayStateOptions {
  /** <dataRoot>/network */
  dir: string;
  /** nftables table name (the routing mesh's table is named after it). */
  firewallTable: string;
  log: Logger;
  bridges: BridgeNetworks;
  dns: ContainerDns;
  /** Last step of every apply (gives back attachments no local container holds). */
  afterApply: (state: NetworkState, self: OverlaySelf) => void;
}

export class OverlayState {
  private readonly driver: OverlayDriver;
  /** The newest cluster state applied in full, and the one waiting to be (coalesced). */
  private applied: AppliedState | undefined;
  private pending: { next: AppliedState; waiters: Array<(e?: unknown) => void> } | undefined;
  private running = false;
  /** The version of the last NetworkState applied in full (0: none yet). */
  private appliedVersion = 0;
  private readonly members = new Map<string, OverlayMember>();
  /** The LB table text last written into each member's namespace. */
  private readonly lbApplied = new Map<string, string>();
  /** The VIP backends last written into each member's namespace (whose flows go when they leave). */
  private readonly lbBackends = new Map<string, Array<{ backends: string[] }>>();
  /** Serialises LB writes into containers' namespaces. */
  private lbQueue: Promise<unknown> = Promise.resolve();
  /** Called after every applied network state (starts waiting for their attachment). */
  private readonly listeners = new Set<() => void>();
  /** The routing mesh in force after the last apply (the loopback proxy relays its ports). */
  private meshInForce: MeshPlan | undefined;

  constructor(private readonly opts: OverlayStateOptions) {
    this.driver = new OverlayDriver({ firewallTable: opts.firewallTable });
  }

  /** The version of the last NetworkState applied in full (0: none yet). */
  get version(): number {
    return this.appliedVersion;
  }

  /** The routing mesh in force: its ports and this node's ingress address. */
  get mesh(): MeshPlan | undefined {
    return this.meshInForce;
  }

  /** The newest state applied in full. */
  get current(): AppliedState | undefined {
    return this.applied;
  }

  /** `fn` runs after every apply until it is taken off. */
  onApplied(fn: () => void): void {
    this.listeners.add(fn);
  }

  offApplied(fn: () => void): void {
    this.listeners.delete(fn);
  }

  /** The cluster's overlay network `ref` names (id, name or unique id prefix), from this host's copy of the state. */
  clusterNetwork(ref: string): OverlayNetwork | undefined {
    const nets = this.applied?.state.networks ?? [];
    const exact = nets.find((n) => n.id === ref) ?? nets.find((n) => n.name === ref);
    if (exact || ref === "") return exact;
    const prefixed = nets.filter((n) => n.id.startsWith(ref));
    return prefixed.length === 1 ? prefixed[0] : undefined;
  }

  isClusterNetwork(id: string): boolean {
    return (
      this.opts.bridges.table.find(id)?.record.Driver === "overlay" ||
      this.applied?.state.networks.some((n) => n.id === id) === true
    );
  }

  private statePath(): string {
    return join(this.opts.dir, "overlay-state.json");
  }

  /**
   * The cluster state of before the restart: devices, DNS and LB tables as they were, at once,
   * without waiting for a manager (the next state from one replaces it).
   */
  async reapplySaved(): Promise<void> {
    const saved = await readJsonIfExists<AppliedState>(this.statePath());
    if (saved?.state && saved.self && this.appliedVersion === 0) {
      await this.apply(saved.state, saved.self).catch((e: unknown) =>
        this.opts.log.warn({ err: messageOf(e) }, "re-applying the saved overlay network state failed"),
      );
    }
  }

  /**
   * Make this host match the cluster's NetworkState: VXLAN devices and bridges, forwarding and
   * neighbour entries, the overlay networks in the network table (so containers can join them
   * with their assigned address), DNS records, the routing mesh, and the LB table of every
   * local container on an overlay network. Idempotent and cheap when little changed; calls made
   * while one runs collapse into one apply of the newest state, and every caller's promise
   * settles when its state (or a newer one) is in force. `version` then says which.
   */
  apply(received: NetworkState, self: OverlaySelf): Promise<void> {
    let state: NetworkState;
    try {
      // Whatever came from a manager or from disk: nothing that is not an address reaches a command.
      const checked = checkNetworkState(received);
      state = checked.state;
      for (const reason of checked.refused)
        this.opts.log.warn({ version: state.version, reason }, "left out of the network state: not valid");
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    return new Promise((resolve, reject) => {
      const done = (e?: unknown): void => (e === undefined ? resolve() : reject(e as Error));
      if (this.pending) {
        this.pending.next = { state, self };
        this.pending.waiters.push(done);
      } else {
        this.pending = { next: { state, self }, waiters: [done] };
      }
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    while (this.pending) {
      const job = this.pending;
      this.pending = undefined;
      let error: unknown;
      try {
        await this.applyNow(job.next.state, job.next.self);
      } catch (e) {
        error = e;
        this.opts.log.warn(
          { version: job.next.state.version, err: messageOf(e) },
          "applying the overlay network state failed",
        );
      }
      for (const w of job.waiters) w(error);
    }
    this.running = false;
  }

  private async applyNow(state: NetworkState, self: OverlaySelf): Promise<void> {
    const { log, bridges, dns } = this.opts;
    const table = bridges.table;
    const wanted = new Set(
      state.networks
        .filter((n) => state.nodes.some((e) => e.networkId === n.id && e.nodeId === self.nodeId))
        .map((n) => n.id),
    );
    // A network this node left stays while a running local container is still on it (its
    // devices go at the first apply after the container is gone).
    const inUse = (id: string): boolean => [...this.members.values()].some((m) => m.networks.has(id));
    const keep = table
      .overlays()
      .filter((n) => !wanted.has(n.record.Id) && inUse(n.record.Id))
      .map((n) => n.record.Id);
    const result = await this.driver.apply(state, self, { keep });
    for (const r of result.refused)
      log.warn({ node: r.nodeId, reason: r.reason }, "refused an overlay entry: nothing of it was written");
    this.meshInForce = result.mesh;
    await forgetFlowsFrom(result.meshDropped).catch((e: unknown) =>
      log.warn({ err: messageOf(e) }, "cannot forget the routing mesh's flows to stopped tasks"),
    );
    let tableChanged = false;
    const listen: string[] = [];
    const subnets = new Map<string, string>();
    const unlisten: string[] = [];
    await bridges.serial(async () => {
      for (const d of result.networks) {
        const existing = table.find(d.network.id);
        if (existing && existing.record.Id === d.network.id && existing.record.Driver === "overlay") {
          const before = existing.pool?.state.gateway;
          if (updateOverlayNetwork(existing, d.network, d.bridge, d.address)) tableChanged = true;
          if (before !== undefined && before !== d.address) unlisten.push(before);
        } else {
          const clash = table.find(d.network.name);
          if (clash && clash.record.Driver !== "overlay")
            log.warn(
              { network: d.network.name, id: d.network.id },
              "a local network has the name of a cluster overlay network: refer to the overlay network by id",
            );
          table.add(newOverlayNetwork(d.network, d.bridge, d.address));
          tableChanged = true;
          log.info({ network: d.network.name, id: d.network.id, bridge: d.bridge }, "overlay network up");
        }
        listen.push(d.address);
        subnets.set(d.address, d.network.subnet);
      }
      for (const n of table.overlays()) {
        if (wanted.has(n.record.Id) || keep.includes(n.record.Id)) continue;
        if (n.pool) unlisten.push(n.pool.state.gateway);
        table.delete(n.record.Id);
        tableChanged = true;
        log.info({ network: n.record.Name, id: n.record.Id }, "overlay network removed from this host");
      }
      if (tableChanged) await bridges.persist();
    });
    for (const a of unlisten) if (!listen.includes(a)) await dns.unlisten(a).catch(() => undefined);
    for (const a of listen) {
      await dns
        .listen(a, subnets.get(a) ?? "")
        .catch((e: unknown) =>
          log.warn({ address: a, err: messageOf(e) }, "cannot serve DNS on an overlay network"),
        );
    }
    if (tableChanged || !bridges.firewallInForce) await bridges.applyFirewall();
    await bridges.setOverlayPeers(overlayPeers(state, self));
    dns.setCluster(state);
    this.applied = { state, self };
    await this.syncLbTables();
    await writeJsonAtomic(this.statePath(), this.applied);
    this.appliedVersion = state.version;
    for (const fn of [...this.listeners]) fn();
    this.opts.afterApply(state, self);
  }

  // ---- members: running containers on overlay networks -------------------------------------

  /** The overlay networks a container's endpoints are on (with an address). */
  private networksOf(rec: ContainerRecord): Set<string> {
    const out = new Set<string>();
    for (const ep of Object.values(rec.NetworkSettings?.Networks ?? {})) {
      if (ep.IPAddress === "") continue;
      if (this.opts.bridges.table.find(ep.NetworkID)?.record.Driver === "overlay") out.add(ep.NetworkID);
    }
    return out;
  }

  /** Note a running container's overlay networks; false when it is on none (and was on none). */
  track(rec: ContainerRecord, netns: string): boolean {
    const networks = this.networksOf(rec);
    if (networks.size === 0 && !this.members.has(rec.Id)) return false;
    this.members.set(rec.Id, { netns, networks });
    return true;
  }

  isMember(containerId: string): boolean {
    return this.members.has(containerId);
  }

  /** A running container joined (or left) overlay networks: its LB table now. */
  async join(rec: ContainerRecord, netns: string): Promise<void> {
    if (!this.track(rec, netns)) return;
    await this.syncLbTables([rec.Id]);
  }

  /** The container's run ended. */
  leave(containerId: string): void {
    const member = this.members.get(containerId);
    this.members.delete(containerId);
    this.lbApplied.delete(containerId);
    this.lbBackends.delete(containerId);
    // It kept the devices of a network this node has left: they go now, not at the next state.
    const applied = this.applied;
    if (member && applied && !this.pending && !this.running) {
      const left = [...member.networks].some(
        (id) => !applied.state.nodes.some((n) => n.networkId === id && n.nodeId === applied.self.nodeId),
      );
      if (left) void this.apply(applied.state, applied.self).catch(() => undefined);
    }
  }

  /** Write the LB table of each member whose table differs from what it should hold. */
  private syncLbTables(only?: string[]): Promise<void> {
    const run = async (): Promise<void> => {
      const state = this.applied?.state;
      if (!state) return;
      const ids = only ?? [...this.members.keys()];
      await Promise.all(
        ids.map(async (id) => {
          const m = this.members.get(id);
          if (!m) return;
          const text = lbTableFor(state, m.networks);
          if (this.lbApplied.get(id) === text) return;
          const balances = vipBalances(state, m.networks);
          try {
            await applyLbTable(m.netns, text);
            if (this.members.get(id) === m) this.lbApplied.set(id, text);
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
}
