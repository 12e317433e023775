// Picks a subnet for a new network that collides with nothing: not with other networks, and
// not with the host's own routes (a bridge on a routed range would cut the host off from it).
import { readFile } from "node:fs/promises";
import { conflict } from "../../../shared/errors.js";
import { formatSubnet, overlaps, size, type Subnet } from "./cidr.js";

/** Docker's default address pools: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s. */
export function defaultPools(): Subnet[] {
  const pools: Subnet[] = [];
  for (let b = 17; b <= 31; b++) pools.push({ base: ((172 << 24) | (b << 16)) >>> 0, prefix: 16 });
  for (let c = 0; c < 256; c += 16)
    pools.push({ base: ((192 << 24) | (168 << 16) | (c << 8)) >>> 0, prefix: 20 });
  return pools;
}

/** IPv4 routes of the host from /proc/net/route (little-endian hex), default route left out. */
export async function hostRoutes(path = "/proc/net/route"): Promise<Subnet[]> {
  const text = await readFile(path, "utf8").catch(() => "");
  const routes: Subnet[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const dest = Buffer.from(f[1], "hex").readUInt32LE(0);
    const mask = Buffer.from(f[7], "hex").readUInt32LE(0);
    if (mask === 0) continue;
    const prefix = 32 - Math.log2(2 ** 32 - mask);
    if (Number.isInteger(prefix)) routes.push({ base: dest >>> 0, prefix });
  }
  return routes;
}

/** The first pool that overlaps nothing in use; 409 when every pool is taken. */
export function pickFreeSubnet(inUse: readonly Subnet[], pools: readonly Subnet[] = defaultPools()): Subnet {
  for (const p of pools) if (!inUse.some((u) => overlaps(p, u))) return p;
  const total = pools.reduce((n, p) => n + size(p), 0);
  throw conflict(
    `all ${pools.length} default address pools (${total} addresses) overlap existing networks or host routes: pass --subnet, or remove unused networks (shoal network prune); first pool was ${formatSubnet(pools[0])}`,
  );
}
