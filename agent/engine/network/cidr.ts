// IPv4 addresses and subnets as numbers, for IPAM arithmetic. Parsing errors name the value.
import { invalid } from "../../../shared/errors.js";

export interface Subnet {
  /** Network address as an unsigned 32-bit number. */
  base: number;
  prefix: number;
}

export function parseIp(text: string, what = "address"): number {
  const parts = text.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw invalid(`invalid IPv4 ${what} "${text}": use dotted form such as 172.20.0.1`);
  }
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parse "172.20.0.0/16"; host bits must be zero, as Docker requires for --subnet. */
export function parseSubnet(text: string, what = "subnet"): Subnet {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(text);
  if (!m || Number(m[2]) > 32)
    throw invalid(`invalid ${what} "${text}": use CIDR form such as 172.20.0.0/16`);
  const prefix = Number(m[2]);
  const addr = parseIp(m[1], what);
  const base = (addr & maskOf(prefix)) >>> 0;
  if (base !== addr) {
    throw invalid(
      `invalid ${what} "${text}": host bits are set; did you mean ${formatSubnet({ base, prefix })}?`,
    );
  }
  return { base, prefix };
}

export function formatSubnet(s: Subnet): string {
  return `${formatIp(s.base)}/${s.prefix}`;
}

export function size(s: Subnet): number {
  return 2 ** (32 - s.prefix);
}

export function contains(s: Subnet, ip: number): boolean {
  return ip >= s.base && ip < s.base + size(s);
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  return a.base < b.base + size(b) && b.base < a.base + size(a);
}

/** Whether `inner` lies wholly inside `outer`. */
export function within(inner: Subnet, outer: Subnet): boolean {
  return inner.base >= outer.base && inner.base + size(inner) <= outer.base + size(outer);
}
