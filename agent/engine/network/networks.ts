// The network objects themselves: the predefined ones, create with subnet picking, lookup by
// name/id/prefix, remove. Kernel state (bridges) and address pools hang off each network.
import { conflict, invalid, notFound } from "../../../shared/errors.js";
import { newId } from "../../../shared/ids.js";
import { AddressPool } from "./address-pool.js";
import { formatSubnet, overlaps, parseIp, parseSubnet, type Subnet } from "./cidr.js";
import { hostRoutes, pickFreeSubnet } from "./subnet-picker.js";
import {
  BRIDGE_NAME_OPTION,
  DEFAULT_NETWORK,
  PREDEFINED,
  type CreateNetworkRequest,
  type NetworkRecord,
  VXLAN_ID_OPTION,
} from "./types.js";
import type { OverlayNetwork } from "../../../shared/network-state.js";

const NAME_RULE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export interface Network {
  record: NetworkRecord;
  /** Bridge networks only. */
  pool?: AddressPool;
}

function baseRecord(name: string, driver: NetworkRecord["Driver"]): NetworkRecord {
  return {
    Name: name,
    Id: newId(),
    Created: new Date().toISOString(),
    Scope: "local",
    Driver: driver,
    EnableIPv6: false,
    IPAM: { Driver: "default", Options: null, Config: [] },
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigOnly: false,
    Options: {},
    Labels: {},
  };
}

function poolOf(record: NetworkRecord): AddressPool | undefined {
  if (!record.Pool) return undefined;
  const range = record.Pool.range !== undefined ? parseSubnet(record.Pool.range) : undefined;
  return AddressPool.restore(record.Pool, parseSubnet(record.Pool.subnet), range);
}

/** The subnet of a bridge network (from its pool). */
export function subnetOf(n: Network): Subnet | undefined {
  return n.record.Pool ? parseSubnet(n.record.Pool.subnet) : undefined;
}

/** In-memory table of networks with Docker's lookup rules. */
export class NetworkTable {
  private readonly byId = new Map<string, Network>();

  constructor(records: NetworkRecord[]) {
    for (const r of records) this.byId.set(r.Id, { record: r, pool: poolOf(r) });
  }

  all(): Network[] {
    return [...this.byId.values()];
  }

  records(): NetworkRecord[] {
    return this.all().map((n) => n.record);
  }

  /** Networks with a Linux bridge and a pool on this host: bridge networks and overlay networks. */
  bridges(): Network[] {
    return this.all().filter(
      (n) => (n.record.Driver === "bridge" || n.record.Driver === "overlay") && n.pool,
    );
  }

  /** The cluster's overlay networks this host takes part in. */
  overlays(): Network[] {
    return this.all().filter((n) => n.record.Driver === "overlay");
  }

  /** By full id, exact name, then a unique id prefix (Docker's order). */
  find(ref: string): Network | undefined {
    const byId = this.byId.get(ref);
    if (byId) return byId;
    const byName = this.all().find((n) => n.record.Name === ref);
    if (byName) return byName;
    if (ref.length === 0) return undefined;
    const prefixed = this.all().filter((n) => n.record.Id.startsWith(ref));
    if (prefixed.length > 1)
      throw invalid(`network ${ref} is ambiguous (${prefixed.length} matches found): use more of the id`);
    return prefixed[0];
  }

  get(ref: string): Network {
    const n = this.find(ref);
    if (!n) throw notFound(`network ${ref} not found`);
    return n;
  }

  add(n: Network): void {
    this.byId.set(n.record.Id, n);
  }

  delete(id: string): void {
    this.byId.delete(id);
  }
}

/** The subnets a new network must not overlap: other networks and the host's routes not made by shoal. */
async function subnetsInUse(table: NetworkTable): Promise<Array<{ subnet: Subnet; owner: string }>> {
  const ours = table.bridges().map((n) => ({ subnet: subnetOf(n) as Subnet, owner: n.record.Name }));
  // A bridge's own connected route is the network itself, not a clash.
  const routes = (await hostRoutes()).filter(
    (r) => !ours.some((o) => o.subnet.base === r.base && o.subnet.prefix === r.prefix),
  );
  return [...ours, ...routes.map((subnet) => ({ subnet, owner: "a route of this host" }))];
}

/** A new bridge network record: validated, with a free subnet and its pool. */
export async function newBridgeNetwork(
  table: NetworkTable,
  req: CreateNetworkRequest,
  bridgeName: (id: string) => string,
): Promise<Network> {
  const name = req.Name;
  if (typeof name !== "string" || name === "") throw invalid("a network needs a name: network create NAME");
  if (!NAME_RULE.test(name))
    throw invalid(`invalid network name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  if (PREDEFINED.has(name)) throw conflict(`${name} is a pre-defined network and cannot be created`);
  if (table.find(name)?.record.Name === name) throw conflict(`network with name ${name} already exists`);
  const driver = req.Driver || "bridge";
  if (driver !== "bridge") {
    throw invalid(
      `network driver "${driver}" is not supported on a single host: use bridge (overlay networks need a cluster)`,
    );
  }
  if (req.EnableIPv6) throw invalid("IPv6 networks are not supported yet: leave out --ipv6");
  const configs = req.IPAM?.Config ?? [];
  if (configs.length > 1) throw invalid("only one IPAM config (one --subnet) per network is supported");
  const cfg = configs[0] ?? {};
  if (cfg.Subnet === undefined && (cfg.Gateway || cfg.IPRange))
    throw invalid("--gateway and --ip-range need --subnet as well");

  const inUse = await subnetsInUse(table);
  let subnet: Subnet;
  if (cfg.Subnet) {
    subnet = parseSubnet(cfg.Subnet);
    const other = inUse.find((u) => overlaps(u.subnet, subnet));
    if (other) {
      throw conflict(
        `invalid pool request: subnet ${formatSubnet(subnet)} overlaps with ${other.owner === "a route of this host" ? other.owner : `network ${other.owner}`} (${formatSubnet(other.subnet)}): choose another --subnet`,
      );
    }
  } else {
    subnet = pickFreeSubnet(inUse.map((u) => u.subnet));
  }
  if (cfg.Gateway) parseIp(cfg.Gateway, "gateway");
  const pool = AddressPool.create(subnet, {
    gateway: cfg.Gateway || undefined,
    range: cfg.IPRange ? parseSubnet(cfg.IPRange, "ip-range") : undefined,
  });
  const record = baseRecord(name, "bridge");
  record.Internal = req.Internal === true;
  record.Attachable = req.Attachable === true;
  record.Labels = { ...(req.Labels ?? {}) };
  record.Options = { ...(req.Options ?? {}) };
  record.IPAM = {
    Driver: "default",
    Options: req.IPAM?.Options ?? {},
    Config: [
      {
        Subnet: formatSubnet(subnet),
        Gateway: pool.state.gateway,
        ...(pool.state.range ? { IPRange: pool.state.range } : {}),
      },
    ],
  };
  const requestedBridge = record.Options[BRIDGE_NAME_OPTION];
  if (requestedBridge !== undefined && !/^[a-zA-Z0-9_.-]{1,15}$/.test(requestedBridge))
    throw invalid(`invalid bridge name "${requestedBridge}": at most 15 letters, digits, "_", "." or "-"`);
  record.BridgeName = requestedBridge ?? bridgeName(record.Id);
  if (table.all().some((n) => n.record.BridgeName === record.BridgeName))
    throw conflict(`bridge ${record.BridgeName} is already used by another network: choose another name`);
  record.Pool = pool.state;
  return { record, pool };
}

/** The predefined networks (bridge, host, none), made on first start. */
export async function predefinedNetworks(
  table: NetworkTable,
  opts: { bridgeName: string; bridgeIp?: string },
): Promise<Network[]> {
  const made: Network[] = [];
  // `--bridge none` (dockerd's spelling): no default bridge; containers default to "none".
  if (!table.find(DEFAULT_NETWORK) && opts.bridgeName !== "none") {
    let subnet: Subnet;
    let gateway: string | undefined;
    if (opts.bridgeIp) {
      const [ip, prefix] = opts.bridgeIp.split("/");
      const addr = parseIp(ip, "--bip address");
      const p = Number(prefix ?? "16");
      const mask = p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0;
      subnet = { base: (addr & mask) >>> 0, prefix: p };
      gateway = ip;
    } else {
      subnet = pickFreeSubnet((await subnetsInUse(table)).map((u) => u.subnet));
    }
    const pool = AddressPool.create(subnet, { gateway });
    const record = baseRecord(DEFAULT_NETWORK, "bridge");
    record.BridgeName = opts.bridgeName;
    record.Options = {
      [BRIDGE_NAME_OPTION]: opts.bridgeName,
      "com.docker.network.bridge.default_bridge": "true",
      "com.docker.network.bridge.enable_ip_masquerade": "true",
    };
    record.IPAM.Config = [{ Subnet: formatSubnet(subnet), Gateway: pool.state.gateway }];
    record.Pool = pool.state;
    made.push({ record, pool });
  }
  if (!table.find("host")) made.push({ record: baseRecord("host", "host") });
  if (!table.find("none")) made.push({ record: baseRecord("none", "null") });
  return made;
}

/**
 * The local record of a cluster overlay network on this host: the cluster's id and name, its
 * subnet, this node's address on it as gateway, its bridge. Addresses are the managers' to
 * decide: the pool takes any address of the subnet a container asks for that is not the
 * gateway and not held here.
 */
export function newOverlayNetwork(net: OverlayNetwork, bridge: string, gateway: string): Network {
  const subnet = parseSubnet(net.subnet);
  const pool = AddressPool.create(subnet, { gateway });
  const record = baseRecord(net.name, "overlay");
  record.Id = net.id;
  record.Scope = "swarm";
  record.Attachable = net.attachable;
  record.Ingress = net.ingress;
  record.Options = { [VXLAN_ID_OPTION]: String(net.vni) };
  record.IPAM = {
    Driver: "default",
    Options: null,
    Config: [{ Subnet: formatSubnet(subnet), Gateway: gateway }],
  };
  record.BridgeName = bridge;
  record.Pool = pool.state;
  return { record, pool };
}

/**
 * Bring an overlay record up to date with the cluster (name, flags, this node's address). The
 * pool keeps what containers hold; a moved gateway takes its new address.
 */
export function updateOverlayNetwork(
  n: Network,
  net: OverlayNetwork,
  bridge: string,
  gateway: string,
): boolean {
  const r = n.record;
  let changed = false;
  const set = <K extends keyof NetworkRecord>(k: K, v: NetworkRecord[K]): void => {
    if (JSON.stringify(r[k]) !== JSON.stringify(v)) {
      r[k] = v;
      changed = true;
    }
  };
  set("Name", net.name);
  set("Attachable", net.attachable);
  set("Ingress", net.ingress);
  set("BridgeName", bridge);
  set("Options", { ...r.Options, [VXLAN_ID_OPTION]: String(net.vni) });
  const pool = n.pool;
  if (pool && pool.state.gateway !== gateway) {
    delete pool.state.allocated[pool.state.gateway];
    pool.state.gateway = gateway;
    pool.state.allocated[gateway] ??= "gateway";
    changed = true;
  }
  set("IPAM", { ...r.IPAM, Config: [{ Subnet: r.IPAM.Config[0]?.Subnet ?? net.subnet, Gateway: gateway }] });
  return changed;
}
