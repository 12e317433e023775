// shoal's nftables table: NAT for egress, published ports, and isolation between bridge
// networks. The whole table is rendered from the desired state and replaced in one `nft -f`
// transaction, so a change is atomic and a daemon restart cannot leave a stale rule: whatever
// the table held before is gone. Nothing outside this table is read or written.
import { runCommand } from "../runtime/command.js";

export interface FirewallNetwork {
  bridge: string;
  subnet: string;
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

export interface FirewallState {
  networks: FirewallNetwork[];
  ports: FirewallPort[];
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

function isWildcard(ip: string): boolean {
  return ip === "" || ip === "0.0.0.0";
}

function elementsOf(ports: FirewallPort[], map: (typeof PORT_MAPS)[number]): string[] {
  return ports
    .filter((p) => p.protocol === map.protocol && isWildcard(p.hostIp) !== map.byAddress)
    .map(
      (p) => `${map.byAddress ? `${p.hostIp} . ` : ""}${p.hostPort} : ${p.containerIp} . ${p.containerPort}`,
    );
}

function mapType(byAddress: boolean): string {
  return `${byAddress ? "ipv4_addr . " : ""}inet_service : ipv4_addr . inet_service`;
}

/**
 * Published ports are elements of maps, not rules: a container's ports change with one small
 * transaction (see renderPortSync) instead of a rewrite of the table, whose NAT chains are slow
 * to replace.
 */
function renderPortMaps(ports: FirewallPort[]): string[] {
  return PORT_MAPS.map((m) => {
    const elements = elementsOf(ports, m);
    const body = elements.length > 0 ? `; elements = { ${elements.join(", ")} }` : "";
    return `  map ${m.name} { type ${mapType(m.byAddress)}${body}; }`;
  });
}

/** Make the port maps hold exactly `ports`, in one transaction. */
export function renderPortSync(ports: FirewallPort[], table = DEFAULT_TABLE): string {
  const lines: string[] = [];
  for (const m of PORT_MAPS) {
    lines.push(`flush map ip ${table} ${m.name}`);
    const elements = elementsOf(ports, m);
    if (elements.length > 0) lines.push(`add element ip ${table} ${m.name} { ${elements.join(", ")} }`);
  }
  return lines.join("\n") + "\n";
}

/**
 * The nat chains that send packets to a local address (from outside: prerouting; from the host
 * itself: output) to `chain`, at the given priorities.
 */
export function localDnatHooks(chain: string, prerouting: string, output: string): string[] {
  return [
    `  chain prerouting {`,
    `    type nat hook prerouting priority ${prerouting}; policy accept;`,
    `    fib daddr type local jump ${chain}`,
    `  }`,
    `  chain output {`,
    `    type nat hook output priority ${output}; policy accept;`,
    `    fib daddr type local jump ${chain}`,
    `  }`,
  ];
}

/** The table's text, for `nft -f`: creating it first makes the delete safe when it does not exist yet. */
export function renderFirewall(state: FirewallState, table = DEFAULT_TABLE): string {
  const bridges = state.networks.map((n) => quote(n.bridge));
  const lines: string[] = [
    `table ip ${table}`,
    `delete table ip ${table}`,
    `table ip ${table} {`,
    ...renderPortMaps(state.ports),
    // Published ports: packets to a local address from outside (prerouting) or from the host (output).
    ...localDnatHooks("published", "dstnat", "-100"),
    `  chain published {`,
    // A binding to one address wins over a binding to all of them.
    `    dnat ip to ip daddr . tcp dport map @pub_tcp_addr`,
    `    dnat ip to tcp dport map @pub_tcp`,
    `    dnat ip to ip daddr . udp dport map @pub_udp_addr`,
    `    dnat ip to udp dport map @pub_udp`,
    `  }`,
    `  chain postrouting {`,
    `    type nat hook postrouting priority srcnat; policy accept;`,
  ];
  for (const n of state.networks) {
    // localhost → container: the source must become the bridge's address to get a reply.
    lines.push(`    oifname ${quote(n.bridge)} ip saddr 127.0.0.0/8 masquerade`);
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
  // Published ports are reachable from anywhere, as with Docker's proxy; other traffic between
  // two bridge networks is not.
  lines.push(`    ct status dnat accept`);
  if (bridges.length > 1) {
    for (const n of state.networks) {
      const br = quote(n.bridge);
      const others = bridges.filter((b) => b !== br);
      lines.push(`    iifname ${br} oifname { ${others.join(", ")} } drop`);
    }
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
    | { kind: "table" | "ports"; state: () => FirewallState; waiters: Array<(e?: unknown) => void> }
    | undefined;
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

  /** Only published ports changed. */
  updatePorts(state: () => FirewallState): Promise<void> {
    return this.enqueue("ports", state);
  }

  private enqueue(kind: "table" | "ports", state: () => FirewallState): Promise<void> {
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
        await this.apply(whole ? renderFirewall(state, this.table) : renderPortSync(state.ports, this.table));
        if (whole) this.tableWritten = true;
      } catch (e) {
        error = e;
      }
      for (const w of job.waiters) w(error);
    }
    this.running = undefined;
  }
}
