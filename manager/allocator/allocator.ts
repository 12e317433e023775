// The allocator's core: which subnets, VXLAN ids, addresses and routing-mesh ports the cluster
// has handed out, read from the store's objects (networks, services' Endpoint, tasks' and
// nodes' attachments), and the decisions that hand out more. Nothing lives only in memory: a
// new leader reads the same objects and knows the same. Everything that allocates runs under
// one lock per store (withAllocationLock), on the leader, so two writers never pick the same.
// This folder alone gives addresses: the control API's network and service writes call in here
// (a clash is the user's 409 at once, inspect shows the VIPs at once), the leader's pass
// (loop.ts) gives tasks and nodes theirs.
import { conflict, invalid, notFound } from "../../shared/errors.js";
import { TERMINAL_STATES } from "../../shared/cluster.js";
import { findByRef, type ClusterStore, type ReadTx, type WriteTx } from "../store/store.js";
import {
  VXLAN_ID_OPTION,
  type EndpointSpec,
  type NetworkAttachment,
  type NetworkAttachmentConfig,
  type NetworkAttachmentView,
  type NetworkObject,
  type NetworkSpec,
  type NodeObject,
  type PortConfig,
  type ServiceEndpoint,
  type ServiceObject,
  type TaskObject,
} from "../store/types.js";
import {
  AddressPool,
  addressOf,
  contains,
  formatCidr,
  intToIp,
  ipToInt,
  overlaps,
  parseCidr,
  tryCidr,
  type Cidr,
} from "./ipam.js";

const INGRESS_NAME = "ingress";
const INGRESS_SUBNET = "10.0.0.0/24";
const INGRESS_VNI = 4096;
/** VXLAN ids of other networks start here (swarmkit's first after ingress). */
const FIRST_VNI = 4097;
const MAX_VNI = 0xffffff;
/** Routing-mesh ports picked for `--publish 80` (no published port), as Docker's range. */
const MESH_PORT_FIRST = 30000;
const MESH_PORT_LAST = 32767;
/** Where subnets come from when the user gives none: /24s out of 10.0.0.0/8 (Docker's default pool). */
const DEFAULT_POOL: Cidr = { base: 10 << 24, prefix: 8 };
const DEFAULT_SUBNET_PREFIX = 24;

/** The reason a new task waits for when no address is left (what `service ps` shows). */
export const noFreeAddress = (network: string): string => `no free address in ${network}`;

// ---- reading specs --------------------------------------------------------------------------

export function vniOf(n: NetworkObject): number | undefined {
  const v = Number(n.DriverState?.Options?.[VXLAN_ID_OPTION]?.split(",")[0]);
  return Number.isInteger(v) && v > 0 ? v : undefined;
}

export function subnetOf(n: NetworkObject): string | undefined {
  return n.IPAMOptions?.Configs?.[0]?.Subnet;
}

export function gatewayOf(n: NetworkObject): string | undefined {
  return n.IPAMOptions?.Configs?.[0]?.Gateway;
}

export function isIngress(n: NetworkObject): boolean {
  return n.Spec.Ingress === true;
}

/** The network as attachments carry it. */
export function attachmentView(n: NetworkObject): NetworkAttachmentView {
  return { ID: n.ID, Spec: n.Spec, DriverState: n.DriverState, IPAMOptions: n.IPAMOptions };
}

/** TaskTemplate.Networks (the docker CLI's place for --network); older clients use Spec.Networks. */
export function networksOfTemplate(template: Record<string, unknown> | undefined): NetworkAttachmentConfig[] {
  const list = (template as { Networks?: unknown } | undefined)?.Networks;
  return Array.isArray(list) ? (list as NetworkAttachmentConfig[]).filter((n) => n && n.Target) : [];
}

export function endpointSpecOf(spec: ServiceObject["Spec"]): EndpointSpec {
  return ((spec as { EndpointSpec?: EndpointSpec }).EndpointSpec ?? {}) as EndpointSpec;
}

type Protocol = PortConfig["Protocol"];

/** The published ports of an endpoint spec, defaults filled in (tcp, ingress). */
export function portsOf(e: EndpointSpec | undefined): PortConfig[] {
  return (e?.Ports ?? []).map((p) => ({
    ...(p.Name ? { Name: p.Name } : {}),
    Protocol: (p.Protocol || "tcp") as Protocol,
    TargetPort: p.TargetPort ?? 0,
    PublishedPort: p.PublishedPort ?? 0,
    PublishMode: p.PublishMode === "host" ? "host" : "ingress",
  }));
}

/** Whether a task (from its own spec) or a service publishes through the routing mesh. */
export function usesIngress(e: EndpointSpec | undefined): boolean {
  return portsOf(e).some((p) => p.PublishMode === "ingress");
}

/** The networks a task's spec asks for (ids), ingress included when it publishes mesh ports. */
function taskNetworkIds(task: TaskObject, ingressId: string | undefined): string[] {
  const ids = networksOfTemplate(task.Spec).map((n) => n.Target);
  const endpoint = (task.Spec as { Endpoint?: EndpointSpec }).Endpoint;
  if (ingressId && usesIngress(endpoint) && endpoint?.Mode !== "dnsrr" && !ids.includes(ingressId))
    ids.push(ingressId);
  return [...new Set(ids)];
}

/** A task whose spec asks for overlay addresses (networks, or mesh ports and so ingress). */
export function wantsNetworks(task: TaskObject): boolean {
  return (
    networksOfTemplate(task.Spec).length > 0 ||
    usesIngress((task.Spec as { Endpoint?: EndpointSpec }).Endpoint)
  );
}

function portKey(p: { Protocol: string; PublishedPort: number }): string {
  return `${p.PublishedPort}/${p.Protocol}`;
}

// ---- what is taken --------------------------------------------------------------------------

/** What the store's objects hold now. Build it inside the transaction that allocates more. */
export class Allocations {
  readonly networks = new Map<string, NetworkObject>();
  readonly pools = new Map<string, AddressPool>();
  /** VXLAN id → network name. */
  readonly vnis = new Map<number, string>();
  /** "8080/tcp" → the service publishing it on the routing mesh. */
  readonly ports = new Map<string, { id: string; name: string }>();
  /** Nodes that may run tasks, and per network how many of them already have their endpoint. */
  private readyNodes = 0;
  private readonly nodeEndpoints = new Map<string, number>();

  static fromStore(tx: ReadTx): Allocations {
    const a = new Allocations();
    for (const n of tx.list("networks")) a.addNetwork(n);
    for (const s of tx.list("services")) {
      for (const p of s.Endpoint?.Ports ?? [])
        if (p.PublishMode === "ingress" && p.PublishedPort > 0)
          a.ports.set(portKey(p), { id: s.ID, name: s.Spec.Name });
      for (const v of s.Endpoint?.VirtualIPs ?? []) a.claim(v.NetworkID, v.Addr);
    }
    for (const t of tx.list("tasks")) {
      if (TERMINAL_STATES.has(t.Status.State)) continue;
      for (const att of t.NetworksAttachments ?? [])
        for (const addr of att.Addresses) a.claim(att.Network.ID, addr);
    }
    // Plain containers' attachments hold their address while they exist (their node asks to
    // delete them when the container stops).
    for (const att of tx.list("attachments"))
      for (const addr of att.Attachment.Addresses) a.claim(att.Attachment.Network.ID, addr);
    for (const node of tx.list("nodes")) {
      if (node.Status.State === "ready") a.readyNodes++;
      for (const att of node.Attachments ?? []) {
        a.nodeEndpoints.set(att.Network.ID, (a.nodeEndpoints.get(att.Network.ID) ?? 0) + 1);
        for (const addr of att.Addresses) a.claim(att.Network.ID, addr);
      }
    }
    return a;
  }

  addNetwork(n: NetworkObject): void {
    this.networks.set(n.ID, n);
    const vni = vniOf(n);
    if (vni !== undefined) this.vnis.set(vni, n.Spec.Name);
    const subnet = tryCidr(subnetOf(n));
    if (subnet) this.pools.set(n.ID, new AddressPool(subnet, ipToInt(gatewayOf(n) ?? "")));
  }

  private claim(networkId: string, address: string): void {
    const ip = addressOf(address);
    if (ip !== undefined) this.pools.get(networkId)?.claim(ip);
  }

  release(networkId: string, address: string): void {
    const ip = addressOf(address);
    if (ip !== undefined) this.pools.get(networkId)?.release(ip);
  }

  ingress(): NetworkObject | undefined {
    return [...this.networks.values()].find(isIngress);
  }

  /** Addresses handed out per network (node endpoints, VIPs, tasks): what the no-leak test reads. */
  usage(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [id, pool] of this.pools) out[this.networks.get(id)?.Spec.Name ?? id] = pool.inUse;
    return out;
  }

  // ---- networks ---------------------------------------------------------------------------

  /**
   * A new network's subnet, gateway and VXLAN id: the user's subnet, refused (409) when it
   * overlaps another cluster network, or the next free /24 of 10.0.0.0/8; the lowest free VXLAN
   * id from 4097 (4096 for ingress), or the one the user named in the driver options.
   */
  networkAllocation(spec: NetworkSpec): { subnet: string; gateway: string; vni: number } {
    const others = [...this.networks.values()].flatMap((n) => {
      const c = tryCidr(subnetOf(n));
      return c ? [{ n, c }] : [];
    });
    const given = spec.IPAMOptions?.Configs?.find((c) => c.Subnet)?.Subnet;
    let subnet: Cidr;
    if (given) {
      subnet = parseCidr(given);
      if (subnet.prefix > 29)
        throw invalid(
          `subnet ${given} is too small for an overlay network: use a /29 or larger, such as /24`,
        );
      const clash = others.find((o) => overlaps(o.c, subnet));
      if (clash)
        throw conflict(
          `subnet ${formatCidr(subnet)} overlaps network ${clash.n.Spec.Name} (${formatCidr(clash.c)}): choose another --subnet`,
        );
    } else {
      const ingressReserved = spec.Ingress || this.ingress() ? [] : [parseCidr(INGRESS_SUBNET)];
      const taken = [...others.map((o) => o.c), ...ingressReserved];
      const wanted = spec.Ingress ? [parseCidr(INGRESS_SUBNET)] : [];
      const step = 2 ** (32 - DEFAULT_SUBNET_PREFIX);
      const found =
        wanted.find((c) => !taken.some((t) => overlaps(t, c))) ??
        (() => {
          for (
            let base = DEFAULT_POOL.base;
            base < DEFAULT_POOL.base + 2 ** (32 - DEFAULT_POOL.prefix);
            base += step
          ) {
            const c = { base, prefix: DEFAULT_SUBNET_PREFIX };
            if (!taken.some((t) => overlaps(t, c))) return c;
          }
          return undefined;
        })();
      if (!found) throw conflict("no free subnet is left in 10.0.0.0/8: remove a network or give --subnet");
      subnet = found;
    }
    const givenGateway = spec.IPAMOptions?.Configs?.find((c) => c.Gateway)?.Gateway;
    let gateway = intToIp(subnet.base + 1);
    if (givenGateway) {
      const g = ipToInt(givenGateway);
      if (g === undefined || g <= subnet.base || g >= subnet.base + 2 ** (32 - subnet.prefix) - 1)
        throw invalid(
          `gateway ${givenGateway} is not an address of subnet ${formatCidr(subnet)}: choose one inside it`,
        );
      gateway = givenGateway;
    }
    return { subnet: formatCidr(subnet), gateway, vni: this.vniFor(spec) };
  }

  private vniFor(spec: NetworkSpec): number {
    const option = spec.DriverConfiguration?.Options?.[VXLAN_ID_OPTION];
    if (option !== undefined) {
      const v = Number(option.split(",")[0]);
      if (!Number.isInteger(v) || v < 1 || v > MAX_VNI)
        throw invalid(`invalid VXLAN id ${JSON.stringify(option)}: use a whole number from 1 to ${MAX_VNI}`);
      const holder = this.vnis.get(v);
      if (holder !== undefined)
        throw conflict(`VXLAN id ${v} is already used by network ${holder}: choose another`);
      return v;
    }
    if (spec.Ingress && !this.vnis.has(INGRESS_VNI)) return INGRESS_VNI;
    for (let v = FIRST_VNI; v <= MAX_VNI; v++) if (!this.vnis.has(v)) return v;
    throw conflict("no free VXLAN id is left");
  }

  /** A network object's allocated parts, for tx.create. */
  newNetwork(spec: NetworkSpec): Omit<NetworkObject, "ID" | "Meta"> {
    const { subnet, gateway, vni } = this.networkAllocation(spec);
    const driverOptions = { ...(spec.DriverConfiguration?.Options ?? {}) };
    delete driverOptions[VXLAN_ID_OPTION];
    return {
      Spec: {
        ...spec,
        DriverConfiguration: {
          Name: "overlay",
          ...(Object.keys(driverOptions).length > 0 ? { Options: driverOptions } : {}),
        },
        IPAMOptions: {
          Driver: { Name: spec.IPAMOptions?.Driver?.Name || "default" },
          Configs: (spec.IPAMOptions?.Configs ?? []).filter((c) => c.Subnet || c.Gateway),
        },
      },
      DriverState: { Name: "overlay", Options: { [VXLAN_ID_OPTION]: String(vni) } },
      IPAMOptions: { Driver: { Name: "default" }, Configs: [{ Subnet: subnet, Gateway: gateway }] },
    };
  }

  // ---- services ---------------------------------------------------------------------------

  /**
   * A service's endpoint: its ports (mesh ports published as given, 409 when another service
   * has one, or picked from 30000-32767; the ones it had are kept) and a VIP per network
   * (kept when it had one) unless dnsrr. Changes this object's pools; a network without a free
   * address is named in `missing` and gets its VIP at a later pass.
   */
  serviceEndpoint(service: Pick<ServiceObject, "ID" | "Spec" | "Endpoint">): {
    endpoint: ServiceEndpoint;
    missing: string[];
  } {
    const name = service.Spec.Name;
    const spec = endpointSpecOf(service.Spec);
    const mode = spec.Mode === "dnsrr" ? "dnsrr" : "vip";
    const wantedPorts = portsOf(spec);
    const had = service.Endpoint?.Ports ?? [];
    // Ports of this service go back first, so an update may keep or move them.
    for (const [k, holder] of this.ports) if (holder.id === service.ID) this.ports.delete(k);
    const seen = new Set<string>();
    const ports: PortConfig[] = [];
    for (const p of wantedPorts) {
      if (p.PublishMode !== "ingress") {
        ports.push(p);
        continue;
      }
      if (p.PublishedPort === 0) {
        const before = had.find(
          (h) =>
            h.PublishMode === "ingress" &&
            h.TargetPort === p.TargetPort &&
            h.Protocol === p.Protocol &&
            !this.ports.has(portKey(h)) &&
            !seen.has(portKey(h)) &&
            !wantedPorts.some((w) => w.PublishedPort === h.PublishedPort && w.Protocol === h.Protocol),
        );
        let port = before?.PublishedPort;
        for (let x = MESH_PORT_FIRST; port === undefined && x <= MESH_PORT_LAST; x++) {
          const k = portKey({ Protocol: p.Protocol, PublishedPort: x });
          if (this.ports.has(k) || seen.has(k)) continue;
          if (wantedPorts.some((w) => w.PublishedPort === x && w.Protocol === p.Protocol)) continue;
          port = x;
        }
        if (port === undefined)
          throw conflict(
            `no free routing-mesh port is left in ${MESH_PORT_FIRST}-${MESH_PORT_LAST} for service ${name}: publish a port of your choice`,
          );
        p.PublishedPort = port;
      }
      const k = portKey(p);
      const holder = this.ports.get(k);
      if (holder)
        throw conflict(
          `port '${p.PublishedPort}' is already in use by service '${holder.name}' (${holder.id}) as an ingress port: publish another port`,
        );
      if (seen.has(k)) throw invalid(`service ${name} publishes port ${p.PublishedPort}/${p.Protocol} twice`);
      seen.add(k);
      ports.push(p);
    }
    for (const p of ports)
      if (p.PublishMode === "ingress") this.ports.set(portKey(p), { id: service.ID, name });

    const ingress = this.ingress();
    const wanted = networksOfTemplate(service.Spec.TaskTemplate).map((n) => n.Target);
    if (ingress && ports.some((p) => p.PublishMode === "ingress") && !wanted.includes(ingress.ID))
      wanted.push(ingress.ID);
    const current = service.Endpoint?.VirtualIPs ?? [];
    const vips: Array<{ NetworkID: string; Addr: string }> = [];
    const missing: string[] = [];
    for (const v of current)
      if (mode === "dnsrr" || !wanted.includes(v.NetworkID) || !this.pools.has(v.NetworkID))
        this.release(v.NetworkID, v.Addr);
    if (mode === "vip") {
      for (const id of [...new Set(wanted)]) {
        const pool = this.pools.get(id);
        if (!pool) continue;
        const kept = current.find((v) => v.NetworkID === id);
        if (kept) {
          vips.push(kept);
          continue;
        }
        const ip = pool.take();
        if (ip === undefined) missing.push(this.networks.get(id)?.Spec.Name ?? id);
        else vips.push({ NetworkID: id, Addr: pool.format(ip) });
      }
    }
    const endpoint: ServiceEndpoint = {
      Spec: { Mode: mode, ...(spec.Ports && spec.Ports.length > 0 ? { Ports: spec.Ports } : {}) },
      ...(ports.length > 0 ? { Ports: ports } : {}),
      ...(vips.length > 0 ? { VirtualIPs: vips } : {}),
    };
    return { endpoint, missing };
  }

  // ---- tasks and nodes --------------------------------------------------------------------

  /** A task's addresses, one per network it needs, or why it must wait (all or nothing). */
  taskAttachments(task: TaskObject): { attachments: NetworkAttachment[] } | { reason: string } {
    const ingressId = this.ingress()?.ID;
    const aliases = new Map(networksOfTemplate(task.Spec).map((n) => [n.Target, n.Aliases]));
    const out: NetworkAttachment[] = [];
    const giveBack = () => {
      for (const a of out) for (const addr of a.Addresses) this.release(a.Network.ID, addr);
    };
    for (const id of taskNetworkIds(task, ingressId)) {
      const n = this.networks.get(id);
      const pool = this.pools.get(id);
      if (!n || !pool) {
        giveBack();
        return { reason: `network ${id} not found` };
      }
      // Node endpoints are given after a task is placed; without one a node never makes the
      // network, so its tasks would wait forever. Tasks leave an address for every ready node.
      const unplacedNodes =
        id === ingressId ? 0 : Math.max(0, this.readyNodes - (this.nodeEndpoints.get(id) ?? 0));
      const ip = pool.free > unplacedNodes ? pool.take() : undefined;
      if (ip === undefined) {
        giveBack();
        return { reason: noFreeAddress(n.Spec.Name) };
      }
      const a = aliases.get(id);
      out.push({
        Network: attachmentView(n),
        Addresses: [pool.format(ip)],
        ...(a && a.length > 0 ? { Aliases: a } : {}),
      });
    }
    return { attachments: out };
  }

  /**
   * A plain container's address on an attachable network (ResourceAllocator.AttachNetwork): the
   * one asked for (`--ip`; 409 when taken, 400 outside the subnet) or the lowest free one. Like
   * a task's, it leaves a free address for every ready node still without its endpoint on the
   * network, the attaching node's own among them.
   */
  attachmentAddress(networkId: string, requested?: string): string {
    const n = this.networks.get(networkId);
    const pool = this.pools.get(networkId);
    if (!n || !pool) throw notFound(`network ${networkId} not found`);
    const name = n.Spec.Name;
    const unplacedNodes = isIngress(n)
      ? 0
      : Math.max(0, this.readyNodes - (this.nodeEndpoints.get(networkId) ?? 0));
    if (requested) {
      const ip = ipToInt(requested);
      if (ip === undefined || !contains(pool.cidr, ip))
        throw invalid(
          `address ${requested} is not in network ${name}'s subnet ${formatCidr(pool.cidr)}: choose an --ip inside it, or leave --ip out`,
        );
      if (!(pool.free > unplacedNodes) || !pool.claim(ip))
        throw conflict(
          `address ${requested} on network ${name} is already in use (or reserved): choose another --ip, or leave --ip out`,
        );
      return pool.format(ip);
    }
    const ip = pool.free > unplacedNodes ? pool.take() : undefined;
    if (ip === undefined)
      throw conflict(
        `${noFreeAddress(name)}: stop containers or services on it, or use a network with a larger --subnet`,
      );
    return pool.format(ip);
  }

  /**
   * A node's own endpoints for the networks it takes part in: kept where it has one, new ones
   * taken, the rest given back. Networks without a free address are left out (a later pass).
   */
  nodeAttachments(node: NodeObject, networkIds: string[]): NetworkAttachment[] {
    const current = node.Attachments ?? [];
    const out: NetworkAttachment[] = [];
    for (const a of current)
      if (!networkIds.includes(a.Network.ID))
        for (const addr of a.Addresses) this.release(a.Network.ID, addr);
    for (const id of networkIds) {
      const n = this.networks.get(id);
      const pool = this.pools.get(id);
      if (!n || !pool) continue;
      const kept = current.find((a) => a.Network.ID === id && a.Addresses.length > 0);
      if (kept) {
        out.push({ Network: attachmentView(n), Addresses: kept.Addresses });
        continue;
      }
      const ip = pool.take();
      if (ip !== undefined) out.push({ Network: attachmentView(n), Addresses: [pool.format(ip)] });
    }
    return out;
  }
}

// ---- in a transaction ------------------------------------------------------------------------

/**
 * The ingress network, made here and nowhere else: at a leader's first allocator pass, and
 * whenever a service publishes through the routing mesh while the cluster has none (the user
 * removed it). `a` learns of it. Whether it was made.
 */
export function ensureIngress(tx: WriteTx, a: Allocations): boolean {
  if (a.ingress() || tx.byName("networks", INGRESS_NAME)) return false;
  const ingress = tx.create(
    "networks",
    a.newNetwork({
      Name: INGRESS_NAME,
      Labels: {},
      Ingress: true,
      Attachable: false,
      IPAMOptions: { Driver: { Name: "default" }, Configs: [{ Subnet: INGRESS_SUBNET }] },
    }),
  );
  a.addNetwork(ingress);
  return true;
}

/**
 * A service's endpoint (mesh ports, VIPs) given in `tx`, ingress made first when the service
 * publishes through the routing mesh. The control API calls it inside its create and update,
 * so a clash is the user's 409 and inspect shows the VIPs at once; the allocator's pass gives
 * what was missing later (a network without a free address).
 */
export function allocateServiceEndpoint(
  tx: WriteTx,
  service: Pick<ServiceObject, "ID" | "Spec" | "Endpoint">,
): ServiceEndpoint {
  const a = Allocations.fromStore(tx);
  if (usesIngress(endpointSpecOf(service.Spec))) ensureIngress(tx, a);
  return a.serviceEndpoint(service).endpoint;
}

// ---- the lock -------------------------------------------------------------------------------

const locks = new WeakMap<ClusterStore, Promise<unknown>>();

/**
 * Runs `fn` when no other allocation on this store runs: the control API's network and service
 * writes and the allocator's passes read what is taken and commit what they took one at a time.
 */
export function withAllocationLock<T>(store: ClusterStore, fn: () => Promise<T>): Promise<T> {
  const before = locks.get(store) ?? Promise.resolve();
  const run = before.then(fn, fn);
  locks.set(
    store,
    run.catch(() => undefined),
  );
  return run;
}

/**
 * A service spec with its networks resolved: names become ids in TaskTemplate.Networks (the
 * deprecated Spec.Networks moves there), an unknown network is a 404 and ingress cannot be
 * named (it comes with published ports).
 */
export function resolveServiceNetworks(tx: ReadTx, spec: ServiceObject["Spec"]): ServiceObject["Spec"] {
  const top = (spec as { Networks?: unknown }).Networks;
  const template = { ...(spec.TaskTemplate ?? {}) } as Record<string, unknown>;
  const given = [
    ...networksOfTemplate(template),
    ...(Array.isArray(top) ? (top as NetworkAttachmentConfig[]).filter((n) => n && n.Target) : []),
  ];
  const out: NetworkAttachmentConfig[] = [];
  for (const n of given) {
    const net = findByRef(tx, "networks", n.Target);
    if (!net)
      throw notFound(
        `network ${n.Target} not found: create it with \`docker network create -d overlay ${n.Target}\` (services can only use swarm-scoped overlay networks)`,
      );
    if (isIngress(net))
      throw invalid(
        `service ${spec.Name} cannot be explicitly attached to the ingress network ${net.Spec.Name}: publish a port instead`,
      );
    if (out.some((o) => o.Target === net.ID)) continue;
    out.push({ ...n, Target: net.ID });
  }
  const { Networks: _top, ...rest } = spec as ServiceObject["Spec"] & { Networks?: unknown };
  if (out.length > 0) template.Networks = out;
  else delete template.Networks;
  const e = endpointSpecOf(spec);
  if (e.Mode === "dnsrr" && usesIngress(e))
    throw invalid(
      `service ${spec.Name}: port published with ingress mode can't be used with dnsrr mode: publish with mode=host or use --endpoint-mode vip`,
    );
  if (e.Mode !== undefined && e.Mode !== "vip" && e.Mode !== "dnsrr")
    throw invalid(`invalid endpoint mode ${JSON.stringify(e.Mode)}: use vip or dnsrr`);
  return { ...rest, TaskTemplate: template } as ServiceObject["Spec"];
}
