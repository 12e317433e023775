// The kernel side of bridge networks: bridges, veth pairs, addresses and routes, through
// iproute2's `ip -batch` so that one process does many changes. Names are ours alone: bridges
// and host-side veths carry shoal's prefixes, so nothing here can touch another program's links.
import { readFile, writeFile } from "node:fs/promises";
import { CommandError, runCommand } from "../runtime/command.js";

const IP = "ip";

/** One batch of `ip` commands in this daemon's network namespace. */
export async function ipBatch(lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  await runCommand(IP, ["-batch", "-"], { input: lines.join("\n") + "\n", timeoutMs: 30_000 });
}

/** One batch in another process's network namespace (a container's, by its pid). */
async function ipBatchInNetns(pid: number, lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  await runCommand("nsenter", [`--net=/proc/${pid}/ns/net`, IP, "-batch", "-"], {
    input: lines.join("\n") + "\n",
    timeoutMs: 30_000,
  });
}

export interface LinkInfo {
  name: string;
  kind?: string;
  master?: string;
}

/** The links of this namespace with their kind (bridge, veth, ...). */
export async function listLinks(): Promise<LinkInfo[]> {
  const { stdout } = await runCommand(IP, ["-j", "-d", "link", "show"]);
  const raw = JSON.parse(stdout || "[]") as Array<{
    ifname: string;
    master?: string;
    linkinfo?: { info_kind?: string };
  }>;
  return raw.map((l) => ({ name: l.ifname, kind: l.linkinfo?.info_kind, master: l.master }));
}

function isMissingLink(e: unknown): boolean {
  return e instanceof CommandError && /Cannot find device|does not exist/i.test(e.stderr);
}

/**
 * A bridge with the gateway address, up. Idempotent: an existing bridge keeps its links and
 * gets its address replaced, and its sysctls set again (see hardenBridge).
 */
export async function ensureBridge(name: string, gatewayCidr: string): Promise<void> {
  const links = await listLinks();
  const existing = links.find((l) => l.name === name);
  if (existing && existing.kind !== "bridge") {
    throw new Error(`cannot use ${name} as a bridge: a ${existing.kind ?? "non-bridge"} link has that name`);
  }
  await ipBatch([
    ...(existing ? [] : [`link add ${name} type bridge`]),
    `addr replace ${gatewayCidr} dev ${name}`,
    `link set ${name} up`,
  ]);
  await hardenBridge(name);
}

async function writeSysctl(path: string, value: string): Promise<boolean> {
  try {
    await writeFile(path, `${value}\n`);
    return true;
  } catch (e) {
    // IPv6 turned off (ipv6.disable=1: no /proc/sys/net/ipv6) leaves nothing to protect.
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
}

/**
 * What a container must not be able to do to the host through its bridge: send it packets for
 * 127.0.0.0/8 that it routes to its own loopback services (route_localnet off, as the kernel
 * has it; a bridge made by an older shoal had it on; CVE-2020-8558), or change the host's IPv6
 * routes with a router advertisement (accept_ra off; CVE-2020-13401).
 */
export async function hardenBridge(name: string): Promise<void> {
  await writeSysctl(`/proc/sys/net/ipv4/conf/${name}/route_localnet`, "0");
  await writeSysctl(`/proc/sys/net/ipv6/conf/${name}/accept_ra`, "0");
}

/** Remove a link; a link that is already gone is fine. */
export async function deleteLink(name: string): Promise<void> {
  try {
    await ipBatch([`link del ${name}`]);
  } catch (e) {
    if (!isMissingLink(e)) throw e;
  }
}

export interface VethPlan {
  /** Host end, attached to the bridge. */
  hostName: string;
  /** Name inside the container (eth0, eth1, ...). */
  containerName: string;
  bridge: string;
  mac: string;
  address: string;
  prefix: number;
  /** Default route through this gateway (the container's first network that is not internal). */
  defaultGateway?: string;
  /** Both ends' MTU when not the default (1450 on overlay networks, for the VXLAN header). */
  mtu?: number;
}

/**
 * Wire a container's network namespace (by the pid of its init, which waits between `runtime
 * create` and `start`) to bridges: one host batch makes the veth pairs with their container
 * ends already inside the namespace, one batch in the namespace sets addresses and routes.
 */
export async function wireVeths(pid: number, plans: VethPlan[]): Promise<void> {
  if (plans.length === 0) return;
  const host: string[] = [];
  const inside: string[] = [];
  for (const p of plans) {
    const mtu = p.mtu !== undefined ? ` mtu ${p.mtu}` : "";
    host.push(
      `link add ${p.hostName}${mtu} type veth peer name ${p.containerName}${mtu} address ${p.mac} netns ${pid}`,
      `link set ${p.hostName} master ${p.bridge}`,
      `link set ${p.hostName} up`,
    );
    inside.push(`addr add ${p.address}/${p.prefix} dev ${p.containerName}`, `link set ${p.containerName} up`);
  }
  const gateway = plans.find((p) => p.defaultGateway !== undefined)?.defaultGateway;
  if (gateway !== undefined) inside.push(`route add default via ${gateway}`);
  await ipBatch(host);
  await ipBatchInNetns(pid, inside);
}

/** Docker's MAC for an address: 02:42 followed by the four address bytes. */
export function macForAddress(address: string): string {
  const bytes = address.split(".").map((b) => Number(b).toString(16).padStart(2, "0"));
  return ["02", "42", ...bytes].join(":");
}

/** Enable IPv4 forwarding in this namespace (dockerd's --ip-forward): needed for egress and published ports. */
export async function enableIpForward(): Promise<boolean> {
  const path = "/proc/sys/net/ipv4/ip_forward";
  if ((await readFile(path, "utf8")).trim() === "1") return false;
  await writeFile(path, "1\n");
  return true;
}
