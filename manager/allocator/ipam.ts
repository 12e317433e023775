// IPv4 arithmetic for the allocator: CIDRs, overlap, and the address pools of overlay networks.
// Addresses are unsigned 32-bit numbers here; strings only at the edges.
import { invalid } from "../../shared/errors.js";

export interface Cidr {
  /** The network address. */
  base: number;
  prefix: number;
}

export function ipToInt(ip: string): number | undefined {
  const parts = ip.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

function sizeOf(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function formatCidr(c: Cidr): string {
  return `${intToIp(c.base)}/${c.prefix}`;
}

/** A CIDR as a user gives it; host bits must be zero (the message names the network address). */
export function parseCidr(text: string, what = "subnet"): Cidr {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text.trim());
  const ip = m ? ipToInt(m[1]) : undefined;
  const prefix = m ? Number(m[2]) : NaN;
  if (ip === undefined || !(prefix >= 0 && prefix <= 32))
    throw invalid(`invalid ${what} ${JSON.stringify(text)}: give an IPv4 CIDR such as 10.10.0.0/24`);
  const size = 2 ** (32 - prefix);
  const base = ip - (ip % size);
  if (base !== ip)
    throw invalid(
      `invalid ${what} ${text}: the address has host bits set; the network is ${intToIp(base)}/${prefix}`,
    );
  return { base, prefix };
}

/** Parses a CIDR the allocator itself wrote; undefined when it is not one. */
export function tryCidr(text: string | undefined): Cidr | undefined {
  if (!text) return undefined;
  try {
    return parseCidr(text);
  } catch {
    return undefined;
  }
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.base < b.base + sizeOf(b) && b.base < a.base + sizeOf(a);
}

export function contains(c: Cidr, ip: number): boolean {
  return ip >= c.base && ip < c.base + sizeOf(c);
}

/** "10.0.1.5/24" or "10.0.1.5" → the address. */
export function addressOf(withPrefix: string): number | undefined {
  return ipToInt(withPrefix.split("/")[0]);
}

/**
 * One overlay network's addresses: the network address, the broadcast address and the gateway
 * (the first address unless the user named another) are never handed out; endpoints get the
 * lowest free address from .2 up.
 */
export class AddressPool {
  private readonly used = new Set<number>();
  private readonly reserved = new Set<number>();

  constructor(
    readonly cidr: Cidr,
    gateway?: number,
  ) {
    const size = sizeOf(cidr);
    this.reserved.add(cidr.base);
    this.reserved.add(cidr.base + 1);
    if (size > 2) this.reserved.add(cidr.base + size - 1);
    if (gateway !== undefined) this.reserved.add(gateway);
  }

  /** Marks an address taken (what the store already holds). False when it was taken already. */
  claim(ip: number): boolean {
    if (!contains(this.cidr, ip) || this.reserved.has(ip) || this.used.has(ip)) return false;
    this.used.add(ip);
    return true;
  }

  /** The lowest free address, taken; undefined when the subnet is full. */
  take(): number | undefined {
    const end = this.cidr.base + sizeOf(this.cidr);
    for (let ip = this.cidr.base + 2; ip < end; ip++) {
      if (this.reserved.has(ip) || this.used.has(ip)) continue;
      this.used.add(ip);
      return ip;
    }
    return undefined;
  }

  release(ip: number): void {
    this.used.delete(ip);
  }

  /** Addresses still free to hand out. */
  get free(): number {
    let reservedInside = 0;
    for (const ip of this.reserved) if (contains(this.cidr, ip)) reservedInside++;
    return sizeOf(this.cidr) - reservedInside - this.used.size;
  }

  /** Addresses in use (not counting the reserved ones). */
  get inUse(): number {
    return this.used.size;
  }

  /** "10.0.1.5/24". */
  format(ip: number): string {
    return `${intToIp(ip)}/${this.cidr.prefix}`;
  }
}
