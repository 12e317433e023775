// The cluster's names, per overlay network, built from the NetworkState every host receives:
// service names (the VIP on that network, or every running task address for dnsrr),
// `tasks.<service>` (every running task address), and task names and aliases. Replaced whole on
// every apply; the DNS server reads it through DnsRecords, scoped to the asker's networks.
import type { NetworkState } from "../../../shared/network-state.js";

/** As records.ts: case-insensitive, a trailing dot ignored (kept here to avoid an import cycle). */
function normalizeName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}

export interface ClusterNames {
  /** networkId → name → addresses (possibly none: a known name with nothing running). */
  names: Map<string, Map<string, string[]>>;
  /** networkId → address → name, for PTR. */
  reverse: Map<string, Map<string, string>>;
  /** A task address → the networks its task is on: who asks from that address sees them. */
  clientNetworks: Map<string, Set<string>>;
}

export const EMPTY_CLUSTER_NAMES: ClusterNames = {
  names: new Map(),
  reverse: new Map(),
  clientNetworks: new Map(),
};

function ipNumber(ip: string): number {
  return ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

function add(map: Map<string, Map<string, string[]>>, net: string, name: string, ips: string[]): void {
  const key = normalizeName(name);
  if (key === "") return;
  let names = map.get(net);
  if (!names) map.set(net, (names = new Map()));
  const merged = new Set([...(names.get(key) ?? []), ...ips]);
  names.set(
    key,
    [...merged].sort((a, b) => ipNumber(a) - ipNumber(b)),
  );
}

export function clusterNames(state: NetworkState): ClusterNames {
  const names = new Map<string, Map<string, string[]>>();
  const reverse = new Map<string, Map<string, string>>();
  const setReverse = (net: string, ip: string, name: string): void => {
    let m = reverse.get(net);
    if (!m) reverse.set(net, (m = new Map()));
    if (!m.has(ip)) m.set(ip, normalizeName(name));
  };
  const networks = new Set(state.networks.map((n) => n.id));
  for (const s of state.services) {
    // A service is on the networks it has a VIP on and those its tasks are on.
    const on = new Set<string>(s.vips.map((v) => v.networkId));
    for (const t of state.tasks) if (t.serviceId === s.id) on.add(t.networkId);
    for (const net of on) {
      if (!networks.has(net)) continue;
      const running = state.tasks
        .filter((t) => t.serviceId === s.id && t.networkId === net && t.running)
        .map((t) => t.address);
      const vip = s.vips.find((v) => v.networkId === net)?.address;
      if (s.mode === "vip" && vip !== undefined) {
        add(names, net, s.name, [vip]);
        setReverse(net, vip, s.name);
      } else {
        add(names, net, s.name, running);
      }
      add(names, net, `tasks.${s.name}`, running);
    }
  }
  const clientNetworks = new Map<string, Set<string>>();
  const taskNetworks = new Map<string, Set<string>>();
  for (const t of state.tasks) {
    if (!networks.has(t.networkId)) continue;
    let set = taskNetworks.get(t.taskId);
    if (!set) taskNetworks.set(t.taskId, (set = new Set()));
    set.add(t.networkId);
  }
  for (const t of state.tasks) {
    if (!networks.has(t.networkId)) continue;
    clientNetworks.set(
      t.address,
      new Set([...(clientNetworks.get(t.address) ?? []), ...(taskNetworks.get(t.taskId) ?? [])]),
    );
    if (!t.running) continue;
    for (const n of t.names) add(names, t.networkId, n, [t.address]);
    if (t.names.length > 0) setReverse(t.networkId, t.address, t.names[0]);
  }
  return { names, reverse, clientNetworks };
}
