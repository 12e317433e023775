// nftables text for service load balancing and the routing mesh, rendered from the cluster's
// NetworkState. Pure functions; the driver applies the text.
//
// VIPs are balanced inside each container's own network namespace (as Docker does), in a small
// table `shoal_lb`: connections the container opens to a VIP are DNAT'ed on its output hook to
// one of the service's running tasks (numgen inc: round robin per connection), wherever the task
// runs. A VIP without a running task is rejected (connection refused at once, never a hang).
//
// The routing mesh lives in the host's namespace, in its own table beside the engine's: a
// published port on any local address (prerouting and output, `fib daddr type local`) is
// DNAT'ed to a running task's address on the ingress network, and such connections leaving into
// the ingress bridge take this node's own ingress address as source, so the reply of a task on
// another host comes back here over VXLAN.
import { isIPv4 } from "node:net";
import type { NetworkState } from "../../../../shared/network-state.js";
import { localDnatHooks } from "../firewall.js";
import { LB_TABLE, overlayBridgeName } from "./names.js";
import type { OverlaySelf } from "./plan.js";

function ipNumber(ip: string): number {
  return ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

function sortIps(ips: Iterable<string>): string[] {
  return [...new Set(ips)].sort((a, b) => ipNumber(a) - ipNumber(b));
}

/** Running task addresses of a service on a network, sorted. */
function runningBackends(state: NetworkState, serviceId: string, networkId: string): string[] {
  return sortIps(
    state.tasks
      // Only addresses go into nft text (checkNetworkState already left out anything else).
      .filter((t) => t.serviceId === serviceId && t.networkId === networkId && t.running && isIPv4(t.address))
      .map((t) => t.address),
  );
}

/** `numgen inc mod N map { 0 : a, 1 : b }`, or the single address. */
function spread(targets: string[]): string {
  if (targets.length === 1) return targets[0];
  return `numgen inc mod ${targets.length} map { ${targets.map((t, i) => `${i} : ${t}`).join(", ")} }`;
}

export interface VipBalance {
  vip: string;
  /** Empty: the VIP rejects. */
  backends: string[];
}

/** The VIPs a container on `networkIds` can reach, with their running backends. */
export function vipBalances(state: NetworkState, networkIds: Iterable<string>): VipBalance[] {
  const nets = new Set(networkIds);
  const out = new Map<string, VipBalance>();
  for (const s of [...state.services].sort((a, b) => a.id.localeCompare(b.id))) {
    if (s.mode !== "vip") continue;
    for (const v of s.vips) {
      if (!nets.has(v.networkId) || out.has(v.address) || !isIPv4(v.address)) continue;
      out.set(v.address, { vip: v.address, backends: runningBackends(state, s.id, v.networkId) });
    }
  }
  return [...out.values()].sort((a, b) => ipNumber(a.vip) - ipNumber(b.vip));
}

/**
 * The `shoal_lb` table for one container, for `nft -f` in its namespace: replaced whole in one
 * transaction. With no VIP to balance the table is only deleted.
 */
export function renderLbTable(balances: VipBalance[], table = LB_TABLE): string {
  const lines = [`table ip ${table}`, `delete table ip ${table}`];
  if (balances.length === 0) return lines.join("\n") + "\n";
  const live = balances.filter((b) => b.backends.length > 0);
  const dead = balances.filter((b) => b.backends.length === 0).map((b) => b.vip);
  lines.push(
    `table ip ${table} {`,
    `  chain output {`,
    `    type nat hook output priority -100; policy accept;`,
    ...live.map((b) => `    ip daddr ${b.vip} dnat to ${spread(b.backends)}`),
    `  }`,
  );
  if (dead.length > 0) {
    const set = `{ ${dead.join(", ")} }`;
    lines.push(
      `  chain refuse {`,
      `    type filter hook output priority filter; policy accept;`,
      `    ip daddr ${set} meta l4proto tcp reject with tcp reset`,
      `    ip daddr ${set} reject`,
      `  }`,
    );
  }
  lines.push(`}`);
  return lines.join("\n") + "\n";
}

export interface MeshPort {
  protocol: "tcp" | "udp";
  publishedPort: number;
  targetPort: number;
  backends: string[];
}

export interface MeshPlan {
  /** The ingress network's bridge on this host, and this node's address there. */
  bridge: string;
  address: string;
  ports: MeshPort[];
}

/** The routing mesh of this node: undefined when it has no ingress endpoint or nothing is published. */
export function meshPlan(state: NetworkState, self: OverlaySelf): MeshPlan | undefined {
  const ingress = state.networks.find(
    (n) => n.ingress && state.nodes.some((e) => e.networkId === n.id && e.nodeId === self.nodeId),
  );
  if (!ingress) return undefined;
  const mine = state.nodes.find((e) => e.networkId === ingress.id && e.nodeId === self.nodeId);
  if (!mine || !isIPv4(mine.address)) return undefined;
  const ports = new Map<string, MeshPort>();
  for (const s of [...state.services].sort((a, b) => a.id.localeCompare(b.id))) {
    for (const p of s.ports) {
      const key = `${p.protocol}/${p.publishedPort}`;
      // Two services on one port is the allocator's conflict to refuse; the first one keeps it.
      if (ports.has(key) || !Number.isInteger(p.publishedPort) || !Number.isInteger(p.targetPort)) continue;
      ports.set(key, { ...p, backends: runningBackends(state, s.id, ingress.id) });
    }
  }
  if (ports.size === 0) return undefined;
  const list = [...ports.values()].sort(
    (a, b) => a.protocol.localeCompare(b.protocol) || a.publishedPort - b.publishedPort,
  );
  return { bridge: overlayBridgeName(ingress.id), address: mine.address, ports: list };
}

/** The mesh table, replaced whole; without a plan it is only deleted. */
export function renderMeshTable(plan: MeshPlan | undefined, table: string): string {
  const lines = [`table ip ${table}`, `delete table ip ${table}`];
  if (!plan) return lines.join("\n") + "\n";
  const live = plan.ports.filter((p) => p.backends.length > 0);
  const dead = plan.ports.filter((p) => p.backends.length === 0);
  lines.push(
    `table ip ${table} {`,
    // Before the engine's published ports (priority -100), so a mesh port wins a clash.
    ...localDnatHooks("mesh", "-101", "-101"),
    `  chain mesh {`,
    ...live.map(
      (p) =>
        `    ${p.protocol} dport ${p.publishedPort} dnat ip to ${
          p.backends.length === 1
            ? `${p.backends[0]}:${p.targetPort}`
            : `numgen inc mod ${p.backends.length} map { ${p.backends
                .map((b, i) => `${i} : ${b} . ${p.targetPort}`)
                .join(", ")} }`
        }`,
    ),
    `  }`,
    `  chain postrouting {`,
    `    type nat hook postrouting priority 99; policy accept;`,
    `    oifname "${plan.bridge}" ct status dnat snat ip to ${plan.address}`,
    `  }`,
  );
  if (dead.length > 0) {
    lines.push(`  chain refuse {`, `    type filter hook input priority filter; policy accept;`);
    for (const proto of ["tcp", "udp"] as const) {
      const ports = dead.filter((p) => p.protocol === proto).map((p) => p.publishedPort);
      if (ports.length === 0) continue;
      const how = proto === "tcp" ? "reject with tcp reset" : "reject";
      lines.push(`    fib daddr type local ${proto} dport { ${ports.join(", ")} } ${how}`);
    }
    lines.push(`  }`);
  }
  lines.push(`}`);
  return lines.join("\n") + "\n";
}

/**
 * The underlay addresses VXLAN may come from: every node the state names (each node's own
 * endpoints and the hosts of task endpoints), this one excepted.
 */
export function overlayPeers(state: NetworkState, self: OverlaySelf): string[] {
  const peers = new Set<string>();
  for (const e of [...state.nodes, ...state.tasks]) if (e.hostAddr !== "") peers.add(e.hostAddr);
  peers.delete(self.hostAddr);
  return [...peers].sort();
}
