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

export const DEFAULT_TABLE = "shoal";

function quote(name: string): string {
  return `"${name}"`;
}

function portRule(p: FirewallPort): string {
  const addr = p.hostIp === "" || p.hostIp === "0.0.0.0" ? "" : `ip daddr ${p.hostIp} `;
  return `${addr}${p.protocol} dport ${p.hostPort} dnat to ${p.containerIp}:${p.containerPort}`;
}

/** The table's text, for `nft -f`: creating it first makes the delete safe when it does not exist yet. */
export function renderFirewall(state: FirewallState, table = DEFAULT_TABLE): string {
  const bridges = state.networks.map((n) => quote(n.bridge));
  const lines: string[] = [
    `table ip ${table}`,
    `delete table ip ${table}`,
    `table ip ${table} {`,
    // Published ports: packets to a local address from outside (prerouting) or from the host (output).
    `  chain prerouting {`,
    `    type nat hook prerouting priority dstnat; policy accept;`,
    `    fib daddr type local jump published`,
    `  }`,
    `  chain output {`,
    `    type nat hook output priority -100; policy accept;`,
    `    fib daddr type local jump published`,
    `  }`,
    `  chain published {`,
    ...state.ports.map((p) => `    ${portRule(p)}`),
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

/** Replace shoal's table in one transaction. */
export async function applyFirewall(state: FirewallState, table = DEFAULT_TABLE): Promise<void> {
  await runCommand("nft", ["-f", "-"], { input: renderFirewall(state, table), timeoutMs: 30_000 });
}

/** Remove shoal's table (tests and `shoald --cleanup`); a missing table is fine. */
export async function removeFirewall(table = DEFAULT_TABLE): Promise<void> {
  await runCommand("nft", ["-f", "-"], {
    input: `table ip ${table}\ndelete table ip ${table}\n`,
    timeoutMs: 30_000,
  });
}

/**
 * Applies states one at a time, coalescing: while one `nft` runs, later requests collapse into
 * a single next run with the newest state, and every caller learns when its state (or a newer
 * one) is in force.
 */
export class FirewallApplier {
  private running: Promise<void> | undefined;
  private pending: { state: () => FirewallState; waiters: Array<(e?: unknown) => void> } | undefined;

  constructor(
    private readonly table = DEFAULT_TABLE,
    private readonly apply = applyFirewall,
  ) {}

  /** `state` is read when the apply starts, so the newest desired state wins. */
  update(state: () => FirewallState): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (e?: unknown): void => (e === undefined ? resolve() : reject(e as Error));
      if (this.pending) {
        this.pending.state = state;
        this.pending.waiters.push(done);
      } else {
        this.pending = { state, waiters: [done] };
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
        await this.apply(job.state(), this.table);
      } catch (e) {
        error = e;
      }
      for (const w of job.waiters) w(error);
    }
    this.running = undefined;
  }
}
