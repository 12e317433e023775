// shoal's nftables table: NAT for egress, published ports, isolation of bridge networks from
// each other and from the host's other interfaces, and the underlay's VXLAN port. The whole table
// is rendered from the desired state and replaced in one `nft -f` transaction, so a change is
// atomic and a daemon restart cannot leave a stale rule: whatever the table held before is gone.
// Nothing outside this table is read or written.
//
// What reaches a container from outside its bridge (the forward chain, as moby's nftables
// driver has it): replies to its own connections, published ports (DNAT'ed), and nothing else,
// so a neighbour with a route to a bridge's subnet cannot open an unpublished port. A raw
// prerouting chain drops, before conntrack and NAT, packets for a container address that arrive
// on any other interface (moby 28's "direct access" drop) and packets for 127.0.0.0/8 that
// arrive on a bridge (a container reaching what the host binds to localhost, CVE-2020-8558).
import { isIPv4 } from "node:net";
import { VXLAN_PORT } from "./overlay/names.js";
import { runCommand } from "../runtime/command.js";

export interface FirewallNetwork {
  bridge: string;
  subnet: string;
  /** The host's own address on the bridge (the containers' gateway and DNS server). */
  gateway: string;
  internal: boolean;
}

export interface FirewallPort {
  protocol: "tcp" | "udp";
  /** "" or "0.0.0.0": every local address. */
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

/** The overlay networks' VXLAN traffic: their VNIs, and the underlay addresses allowed to send it. */
export interface FirewallOverlay {
  vnis: number[];
  /** The cluster's nodes' underlay addresses (from the network state). */
  peers: string[];
}

export interface FirewallState {
  networks: FirewallNetwork[];
  ports: FirewallPort[];
  overlay?: FirewallOverlay;
}

const DEFAULT_TABLE = "shoal";

function quote(name: string): string {
  return `"${name}"`;
}

/** The four maps published ports live in: by protocol, for any local address or one address. */
const PORT_MAPS = [
  { name: "pub_tcp_addr", protocol: "tcp", byAddress: true },
  { name: "pub_tcp", protocol: "tcp", byAddress: false },
  { name: "pub_udp_addr", protocol: "udp", byAddress: true },
  { name: "pub_udp", protocol: "udp", byAddress: false },
] as const;

/** The set of underlay addresses VXLAN is accepted from. */
const PEER_SET = "overlay_peers";

function isWildcard(ip: string): boolean {
  return ip === "" || ip === "0.0.0.0";
}

/** 127.0.0.0/8: reached only from the host itself, through the loopback proxy (loopback-proxy.ts). */
export function isLoopback(ip: string): boolean {
  return ip.startsWith("127.");
}

function elementsOf(ports: FirewallPort[], map: (typeof PORT_MAPS)[number]): string[] {
  return ports
    .filter(
      (p) =>
        p.protocol === map.protocol &&
        isWildcard(p.hostIp) !== map.byAddress &&
        !isLoopback(p.hostIp) &&
        isIPv4(p.containerIp) &&
        (isWildcard(p.hostIp) || isIPv4(p.hostIp)),
    )
    .map(
      (p) => `${map.byAddress ? `${p.hostIp} . ` : ""}${p.hostPort} : ${p.containerIp} . ${p.containerPort}`,
    );
}

function mapType(byAddress: boolean): string {
  return `${byAddress ? "ipv4_addr . " : ""}inet_service : ipv4_addr . inet_service`;
}

/** Only addresses go into the text: anything else could be nft syntax. */
function peerElements(overlay: FirewallOverlay | undefined): string[] {
  return [...new Set((overlay?.peers ?? []).filter((p) => isIPv4(p)))].sort();
}

/**
 * Published ports are elements of maps, and the VXLAN peers of a set, not rules: they change
 * with one small transaction (see renderSetSync) instead of a rewrite of the table, whose NAT
 * chains are slow to replace.
 */
function renderSets(state: FirewallState): string[] {
  const maps = PORT_MAPS.map((m) => {
    const elements = elementsOf(state.ports, m);
    const body = elements.length > 0 ? `; elements = { ${elements.join(", ")} }` : "";
    return `  map ${m.name} { type ${mapType(m.byAddress)}${body}; }`;
  });
  const peers = peerElements(state.overlay);
  const body = peers.length > 0 ? `; elements = { ${peers.join(", ")} }` : "";
  return [...maps, `  set ${PEER_SET} { type ipv4_addr${body}; }`];
}

/** Make the port maps and the peer set hold exactly what `state` says, in one transaction. */
export function renderSetSync(state: FirewallState, table = DEFAULT_TABLE): string {
  const lines: string[] = [];
  for (const m of PORT_MAPS) {
    lines.push(`flush map ip ${table} ${m.name}`);
    const elements = elementsOf(state.ports, m);
    if (elements.length > 0) lines.push(`add element ip ${table} ${m.name} { ${elements.join(", ")} }`);
  }
  lines.push(`flush set ip ${table} ${PEER_SET}`);
  const peers = peerElements(state.overlay);
  if (peers.length > 0) lines.push(`add element ip ${table} ${PEER_SET} { ${peers.join(", ")} }`);
  return lines.join("\n") + "\n";
}

/**
 * The nat chains that send packets to a local address (from outside: prerouting; from the host
 * itself: output) to `chain`, at the given priorities. The host's own connections to 127.0.0.0/8
 * are not NAT'ed (the kernel would drop them on a bridge without route_localnet): the loopback
 * proxy answers them.
 */
export function localDnatHooks(chain: string, prerouting: string, output: string): string[] {
  return [
    `  chain prerouting {`,
    `    type nat hook prerouting priority ${prerouting}; policy accept;`,
    `    fib daddr type local jump ${chain}`,
    `  }`,
    `  chain output {`,
    `    type nat hook output priority ${output}; policy accept;`,
    `    ip daddr != 127.0.0.0/8 fib daddr type local jump ${chain}`,
    `  }`,
  ];
}

/** Raw prerouting: what no bridge may receive, and what no other interface may send into one. */
function rawRules(networks: FirewallNetwork[]): string[] {
  if (networks.length === 0) return [];
  const bridges = networks.map((n) => quote(n.bridge));
  return [
    `  chain raw_prerouting {`,
    `    type filter hook prerouting priority raw; policy accept;`,
    `    iifname { ${bridges.join(", ")} } ip daddr 127.0.0.0/8 drop`,
    ...networks.map(
      (n) => `    iifname != ${quote(n.bridge)} ip daddr ${n.subnet} ip daddr != ${n.gateway} drop`,
    ),
    `  }`,
  ];
}

/** VXLAN for shoal's own VNIs from an address that is not one of the cluster's nodes is dropped. */
function vxlanRules(overlay: FirewallOverlay | undefined): string[] {
  const vnis = [...new Set(overlay?.vnis ?? [])]
    .filter((v) => Number.isInteger(v) && v > 0 && v < 2 ** 24)
    .sort((a, b) => a - b);
  if (vnis.length === 0) return [];
  return [
    `  chain input {`,
    `    type filter hook input priority filter; policy accept;`,
    // The VNI is the 24 bits after the UDP header (8 bytes) and the VXLAN flags word (4 bytes):
    // another program's VXLAN on the same port, with other VNIs, is left alone.
    `    udp dport ${VXLAN_PORT} @th,96,24 { ${vnis.join(", ")} } ip saddr != @${PEER_SET} drop`,
    `  }`,
  ];
}

/** The table's text, for `nft -f`: creating it first makes the delete safe when it does not exist yet. */
export function renderFirewall(state: FirewallState, table = DEFAULT_TABLE): string {
  const lines: string[] = [
    `table ip ${table}`,
    `delete table ip ${table}`,
    `table ip ${table} {`,
    ...renderSets(state),
    // Published ports: packets to a local address from outside (prerouting) or from the host (output).
    ...localDnatHooks("published", "dstnat", "-100"),
    `  chain published {`,
    // A binding to one address wins over a binding to all of them.
    `    dnat ip to ip daddr . tcp dport map @pub_tcp_addr`,
    `    dnat ip to tcp dport map @pub_tcp`,
    `    dnat ip to ip daddr . udp dport map @pub_udp_addr`,
    `    dnat ip to udp dport map @pub_udp`,
    `  }`,
    ...rawRules(state.networks),
    ...vxlanRules(state.overlay),
    `  chain postrouting {`,
    `    type nat hook postrouting priority srcnat; policy accept;`,
  ];
  for (const n of state.networks) {
    // A container reaching a published port of its own network through a host address.
    lines.push(`    oifname ${quote(n.bridge)} ip saddr ${n.subnet} ct status dnat masquerade`);
    if (!n.internal) lines.push(`    ip saddr ${n.subnet} oifname != ${quote(n.bridge)} masquerade`);
  }
  lines.push(
    `  }`,
    `  chain forward {`,
    `    type filter hook forward priority filter; policy accept;`,
    `    ct state established,related accept`,
  );
  for (const n of state.networks) {
    const br = quote(n.bridge);
    if (n.internal) {
      lines.push(`    iifname ${br} oifname != ${br} drop`, `    oifname ${br} iifname != ${br} drop`);
    }
  }
  // Published ports are reachable from anywhere, as with Docker's proxy; nothing else enters a
  // bridge from another interface, be it another bridge or the host's uplink.
  lines.push(`    ct status dnat accept`);
  for (const n of state.networks) {
    if (n.internal) continue;
    lines.push(`    oifname ${quote(n.bridge)} iifname != ${quote(n.bridge)} drop`);
  }
  lines.push(`  }`, `}`);
  return lines.join("\n") + "\n";
}

export type FirewallApply = (text: string) => Promise<void>;

async function nftApply(text: string): Promise<void> {
  await runCommand("nft", ["-f", "-"], { input: text, timeoutMs: 30_000 });
}

/**
 * Applies changes one at a time, coalescing: while one `nft` runs, later requests collapse into
 * a single next run rendered from the newest state, and every caller learns when its state (or
 * a newer one) is in force. A port change syncs the port maps only; a network change rewrites
 * the table, which includes the ports.
 */
export class FirewallApplier {
  private running: Promise<void> | undefined;
  private pending:
    { kind: "table" | "sets"; state: () => FirewallState; waiters: Array<(e?: unknown) => void> } | undefined;
  /** Until the table exists a port sync has nothing to sync into. */
  private tableWritten = false;

  constructor(
    private readonly table = DEFAULT_TABLE,
    private readonly apply: FirewallApply = nftApply,
  ) {}

  /** Rewrite the whole table (networks changed, or at start). `state` is read when the apply starts. */
  update(state: () => FirewallState): Promise<void> {
    return this.enqueue("table", state);
  }

  /** Only published ports or the VXLAN peers changed. */
  updateSets(state: () => FirewallState): Promise<void> {
    return this.enqueue("sets", state);
  }

  private enqueue(kind: "table" | "sets", state: () => FirewallState): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (e?: unknown): void => (e === undefined ? resolve() : reject(e as Error));
      if (this.pending) {
        this.pending.state = state;
        if (kind === "table") this.pending.kind = "table";
        this.pending.waiters.push(done);
      } else {
        this.pending = { kind, state, waiters: [done] };
      }
      if (!this.running) this.running = this.drain();
    });
  }

  private async drain(): Promise<void> {
    while (this.pending) {
      const job = this.pending;
      this.pending = undefined;
      let error: unknown;
      try {
        const state = job.state();
        const whole = job.kind === "table" || !this.tableWritten;
        await this.apply(whole ? renderFirewall(state, this.table) : renderSetSync(state, this.table));
        if (whole) this.tableWritten = true;
      } catch (e) {
        error = e;
      }
      for (const w of job.waiters) w(error);
    }
    this.running = undefined;
  }
}
