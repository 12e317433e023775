// HostConfig limits → linux.resources and process.rlimits, refusing what the kernel or runc
// would refuse later with a less helpful message. Texts follow dockerd's where it has one.

import { readFile } from "node:fs/promises";
import type { HostConfig, Ulimit } from "../../../shared/engine-api.js";
import { invalid } from "../../../shared/errors.js";
import type { LinuxResources, LinuxDeviceCgroup, POSIXRlimit } from "./oci-types.js";
import { RLIMIT_NAMES } from "../../../shared/rlimits.js";

import { CPU_PERIOD, limitResources, MIN_MEMORY, validateLimits } from "./resource-limits.js";
/** The kernel refuses a CFS quota under 1 ms. */
const MIN_CPU_QUOTA = 1000;

export interface ResourceContext {
  hostCpus: number;
  swapAccounting: boolean;
}

function nonNegativeInteger(value: number, flag: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw invalid(`invalid value ${value} for ${flag}: must be a non-negative integer`);
  }
}

export function validateResources(hc: HostConfig, ctx: ResourceContext): void {
  const memory = hc.Memory ?? 0;
  const swap = hc.MemorySwap ?? 0;
  nonNegativeInteger(memory, "--memory");
  if (memory > 0 && memory < MIN_MEMORY) throw invalid("Minimum memory limit allowed is 6MB (--memory)");
  if (!Number.isSafeInteger(swap) || swap < -1) {
    throw invalid(
      `invalid value ${swap} for --memory-swap: must be -1 (unlimited), 0 (twice --memory) or bytes`,
    );
  }
  if (swap > 0 && memory === 0) {
    throw invalid(
      "You should always set the Memory limit when using Memoryswap limit, see usage (--memory-swap)",
    );
  }
  if (swap > 0 && swap < memory) {
    throw invalid("Minimum memoryswap limit should be larger than memory limit, see usage (--memory-swap)");
  }

  const nano = hc.NanoCpus ?? 0;
  const quota = (nano * CPU_PERIOD) / 1e9;
  if (
    !Number.isSafeInteger(nano) ||
    nano < 0 ||
    nano > ctx.hostCpus * 1e9 ||
    (nano > 0 && quota < MIN_CPU_QUOTA)
  ) {
    throw invalid(
      `Range of CPUs is from 0.01 to ${ctx.hostCpus}.00, as there are only ${ctx.hostCpus} CPUs available (--cpus)`,
    );
  }
  nonNegativeInteger(hc.CpuShares ?? 0, "--cpu-shares");
  if (hc.PidsLimit !== null && hc.PidsLimit !== undefined && !Number.isSafeInteger(hc.PidsLimit)) {
    throw invalid(`invalid value ${hc.PidsLimit} for --pids-limit: must be an integer`);
  }
  if (hc.ShmSize !== undefined) nonNegativeInteger(hc.ShmSize, "--shm-size");
  validateLimits(hc, ctx);
}

export function buildResources(
  hc: HostConfig,
  devices: LinuxDeviceCgroup[],
  ctx: ResourceContext,
): LinuxResources {
  return { devices, ...limitResources(hc, ctx) };
}

/** Hard limits of the daemon, by ulimit name ("nofile"); Infinity = unlimited. */
export type HostRlimits = Record<string, { soft: number; hard: number }>;

/**
 * Exactly the --ulimit values, nothing inherited: runc can only lower hard limits without
 * CAP_SYS_RESOURCE, so any value above the daemon's own hard limit is refused here.
 */
export function buildRlimits(
  ulimits: Ulimit[] | null | undefined,
  host?: HostRlimits,
): POSIXRlimit[] | undefined {
  if (!ulimits || ulimits.length === 0) return undefined;
  const seen = new Set<string>();
  return ulimits.map((u) => {
    const name = u.Name.toLowerCase();
    const shown = `--ulimit ${u.Name}=${u.Soft}:${u.Hard}`;
    if (!RLIMIT_NAMES.has(name)) throw invalid(`invalid ${shown}: unknown ulimit "${u.Name}"`);
    if (seen.has(name)) throw invalid(`invalid ${shown}: ulimit "${name}" given twice`);
    seen.add(name);
    if (!Number.isSafeInteger(u.Soft) || !Number.isSafeInteger(u.Hard) || u.Soft < 0 || u.Hard < 0) {
      throw invalid(`invalid ${shown}: limits must be non-negative integers`);
    }
    if (u.Soft > u.Hard)
      throw invalid(`invalid ${shown}: soft limit ${u.Soft} is above hard limit ${u.Hard}`);
    const hostHard = host?.[name]?.hard;
    if (hostHard !== undefined && u.Hard > hostHard) {
      throw invalid(`invalid ${shown}: hard limit ${u.Hard} is above this host's limit of ${hostHard}`);
    }
    return { type: `RLIMIT_${name.toUpperCase()}`, soft: u.Soft, hard: u.Hard };
  });
}

const LIMITS_ROW: Record<string, string> = {
  "Max cpu time": "cpu",
  "Max file size": "fsize",
  "Max data size": "data",
  "Max stack size": "stack",
  "Max core file size": "core",
  "Max resident set": "rss",
  "Max processes": "nproc",
  "Max open files": "nofile",
  "Max locked memory": "memlock",
  "Max address space": "as",
  "Max file locks": "locks",
  "Max pending signals": "sigpending",
  "Max msgqueue size": "msgqueue",
  "Max nice priority": "nice",
  "Max realtime priority": "rtprio",
  "Max realtime timeout": "rttime",
};

export function parseProcLimits(text: string): HostRlimits {
  const out: HostRlimits = {};
  const num = (s: string): number => (s === "unlimited" ? Infinity : Number(s));
  for (const line of text.split("\n")) {
    const m = /^(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)/.exec(line);
    const name = m ? LIMITS_ROW[m[1]] : undefined;
    if (m && name) out[name] = { soft: num(m[2]), hard: num(m[3]) };
  }
  return out;
}

/** The daemon's own limits, read once at start-up. */
export async function readHostRlimits(path = "/proc/self/limits"): Promise<HostRlimits> {
  return parseProcLimits(await readFile(path, "utf8"));
}
