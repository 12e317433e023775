// The kernel state an overlay network needs on one host, as plain data, and the smallest set of
// `ip`/`bridge` commands that turns what the host has into it. Pure: the driver reads the host
// (kernel.ts), these functions decide, so every decision is a unit test away.
//
// Per overlay network this node takes part in (it has a NodeEndpoint there): a bridge holding
// the node's address (gateway of its containers, MAC derived from the address so that other
// hosts can write it in their tables) and a VXLAN port (no learning, ARP answered from the
// neighbour table: `proxy`). For every endpoint on another host, a forwarding entry (MAC → that
// host's underlay address) and a permanent neighbour entry (IP → MAC) on the VXLAN device.
import { isIPv4 } from "node:net";
import type { NetworkState, OverlayNetwork } from "../../../../shared/network-state.js";
import { parseSubnet } from "../cidr.js";
import { macForAddress } from "../host-links.js";
import {
  OVERLAY_MTU,
  VXLAN_PORT,
  isOverlayBridgeName,
  isOverlayVxlanName,
  overlayBridgeName,
  overlayVxlanName,
} from "./names.js";

export interface OverlaySelf {
  nodeId: string;
  /** This node's underlay address: the VXLAN source, what other nodes' entries point to. */
  hostAddr: string;
}

export interface DesiredNetwork {
  network: OverlayNetwork;
  prefix: number;
  bridge: string;
  vxlan: string;
  /** This node's address on the network (no prefix). */
  address: string;
  /** The bridge's MAC, from the address as for every endpoint. */
  mac: string;
}

export interface FdbEntry {
  dev: string;
  mac: string;
  dst: string;
}

export interface NeighEntry {
  dev: string;
  ip: string;
  mac: string;
}

/** An entry of the state left out because a value in it could not go into a command line. */
export interface Refusal {
  nodeId: string;
  reason: string;
}

export interface DesiredHost {
  hostAddr: string;
  networks: DesiredNetwork[];
  fdb: FdbEntry[];
  neigh: NeighEntry[];
  refused: Refusal[];
}

export interface CurrentLink {
  name: string;
  kind?: string;
  mtu: number;
  master?: string;
  up: boolean;
  mac: string;
  /** IPv4 addresses with prefix. */
  addrs: string[];
  vxlan?: { id: number; local?: string; port: number; learning: boolean; proxy: boolean };
}

export interface CurrentHost {
  /** Only links with shoal's overlay prefixes. */
  links: CurrentLink[];
  /** Only entries with a remote (dst) on shoal's VXLAN devices. */
  fdb: FdbEntry[];
  /** Only permanent entries on shoal's VXLAN devices. */
  neigh: NeighEntry[];
}

export interface HostChanges {
  /** For `ip -batch`: links, addresses, neighbours, in order. */
  ip: string[];
  /** For `bridge -batch`: forwarding entries, after the links exist. */
  bridge: string[];
  /** Bridges made by this change (their sysctls need setting). */
  createdBridges: string[];
  /** Devices removed by this change. */
  removedLinks: string[];
}

/** Text from the state, checked before it goes into `ip`/`bridge` batch lines. */
function isSubnetText(v: string): boolean {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(v);
  return m !== null && isIPv4(m[1]) && Number(m[2]) <= 32;
}

function networkProblem(n: OverlayNetwork): string | undefined {
  if (!isSubnetText(n.subnet)) return `subnet ${JSON.stringify(n.subnet)} is not an IPv4 CIDR`;
  if (!Number.isInteger(n.vni) || n.vni < 1 || n.vni >= 2 ** 24)
    return `VXLAN id ${JSON.stringify(n.vni)} is out of range`;
  return undefined;
}

/**
 * What this host must have for `state`. Every address that goes into a batch line is checked
 * here (node:net's isIPv4): an endpoint whose underlay or overlay address is anything else (a
 * newline followed by a command, say) is left out and named in `refused`, so no part of it is
 * ever run. This node's own address is configuration: a bad one throws.
 */
export function desiredHost(state: NetworkState, self: OverlaySelf): DesiredHost {
  if (!isIPv4(self.hostAddr))
    throw new Error(
      `this node's underlay address ${JSON.stringify(self.hostAddr)} is not an IPv4 address: fix its advertise address`,
    );
  const networks: DesiredNetwork[] = [];
  const fdb = new Map<string, FdbEntry>();
  const neigh = new Map<string, NeighEntry>();
  const refused: Refusal[] = [];
  const refuse = (nodeId: string, reason: string): false => (refused.push({ nodeId, reason }), false);
  for (const network of [...state.networks].sort((a, b) => a.id.localeCompare(b.id))) {
    const mine = state.nodes.find((e) => e.networkId === network.id && e.nodeId === self.nodeId);
    if (!mine) continue;
    const problem = networkProblem(network);
    if (problem) {
      refuse(self.nodeId, `network ${network.id}: ${problem}`);
      continue;
    }
    if (!isIPv4(mine.address)) {
      refuse(
        self.nodeId,
        `network ${network.id}: this node's address ${JSON.stringify(mine.address)} is not an IPv4 address`,
      );
      continue;
    }
    const d: DesiredNetwork = {
      network,
      prefix: parseSubnet(network.subnet).prefix,
      bridge: overlayBridgeName(network.id),
      vxlan: overlayVxlanName(network.id),
      address: mine.address,
      mac: macForAddress(mine.address),
    };
    networks.push(d);
    const isLocal = (nodeId: string, hostAddr: string): boolean =>
      nodeId === self.nodeId || hostAddr === self.hostAddr;
    // Addresses that live on this host are never pointed elsewhere, whatever a stale entry says.
    const local = new Set<string>([mine.address]);
    for (const t of state.tasks)
      if (t.networkId === network.id && isLocal(t.nodeId, t.hostAddr)) local.add(t.address);
    const usable = (e: { nodeId: string; hostAddr: string; address: string }): boolean => {
      // Not known yet: nothing to point at.
      if (e.hostAddr === "") return false;
      if (!isIPv4(e.hostAddr))
        return refuse(e.nodeId, `underlay address ${JSON.stringify(e.hostAddr)} is not an IPv4 address`);
      if (!isIPv4(e.address))
        return refuse(
          e.nodeId,
          `address ${JSON.stringify(e.address)} on network ${network.id} is not an IPv4 address`,
        );
      return true;
    };
    const remote: Array<{ address: string; hostAddr: string }> = [];
    for (const n of state.nodes)
      if (n.networkId === network.id && !isLocal(n.nodeId, n.hostAddr) && usable(n)) remote.push(n);
    // Running tasks last, so that when two tasks claim one address the running one wins.
    const tasks = state.tasks
      .filter((t) => t.networkId === network.id && !isLocal(t.nodeId, t.hostAddr) && usable(t))
      .sort((a, b) => Number(a.running) - Number(b.running));
    remote.push(...tasks);
    for (const r of remote) {
      if (local.has(r.address)) continue;
      const mac = macForAddress(r.address);
      fdb.set(`${d.vxlan} ${mac}`, { dev: d.vxlan, mac, dst: r.hostAddr });
      neigh.set(`${d.vxlan} ${r.address}`, { dev: d.vxlan, ip: r.address, mac });
    }
  }
  return { hostAddr: self.hostAddr, networks, fdb: [...fdb.values()], neigh: [...neigh.values()], refused };
}

/** Whatever a batch line is made of must be one word of safe characters: never a second command. */
function word(v: string | number): string {
  const text = String(v);
  if (!/^[A-Za-z0-9_.:/-]+$/.test(text))
    throw new Error(`refusing to write ${JSON.stringify(text)} into a batch line`);
  return text;
}

function vxlanMatches(l: CurrentLink, d: DesiredNetwork, hostAddr: string): boolean {
  const v = l.vxlan;
  return (
    l.kind === "vxlan" &&
    v !== undefined &&
    v.id === d.network.vni &&
    v.local === hostAddr &&
    v.port === VXLAN_PORT &&
    !v.learning &&
    v.proxy
  );
}

/**
 * The commands that make `current` into `desired`. Devices in `keep` (networks this node left
 * while local containers still use them) are neither removed nor changed, and neither are their
 * entries.
 */
export function diffHost(
  desired: DesiredHost,
  current: CurrentHost,
  keep: ReadonlySet<string> = new Set(),
): HostChanges {
  const ip: string[] = [];
  const neighLines: string[] = [];
  const bridge: string[] = [];
  const createdBridges: string[] = [];
  const removedLinks: string[] = [];
  const links = new Map(current.links.map((l) => [l.name, l]));
  const wanted = new Set<string>();
  for (const d of desired.networks) wanted.add(d.bridge).add(d.vxlan);

  // Stale devices first: a VXLAN of a network that is gone would hold its VNI and port.
  for (const l of current.links) {
    if (wanted.has(l.name) || keep.has(l.name)) continue;
    if (!isOverlayBridgeName(l.name) && !isOverlayVxlanName(l.name)) continue;
    ip.push(`link del ${l.name}`);
    removedLinks.push(l.name);
  }

  const recreated = new Set<string>();
  for (const d of desired.networks) {
    const cidr = `${word(d.address)}/${d.prefix}`;
    let br = links.get(d.bridge);
    if (br && br.kind !== "bridge") {
      ip.push(`link del ${d.bridge}`);
      removedLinks.push(d.bridge);
      br = undefined;
    }
    if (!br) {
      ip.push(`link add ${d.bridge} address ${d.mac} mtu ${OVERLAY_MTU} type bridge`);
      ip.push(`addr add ${cidr} dev ${d.bridge}`);
      ip.push(`link set ${d.bridge} up`);
      createdBridges.push(d.bridge);
    } else {
      if (br.mac.toLowerCase() !== d.mac) ip.push(`link set dev ${d.bridge} address ${d.mac}`);
      if (br.mtu !== OVERLAY_MTU) ip.push(`link set dev ${d.bridge} mtu ${OVERLAY_MTU}`);
      for (const a of br.addrs) if (a !== cidr) ip.push(`addr del ${a} dev ${d.bridge}`);
      if (!br.addrs.includes(cidr)) ip.push(`addr add ${cidr} dev ${d.bridge}`);
      if (!br.up) ip.push(`link set ${d.bridge} up`);
    }
    let vx = links.get(d.vxlan);
    if (vx && !vxlanMatches(vx, d, desired.hostAddr)) {
      // VNI, port and flags cannot be changed in place.
      ip.push(`link del ${d.vxlan}`);
      removedLinks.push(d.vxlan);
      recreated.add(d.vxlan);
      vx = undefined;
    }
    if (!vx) {
      ip.push(
        `link add ${d.vxlan} mtu ${OVERLAY_MTU} type vxlan id ${word(d.network.vni)} dstport ${VXLAN_PORT} local ${word(desired.hostAddr)} nolearning proxy`,
      );
      ip.push(`link set ${d.vxlan} master ${d.bridge}`);
      ip.push(`link set ${d.vxlan} up`);
      recreated.add(d.vxlan);
    } else {
      if (vx.mtu !== OVERLAY_MTU) ip.push(`link set dev ${d.vxlan} mtu ${OVERLAY_MTU}`);
      if (vx.master !== d.bridge) ip.push(`link set ${d.vxlan} master ${d.bridge}`);
      if (!vx.up) ip.push(`link set ${d.vxlan} up`);
    }
  }

  // Entries on a device made (or made again) now start from nothing.
  const gone = new Set([...removedLinks, ...recreated]);
  const fdbNow = new Map<string, FdbEntry>();
  for (const f of current.fdb) if (!gone.has(f.dev)) fdbNow.set(`${f.dev} ${f.mac.toLowerCase()}`, f);
  const fdbWanted = new Set<string>();
  for (const f of desired.fdb) {
    const key = `${f.dev} ${f.mac}`;
    fdbWanted.add(key);
    if (fdbNow.get(key)?.dst === f.dst) continue;
    bridge.push(`fdb replace ${word(f.mac)} dev ${word(f.dev)} dst ${word(f.dst)} self permanent`);
  }
  for (const [key, f] of fdbNow) {
    if (fdbWanted.has(key) || keep.has(f.dev)) continue;
    bridge.push(`fdb del ${word(f.mac)} dev ${word(f.dev)} dst ${word(f.dst)} self`);
  }

  const neighNow = new Map<string, NeighEntry>();
  for (const n of current.neigh) if (!gone.has(n.dev)) neighNow.set(`${n.dev} ${n.ip}`, n);
  const neighWanted = new Set<string>();
  for (const n of desired.neigh) {
    const key = `${n.dev} ${n.ip}`;
    neighWanted.add(key);
    if (neighNow.get(key)?.mac.toLowerCase() === n.mac) continue;
    neighLines.push(`neigh replace ${word(n.ip)} lladdr ${word(n.mac)} dev ${word(n.dev)} nud permanent`);
  }
  for (const [key, n] of neighNow) {
    if (neighWanted.has(key) || keep.has(n.dev)) continue;
    neighLines.push(`neigh del ${word(n.ip)} dev ${word(n.dev)}`);
  }
  return { ip: [...ip, ...neighLines], bridge, createdBridges, removedLinks };
}

// ---- reading the host (the JSON iproute2 prints) ----------------------------------------------

interface RawAddrLink {
  ifname: string;
  mtu?: number;
  master?: string;
  flags?: string[];
  address?: string;
  linkinfo?: {
    info_kind?: string;
    info_data?: { id?: number; local?: string; port?: number; learning?: boolean; proxy?: boolean };
  };
  addr_info?: Array<{ family?: string; local?: string; prefixlen?: number }>;
}

/** `ip -j -d addr show`, keeping shoal's overlay links only. */
export function parseLinks(json: string): CurrentLink[] {
  const raw = JSON.parse(json || "[]") as RawAddrLink[];
  return raw
    .filter((l) => isOverlayBridgeName(l.ifname) || isOverlayVxlanName(l.ifname))
    .map((l) => {
      const info = l.linkinfo?.info_data;
      return {
        name: l.ifname,
        kind: l.linkinfo?.info_kind,
        mtu: l.mtu ?? 0,
        master: l.master,
        up: (l.flags ?? []).includes("UP"),
        mac: (l.address ?? "").toLowerCase(),
        addrs: (l.addr_info ?? [])
          .filter((a) => a.family === "inet" && a.local)
          .map((a) => `${a.local}/${a.prefixlen}`),
        vxlan:
          l.linkinfo?.info_kind === "vxlan"
            ? {
                id: info?.id ?? -1,
                local: info?.local,
                port: info?.port ?? 0,
                learning: info?.learning ?? true,
                proxy: info?.proxy ?? false,
              }
            : undefined,
      };
    });
}

/** `bridge -j fdb show`: the remote entries (with a dst) on shoal's VXLAN devices. */
export function parseFdb(json: string): FdbEntry[] {
  const raw = JSON.parse(json || "[]") as Array<{ mac?: string; ifname?: string; dst?: string }>;
  return raw
    .filter((f) => f.ifname !== undefined && isOverlayVxlanName(f.ifname) && f.dst && f.mac)
    .map((f) => ({ dev: f.ifname as string, mac: (f.mac as string).toLowerCase(), dst: f.dst as string }));
}

/** `ip -j neigh show`: the permanent entries on shoal's VXLAN devices. */
export function parseNeigh(json: string): NeighEntry[] {
  const raw = JSON.parse(json || "[]") as Array<{
    dst?: string;
    dev?: string;
    lladdr?: string;
    state?: string[];
  }>;
  return raw
    .filter(
      (n) =>
        n.dev !== undefined &&
        isOverlayVxlanName(n.dev) &&
        n.dst !== undefined &&
        n.lladdr !== undefined &&
        (n.state ?? []).includes("PERMANENT"),
    )
    .map((n) => ({ dev: n.dev as string, ip: n.dst as string, mac: (n.lladdr as string).toLowerCase() }));
}
