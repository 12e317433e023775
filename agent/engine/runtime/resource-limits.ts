// HostConfig's cgroup limits → the OCI spec's linux.resources (all but the device rules), and
// the checks that need no host facts. One function serves create (the bundle's config.json) and
// update (`runc update --resources -` and the rewritten config.json), so both write the same thing.
// runc turns the same fields into v1 files or v2 ones; texts follow dockerd's where it has one.

import type { HostConfig } from "../../../shared/engine-api.js";
import { invalid } from "../../../shared/errors.js";
import type { LinuxResources } from "./oci-types.js";
import type { ThrottleSet } from "./blkio-devices.js";

/** dockerd's linuxMinMemory, also its floor for --memory-reservation. */
export const MIN_MEMORY = 6 * 1024 * 1024;
/** What --cpus is measured against (the kernel's default CFS period). */
export const CPU_PERIOD = 100_000;
/** The kernel refuses a CFS quota under 1 ms and a period outside 1 ms..1 s. */
const MIN_CPU_QUOTA = 1000;
const MIN_CPU_PERIOD = 1000;
const MAX_CPU_PERIOD = 1_000_000;
const MIN_CPU_SHARES = 2;
const MAX_CPU_SHARES = 262_144;

export interface LimitContext {
  swapAccounting: boolean;
  /** --device-read-bps and friends with their devices' numbers (runtime/blkio-devices.ts). */
  throttle?: ThrottleSet;
}

/** The limit fields; a Partial so update bodies and records both fit. */
export type Limits = Partial<
  Pick<
    HostConfig,
    | "Memory"
    | "MemorySwap"
    | "MemoryReservation"
    | "MemorySwappiness"
    | "OomKillDisable"
    | "NanoCpus"
    | "CpuShares"
    | "CpuPeriod"
    | "CpuQuota"
    | "CpusetCpus"
    | "CpusetMems"
    | "PidsLimit"
    | "BlkioWeight"
  >
>;

/** "0-2,4" → [0, 1, 2, 4]; the kernel's list format, as cpuset.cpus takes it. */
export function parseCpuList(text: string, flag = "--cpuset-cpus"): number[] {
  const out = new Set<number>();
  const bad = (): never => {
    throw invalid(`Invalid value ${text} for ${flag}: use a list such as 0-3 or 0,2 (numbers and ranges)`);
  };
  for (const part of text.trim().split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) bad();
    const from = Number(m![1]);
    const to = m![2] === undefined ? from : Number(m![2]);
    if (to < from || to - from > 4096) bad();
    for (let i = from; i <= to; i++) out.add(i);
  }
  return [...out].sort((a, b) => a - b);
}

function integer(value: number | undefined, flag: string, min: number): void {
  if (value === undefined) return;
  if (!Number.isSafeInteger(value) || value < min)
    throw invalid(`invalid value ${value} for ${flag}: must be an integer of at least ${min}`);
}

/** Checks of the fields beyond memory/cpus/pids that need nothing of the host but swap accounting. */
export function validateLimits(hc: Limits, ctx: LimitContext): void {
  const memory = hc.Memory ?? 0;
  const period = hc.CpuPeriod ?? 0;
  const quota = hc.CpuQuota ?? 0;
  integer(hc.CpuPeriod, "--cpu-period", 0);
  if (period !== 0 && (period < MIN_CPU_PERIOD || period > MAX_CPU_PERIOD))
    throw invalid(
      "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1 second (i.e. 1000000) (--cpu-period)",
    );
  integer(hc.CpuQuota, "--cpu-quota", -1);
  if (quota > 0 && quota < MIN_CPU_QUOTA)
    throw invalid("CPU cfs quota can not be less than 1ms (i.e. 1000) (--cpu-quota)");
  if ((hc.NanoCpus ?? 0) > 0 && period > 0)
    throw invalid(
      "Conflicting options: Nano CPUs and CPU Period cannot both be set: use --cpus or --cpu-period/--cpu-quota",
    );
  if ((hc.NanoCpus ?? 0) > 0 && quota !== 0)
    throw invalid(
      "Conflicting options: Nano CPUs and CPU Quota cannot both be set: use --cpus or --cpu-period/--cpu-quota",
    );
  if (hc.CpusetCpus) parseCpuList(hc.CpusetCpus, "--cpuset-cpus");
  if (hc.CpusetMems) parseCpuList(hc.CpusetMems, "--cpuset-mems");

  const reservation = hc.MemoryReservation ?? 0;
  integer(hc.MemoryReservation, "--memory-reservation", 0);
  if (reservation > 0 && reservation < MIN_MEMORY)
    throw invalid("Minimum memory reservation allowed is 6MB (--memory-reservation)");
  if (memory > 0 && reservation > memory)
    throw invalid(
      "Minimum memory limit can not be less than memory reservation limit, see usage: lower --memory-reservation or raise --memory",
    );
  const swappiness = hc.MemorySwappiness;
  if (swappiness !== undefined && swappiness !== null && swappiness !== -1) {
    if (!Number.isSafeInteger(swappiness) || swappiness < 0 || swappiness > 100)
      throw invalid(
        `Invalid value: ${swappiness}, valid memory swappiness range is 0-100 (--memory-swappiness)`,
      );
  }
  if ((hc.MemorySwap ?? 0) > 0 && !ctx.swapAccounting)
    throw invalid(
      "--memory-swap cannot be applied: this host's kernel does not account swap per cgroup (boot it with swapaccount=1), so run without --memory-swap",
    );
  if (hc.OomKillDisable === true && memory === 0)
    throw invalid(
      "--oom-kill-disable without --memory would let the container take all of the host's memory and never be stopped: add --memory",
    );
  const weight = hc.BlkioWeight ?? 0;
  integer(hc.BlkioWeight, "--blkio-weight", 0);
  if (weight !== 0 && (weight < 10 || weight > 1000))
    throw invalid("Range of blkio weight is from 10 to 1000 (--blkio-weight)");
}

/** linux.resources without the device rules. */
export function limitResources(hc: Limits, ctx: LimitContext): Omit<LinuxResources, "devices"> {
  const res: Omit<LinuxResources, "devices"> = {};
  const memory = hc.Memory ?? 0;
  const mem: NonNullable<LinuxResources["memory"]> = {};
  if (memory > 0) {
    mem.limit = memory;
    // Without swap accounting the kernel has no memory+swap knob; runc would fail on it.
    if (ctx.swapAccounting) {
      const swap = hc.MemorySwap ?? 0;
      mem.swap = swap === 0 ? 2 * memory : swap;
    }
  }
  if ((hc.MemoryReservation ?? 0) > 0) mem.reservation = hc.MemoryReservation;
  const swappiness = hc.MemorySwappiness;
  if (swappiness !== undefined && swappiness !== null && swappiness >= 0) mem.swappiness = swappiness;
  if (hc.OomKillDisable === true) mem.disableOOMKiller = true;
  if (Object.keys(mem).length > 0) res.memory = mem;

  const cpu: NonNullable<LinuxResources["cpu"]> = {};
  const shares = hc.CpuShares ?? 0;
  const nano = hc.NanoCpus ?? 0;
  // runc reads shares back and fails if the kernel clamped them; dockerd clamps first too.
  if (shares > 0) cpu.shares = Math.min(Math.max(shares, MIN_CPU_SHARES), MAX_CPU_SHARES);
  if (nano > 0) {
    cpu.period = CPU_PERIOD;
    cpu.quota = Math.floor((nano * CPU_PERIOD) / 1e9);
  }
  if ((hc.CpuPeriod ?? 0) > 0) cpu.period = hc.CpuPeriod;
  if ((hc.CpuQuota ?? 0) !== 0) cpu.quota = hc.CpuQuota;
  if (hc.CpusetCpus) cpu.cpus = hc.CpusetCpus;
  if (hc.CpusetMems) cpu.mems = hc.CpusetMems;
  if (Object.keys(cpu).length > 0) res.cpu = cpu;

  if (hc.PidsLimit !== null && hc.PidsLimit !== undefined && hc.PidsLimit > 0)
    res.pids = { limit: hc.PidsLimit };
  const blockIO = { ...((hc.BlkioWeight ?? 0) > 0 ? { weight: hc.BlkioWeight } : {}), ...ctx.throttle };
  if (Object.keys(blockIO).length > 0) res.blockIO = blockIO;
  return res;
}
