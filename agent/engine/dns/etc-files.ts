// The /etc/hosts and /etc/hostname the engine manages for each container, in Docker's layout so
// tools and tests written against Docker read the same lines.
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { isIP } from "node:net";
import { invalid } from "../../../shared/errors.js";

const defaultHosts = [
  ["127.0.0.1", "localhost"],
  ["::1", "localhost ip6-localhost ip6-loopback"],
  ["fe00::0", "ip6-localnet"],
  ["ff00::0", "ip6-mcastprefix"],
  ["ff02::1", "ip6-allnodes"],
  ["ff02::2", "ip6-allrouters"],
];

/**
 * One --add-host value, "name:ip" or "name=ip". The name is split at the first separator since
 * an IPv6 address has colons of its own; "[::1]" brackets are accepted. "host-gateway" is
 * replaced by `hostGateway` when the caller knows it.
 */
export function parseExtraHost(spec: string, hostGateway?: string): { name: string; ip: string } {
  const sep = spec.search(/[:=]/);
  const name = sep > 0 ? spec.slice(0, sep).trim() : "";
  let ip = sep > 0 ? spec.slice(sep + 1).trim() : "";
  if (ip.startsWith("[") && ip.endsWith("]")) ip = ip.slice(1, -1);
  if (ip === "host-gateway" && hostGateway !== undefined) ip = hostGateway;
  if (name === "" || isIP(ip) === 0) {
    throw invalid(`invalid extra host "${spec}": expected name:ip or name=ip, for example myhost:10.0.0.5`);
  }
  return { name, ip };
}

export function renderHosts(opts: {
  hostname: string;
  domainname?: string;
  addresses: string[];
  extraHosts: string[];
  hostGateway?: string;
}): string {
  const lines = defaultHosts.map(([ip, names]) => `${ip}\t${names}`);
  for (const spec of opts.extraHosts) {
    const { name, ip } = parseExtraHost(spec, opts.hostGateway);
    lines.push(`${ip}\t${name}`);
  }
  const own = opts.domainname ? `${opts.hostname}.${opts.domainname} ${opts.hostname}` : opts.hostname;
  for (const ip of opts.addresses) lines.push(`${ip}\t${own}`);
  return lines.map((l) => `${l}\n`).join("");
}

export function renderHostname(hostname: string): string {
  return `${hostname}\n`;
}

/**
 * Replace a file's content keeping its inode. /etc/hosts, /etc/hostname and /etc/resolv.conf are
 * bind mounts of single files: a rename would swap the host's directory entry while the
 * container kept the old inode and never saw the change. Created when missing.
 *
 * Written over from the start, then cut to the new length, rather than truncated first: a reader
 * in the container never finds the file empty (no "localhost" at all), at worst a moment of
 * stale trailing lines.
 */
export async function writeInPlace(path: string, text: string, mode = 0o644): Promise<void> {
  const data = Buffer.from(text, "utf8");
  const fh = await open(path, constants.O_RDWR | constants.O_CREAT, mode);
  try {
    // A fresh handle's position is 0, and writeFile loops over short writes.
    await fh.writeFile(data);
    await fh.truncate(data.length);
  } finally {
    await fh.close();
  }
}
