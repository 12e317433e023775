// Published ports: which host ports a container asks for, which are free, and the probe that
// keeps shoal from shadowing a port another program already listens on (nftables would steal
// its traffic silently; Docker's proxy fails on the same clash).
import { createServer } from "node:net";
import { createSocket } from "node:dgram";
import { readFile } from "node:fs/promises";
import { conflict, errnoCode, invalid } from "../../../shared/errors.js";
import type { PortBinding } from "../../../shared/engine-api.js";

export type Protocol = "tcp" | "udp";

export interface PublishedPort {
  protocol: Protocol;
  hostIp: string;
  hostPort: number;
  containerPort: number;
}

export interface PortRequest {
  protocol: Protocol;
  containerPort: number;
  hostIp: string;
  /** Fixed port, or a range to pick from ([0, 0] = any ephemeral port). */
  hostPorts: [number, number];
}

function parsePortNumber(text: string, what: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535)
    throw invalid(`invalid ${what} "${text}": use a number from 1 to 65535`);
  return Number(text);
}

/** "80/tcp" → [80, "tcp"]; the protocol defaults to tcp like Docker's nat.Port. */
export function parsePortKey(key: string): { port: number; protocol: Protocol } {
  const [port, proto = "tcp", ...rest] = key.split("/");
  if (rest.length > 0 || (proto !== "tcp" && proto !== "udp"))
    throw invalid(`invalid port "${key}": use PORT, PORT/tcp or PORT/udp (sctp is not supported)`);
  return { port: parsePortNumber(port, "container port"), protocol: proto };
}

function parseHostPorts(text: string): [number, number] {
  if (text === "" || text === "0") return [0, 0];
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!m) throw invalid(`invalid host port "${text}": use PORT or FIRST-LAST`);
  const first = parsePortNumber(m[1], "host port");
  const last = m[2] === undefined ? first : parsePortNumber(m[2], "host port");
  if (last < first) throw invalid(`invalid host port range "${text}": the end is below the start`);
  return [first, last];
}

/** What a container asks for: its PortBindings, and with -P every exposed port not bound yet. */
export function portRequests(
  bindings: Record<string, PortBinding[] | null> | null | undefined,
  exposed: Record<string, object> | undefined,
  publishAll: boolean,
): PortRequest[] {
  const out: PortRequest[] = [];
  const keys = new Set<string>();
  for (const [key, list] of Object.entries(bindings ?? {})) {
    const { port, protocol } = parsePortKey(key);
    keys.add(`${port}/${protocol}`);
    for (const b of list ?? [{ HostIp: "", HostPort: "" }]) {
      const hostIp = b.HostIp ?? "";
      if (hostIp !== "" && !/^\d{1,3}(\.\d{1,3}){3}$/.test(hostIp)) {
        // IPv6 host addresses are refused, never bound on IPv4 instead: the firewall's maps and
        // the loopback relay are IPv4 only.
        const binding = `${hostIp.includes(":") ? `[${hostIp}]` : hostIp}:${b.HostPort ?? ""}:${key}`;
        throw invalid(
          hostIp.includes(":")
            ? `invalid port binding ${binding}: shoal publishes ports on IPv4 addresses only; use an IPv4 host address (127.0.0.1, 0.0.0.0) or none`
            : `invalid host address "${hostIp}" for port ${key}: use an IPv4 address`,
        );
      }
      out.push({ protocol, containerPort: port, hostIp, hostPorts: parseHostPorts(b.HostPort ?? "") });
    }
  }
  if (publishAll) {
    for (const key of Object.keys(exposed ?? {})) {
      const { port, protocol } = parsePortKey(key);
      if (keys.has(`${port}/${protocol}`)) continue;
      out.push({ protocol, containerPort: port, hostIp: "", hostPorts: [0, 0] });
    }
  }
  return out;
}

function isWildcard(ip: string): boolean {
  return ip === "" || ip === "0.0.0.0";
}

/** Whether two bindings want the same host socket. */
export function clash(a: { protocol: Protocol; hostIp: string; hostPort: number }, b: typeof a): boolean {
  return (
    a.protocol === b.protocol &&
    a.hostPort === b.hostPort &&
    (isWildcard(a.hostIp) || isWildcard(b.hostIp) || a.hostIp === b.hostIp)
  );
}

/** Bind the port for a moment: EADDRINUSE means another program has it. */
export async function probeHostPort(protocol: Protocol, hostIp: string, port: number): Promise<void> {
  const host = isWildcard(hostIp) ? "0.0.0.0" : hostIp;
  const fail = (e: unknown): never => {
    const code = errnoCode(e);
    if (code === "EADDRINUSE")
      throw conflict(
        `Bind for ${host}:${port}/${protocol} failed: port is already in use by another program on this host; pick another host port`,
      );
    if (code === "EADDRNOTAVAIL")
      throw invalid(`cannot publish on ${host}:${port}: ${host} is not an address of this host`);
    throw e as Error;
  };
  if (protocol === "tcp") {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host, port, exclusive: true }, () => resolve());
    }).catch(fail);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  } else {
    const socket = createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind({ address: host, port, exclusive: true }, () => resolve());
    }).catch(fail);
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

/** The kernel's ephemeral range, where Docker also picks host ports for -P. */
export async function ephemeralRange(): Promise<[number, number]> {
  const text = await readFile("/proc/sys/net/ipv4/ip_local_port_range", "utf8").catch(() => "32768 60999");
  const [a, b] = text.trim().split(/\s+/).map(Number);
  return Number.isInteger(a) && Number.isInteger(b) && a <= b ? [a, b] : [32768, 60999];
}
