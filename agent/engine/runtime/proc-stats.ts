// Host and namespace figures from /proc for container stats: the host's CPU time (the base
// docker stats divides by) and a network namespace's interface counters.
import { readSmall } from "./read-small.js";
import type { NetworkStats } from "./stats-types.js";

const TICKS_PER_SECOND = 100;

/** /proc/stat: nanoseconds all CPUs spent (first 7 fields, as dockerd sums them) and the online CPU count. */
export function parseProcStat(text: string | undefined): { systemCpuUsage: number; onlineCpus: number } {
  let systemCpuUsage = 0;
  let onlineCpus = 0;
  for (const line of (text ?? "").split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] === "cpu") {
      const ticks = fields.slice(1, 8).reduce((sum, v) => sum + (Number(v) || 0), 0);
      systemCpuUsage = (ticks * 1e9) / TICKS_PER_SECOND;
    } else if (/^cpu\d+$/.test(fields[0] ?? "")) onlineCpus++;
  }
  return { systemCpuUsage, onlineCpus };
}

export async function readProcStat(
  path = "/proc/stat",
): Promise<{ systemCpuUsage: number; onlineCpus: number }> {
  return parseProcStat(await readSmall(path));
}

/** /proc/<pid>/net/dev → per interface counters; the loopback is left out, as Docker does. */
export function parseNetDev(text: string | undefined): Record<string, NetworkStats> {
  const out: Record<string, NetworkStats> = {};
  for (const line of (text ?? "").split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const v = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (name === "" || name === "lo" || v.length < 16 || v.some((n) => !Number.isFinite(n))) continue;
    out[name] = {
      rx_bytes: v[0],
      rx_packets: v[1],
      rx_errors: v[2],
      rx_dropped: v[3],
      tx_bytes: v[8],
      tx_packets: v[9],
      tx_errors: v[10],
      tx_dropped: v[11],
    };
  }
  return out;
}

export async function readNetDev(pid: number): Promise<Record<string, NetworkStats>> {
  return parseNetDev(await readSmall(`/proc/${pid}/net/dev`));
}
