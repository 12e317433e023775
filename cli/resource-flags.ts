// run/create's cgroup limit flags beyond --memory/--cpus/--pids-limit, as the docker CLI spells
// and sends them (docs/engine-resources.md).
import type { HostConfig, ThrottleDevice } from "../shared/engine-api.js";
import { parseBytes } from "../shared/units.js";
import { UsageError } from "./errors.js";

export interface ResourceFlags {
  cpusetCpus?: string;
  cpusetMems?: string;
  cpuPeriod?: string;
  cpuQuota?: string;
  memoryReservation?: string;
  memorySwappiness?: string;
  blkioWeight?: string;
  oomKillDisable?: boolean;
  deviceReadBps?: string[];
  deviceWriteBps?: string[];
  deviceReadIops?: string[];
  deviceWriteIops?: string[];
}

function integer(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value.trim()))
    throw new UsageError(`invalid argument "${value}" for "${flag}" flag: not an integer`);
  return Number(value);
}

/** "/dev/sda:1mb" (bps: a size; iops: a number). */
function throttles(values: string[] | undefined, flag: string, sized: boolean): ThrottleDevice[] | null {
  if (!values || values.length === 0) return null;
  return values.map((v) => {
    const colon = v.lastIndexOf(":");
    const path = colon > 0 ? v.slice(0, colon) : "";
    const rate = colon > 0 ? v.slice(colon + 1) : "";
    if (!path.startsWith("/") || rate === "")
      throw new UsageError(
        `invalid argument "${v}" for "${flag}" flag: use <device-path>:<rate>, e.g. /dev/sda:${sized ? "1mb" : "100"}`,
      );
    if (sized) {
      try {
        return { Path: path, Rate: parseBytes(rate, flag) };
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
    }
    const n = integer(rate, flag)!;
    if (n < 0)
      throw new UsageError(`invalid argument "${v}" for "${flag}" flag: the rate cannot be negative`);
    return { Path: path, Rate: n };
  });
}

export function resourceHostConfig(f: ResourceFlags): Partial<HostConfig> {
  let reservation = 0;
  if (f.memoryReservation !== undefined) {
    try {
      reservation = parseBytes(f.memoryReservation, "--memory-reservation");
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const swappiness = integer(f.memorySwappiness, "--memory-swappiness");
  if (swappiness !== undefined && (swappiness < -1 || swappiness > 100))
    throw new UsageError(`invalid value: ${swappiness}. Valid memory swappiness range is 0-100`);
  // Only what was given: the body of a plain run stays as it was.
  const out: Partial<HostConfig> = {
    CpusetCpus: f.cpusetCpus,
    CpusetMems: f.cpusetMems,
    CpuPeriod: integer(f.cpuPeriod, "--cpu-period"),
    CpuQuota: integer(f.cpuQuota, "--cpu-quota"),
    MemoryReservation: f.memoryReservation !== undefined ? reservation : undefined,
    MemorySwappiness: swappiness,
    BlkioWeight: integer(f.blkioWeight, "--blkio-weight"),
    OomKillDisable: f.oomKillDisable === true ? true : undefined,
    BlkioDeviceReadBps: throttles(f.deviceReadBps, "--device-read-bps", true) ?? undefined,
    BlkioDeviceWriteBps: throttles(f.deviceWriteBps, "--device-write-bps", true) ?? undefined,
    BlkioDeviceReadIOps: throttles(f.deviceReadIops, "--device-read-iops", false) ?? undefined,
    BlkioDeviceWriteIOps: throttles(f.deviceWriteIops, "--device-write-iops", false) ?? undefined,
  };
  for (const k of Object.keys(out) as Array<keyof HostConfig>) if (out[k] === undefined) delete out[k];
  return out;
}
