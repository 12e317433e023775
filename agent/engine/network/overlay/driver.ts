// The overlay driver: makes this host match the cluster's NetworkState. Called on every change
// (often), so it reads what the host has, changes only what differs, and touches nothing but
// its own devices (shov*/shox*), their forwarding and neighbour entries, and its own nftables
// tables. Usable on its own (the two-host integration test runs it as a library in plain
// network namespaces); the engine's OverlayState (network/overlay-state.ts) wraps it with the network
// table, DNS and the load-balancing tables of its containers.
import type { NetworkState } from "../../../../shared/network-state.js";
import { CommandError, runCommand } from "../../runtime/command.js";
import { hardenBridge, ipBatch } from "../host-links.js";
import { meshTableName, overlayBridgeName, overlayVxlanName } from "./names.js";
import {
  desiredHost,
  diffHost,
  parseFdb,
  parseLinks,
  parseNeigh,
  type CurrentHost,
  type DesiredNetwork,
  type HostChanges,
  type OverlaySelf,
  type Refusal,
} from "./plan.js";
import { type MeshPlan, meshPlan, renderLbTable, renderMeshTable, vipBalances } from "./rules.js";

export type { OverlaySelf } from "./plan.js";

/** What this host holds now, read through iproute2's JSON output (three processes, in parallel). */
async function readHost(): Promise<CurrentHost> {
  const [links, fdb, neigh] = await Promise.all([
    runCommand("ip", ["-j", "-d", "addr", "show"]),
    runCommand("bridge", ["-j", "fdb", "show"]),
    runCommand("ip", ["-j", "-4", "neigh", "show"]),
  ]);
  return { links: parseLinks(links.stdout), fdb: parseFdb(fdb.stdout), neigh: parseNeigh(neigh.stdout) };
}

async function bridgeBatch(lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  await runCommand("bridge", ["-batch", "-"], { input: lines.join("\n") + "\n", timeoutMs: 30_000 });
}

async function nft(text: string, netnsPath?: string): Promise<void> {
  if (netnsPath === undefined) {
    await runCommand("nft", ["-f", "-"], { input: text, timeoutMs: 30_000 });
  } else {
    await runCommand("nsenter", [`--net=${netnsPath}`, "nft", "-f", "-"], { input: text, timeoutMs: 30_000 });
  }
}

/**
 * Forget the connection-tracking entries of flows answered from `addresses`: backends that left
 * a VIP or the routing mesh. NAT decides once per flow, so without this a UDP flow that keeps
 * sending stays DNAT'ed to a stopped task (each packet refreshes its entry), and a TCP
 * connection hangs on it instead of being reset. `netnsPath` as for applyLbTable; the host's
 * own namespace when absent.
 */
export async function forgetFlowsFrom(addresses: Iterable<string>, netnsPath?: string): Promise<void> {
  for (const address of addresses) {
    const args = ["-D", "--reply-src", address];
    try {
      if (netnsPath === undefined) await runCommand("conntrack", args, { timeoutMs: 10_000 });
      else await runCommand("nsenter", [`--net=${netnsPath}`, "conntrack", ...args], { timeoutMs: 10_000 });
    } catch (e) {
      // conntrack exits 1 when no entry matched.
      if (!(e instanceof CommandError && /0 flow entries have been deleted/.test(e.message))) throw e;
    }
  }
}

/** The backend addresses that are in `before` and not in `after` (VIP balances or mesh ports). */
export function droppedBackends(
  before: Array<{ backends: string[] }>,
  after: Array<{ backends: string[] }>,
): string[] {
  const now = new Set(after.flatMap((b) => b.backends));
  return [...new Set(before.flatMap((b) => b.backends))].filter((a) => !now.has(a));
}

/** The load-balancing table a container on `networkIds` needs. */
export function lbTableFor(state: NetworkState, networkIds: Iterable<string>): string {
  return renderLbTable(vipBalances(state, networkIds));
}

/**
 * Replace the `shoal_lb` table in a network namespace (`/proc/<pid>/ns/net`, or
 * `/run/netns/<name>`) with `text` (from lbTableFor), in one transaction.
 */
export async function applyLbTable(netnsPath: string, text: string): Promise<void> {
  await nft(text, netnsPath);
}

export interface OverlayApplyOptions {
  /**
   * Networks this node has no endpoint on any more whose devices stay because local containers
   * still use them: they go at a later apply, once the containers are gone.
   */
  keep?: Iterable<string>;
}

export interface OverlayApplyResult {
  /** The overlay networks this host takes part in, with their bridges and this node's address. */
  networks: DesiredNetwork[];
  /** What was changed (empty lists: nothing differed). */
  changes: HostChanges;
  meshChanged: boolean;
  /** Backends the routing mesh no longer sends to (their flows are to be forgotten). */
  meshDropped: string[];
  /** The routing mesh in force (its ports, and this node's ingress address), if any. */
  mesh: MeshPlan | undefined;
  /** Entries of the state left out because a value in them is not an address (for the log). */
  refused: Refusal[];
}

export interface OverlayDriverOptions {
  /** The engine's nftables table; the mesh lives in `<table>_mesh`. */
  firewallTable?: string;
}

export class OverlayDriver {
  /** The version of the last state applied in full. */
  appliedVersion = 0;
  private readonly meshTable: string;
  /** The mesh text in force; undefined until the first apply, which always writes it. */
  private meshText: string | undefined;
  /** The mesh ports in force, with their backends (whose flows go when they leave). */
  private meshPorts: Array<{ backends: string[] }> = [];
  private running: Promise<unknown> = Promise.resolve();
  /** Bridges whose sysctls this process has set (a bridge made by an older shoal had route_localnet on). */
  private readonly hardened = new Set<string>();

  constructor(opts: OverlayDriverOptions = {}) {
    this.meshTable = meshTableName(opts.firewallTable ?? "shoal");
  }

  /** Make this host match `state`. Calls run one at a time, in order. */
  apply(state: NetworkState, self: OverlaySelf, opts: OverlayApplyOptions = {}): Promise<OverlayApplyResult> {
    const next = this.running.then(
      () => this.applyNow(state, self, opts),
      () => this.applyNow(state, self, opts),
    );
    this.running = next.catch(() => undefined);
    return next;
  }

  private async applyNow(
    state: NetworkState,
    self: OverlaySelf,
    opts: OverlayApplyOptions,
  ): Promise<OverlayApplyResult> {
    const desired = desiredHost(state, self);
    const keep = new Set<string>();
    for (const id of opts.keep ?? []) keep.add(overlayBridgeName(id)).add(overlayVxlanName(id));
    const changes = diffHost(desired, await readHost(), keep);
    await ipBatch(changes.ip);
    await bridgeBatch(changes.bridge);
    for (const br of changes.createdBridges) this.hardened.delete(br);
    for (const d of desired.networks) {
      if (this.hardened.has(d.bridge)) continue;
      await hardenBridge(d.bridge);
      this.hardened.add(d.bridge);
    }
    const plan = meshPlan(state, self);
    const mesh = renderMeshTable(plan, this.meshTable);
    const meshChanged = mesh !== this.meshText;
    let meshDropped: string[] = [];
    if (meshChanged) {
      await nft(mesh);
      this.meshText = mesh;
      meshDropped = droppedBackends(this.meshPorts, plan?.ports ?? []);
      this.meshPorts = plan?.ports ?? [];
    }
    this.appliedVersion = state.version;
    return {
      networks: desired.networks,
      changes,
      meshChanged,
      meshDropped,
      mesh: plan,
      refused: desired.refused,
    };
  }
}
