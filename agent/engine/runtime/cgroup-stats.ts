// One container's cgroup figures in the Engine API's shapes, from cgroup v1 (a folder per
// controller) or v2 (one folder). Files that are missing give zeros, never an error: a cgroup
// that is going away, or a controller the host lacks, makes a sample poorer, not a failure.
import { join } from "node:path";
import type { CgroupDirs } from "./cgroup-dirs.js";
import { readSmall } from "./read-small.js";
import {
  emptyBlkioStats,
  type BlkioEntry,
  type BlkioStats,
  type CgroupSample,
  type MemoryStats,
} from "./stats-types.js";

/** USER_HZ: cpuacct.stat counts in these ticks on every Linux architecture shoal runs on. */
const TICKS_PER_SECOND = 100;
/** v1's "no limit" is a page-rounded 2^63-1; anything this large is no limit. */
const V1_UNLIMITED = 2 ** 62;

/** "key value" lines → a map of numbers (memory.stat, cpu.stat, cpuacct.stat). */
export function parseKeyValues(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (text ?? "").split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^-?\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

function num(text: string | undefined): number | undefined {
  const t = text?.trim();
  return t !== undefined && /^\d+$/.test(t) ? Number(t) : undefined;
}

const read = (dir: string, file: string): Promise<string | undefined> => readSmall(join(dir, file));

/** v1 blkio lines "8:0 Read 4096"; the per-device "Total" lines and the final "Total N" are dropped. */
export function parseBlkioV1(text: string | undefined): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  for (const line of (text ?? "").split("\n")) {
    const m = /^(\d+):(\d+)\s+(\S+)\s+(\d+)$/.exec(line.trim());
    if (m && m[3] !== "Total")
      out.push({ major: Number(m[1]), minor: Number(m[2]), op: m[3], value: Number(m[4]) });
  }
  return out;
}

/** v2 io.stat lines "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0". */
export function parseIoStatV2(text: string | undefined): { bytes: BlkioEntry[]; ios: BlkioEntry[] } {
  const bytes: BlkioEntry[] = [];
  const ios: BlkioEntry[] = [];
  for (const line of (text ?? "").split("\n")) {
    const [dev, ...pairs] = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(dev ?? "");
    if (!m) continue;
    const kv: Record<string, number> = {};
    for (const p of pairs) {
      const [k, v] = p.split("=");
      if (k && v && /^\d+$/.test(v)) kv[k] = Number(v);
    }
    const at = { major: Number(m[1]), minor: Number(m[2]) };
    bytes.push({ ...at, op: "read", value: kv.rbytes ?? 0 }, { ...at, op: "write", value: kv.wbytes ?? 0 });
    ios.push({ ...at, op: "read", value: kv.rios ?? 0 }, { ...at, op: "write", value: kv.wios ?? 0 });
  }
  return { bytes, ios };
}

async function readV1(d: CgroupDirs): Promise<CgroupSample> {
  const [usage, percpu, acct, cpuStat, memUsage, memMax, memLimit, failcnt, memStat, pidsCur, pidsMax] =
    await Promise.all([
      read(d.cpuacct, "cpuacct.usage"),
      read(d.cpuacct, "cpuacct.usage_percpu"),
      read(d.cpuacct, "cpuacct.stat"),
      read(d.cpu, "cpu.stat"),
      read(d.memory, "memory.usage_in_bytes"),
      read(d.memory, "memory.max_usage_in_bytes"),
      read(d.memory, "memory.limit_in_bytes"),
      read(d.memory, "memory.failcnt"),
      read(d.memory, "memory.stat"),
      read(d.pids, "pids.current"),
      read(d.pids, "pids.max"),
    ]);
  const ticks = parseKeyValues(acct);
  const throttle = parseKeyValues(cpuStat);
  const nsPerTick = 1e9 / TICKS_PER_SECOND;
  const percpuUsage = (percpu ?? "")
    .trim()
    .split(/\s+/)
    .filter((v) => /^\d+$/.test(v))
    .map(Number);
  const limit = num(memLimit);
  const memory: MemoryStats = {
    usage: num(memUsage) ?? 0,
    max_usage: num(memMax) ?? 0,
    stats: parseKeyValues(memStat),
    failcnt: num(failcnt) ?? 0,
    limit: limit !== undefined && limit < V1_UNLIMITED ? limit : undefined,
  };
  // CFQ's files are empty without that scheduler; the throttle files count every request.
  let bytes = parseBlkioV1(await read(d.blkio, "blkio.io_service_bytes_recursive"));
  let ios = parseBlkioV1(await read(d.blkio, "blkio.io_serviced_recursive"));
  if (bytes.length === 0)
    bytes = parseBlkioV1(await read(d.blkio, "blkio.throttle.io_service_bytes_recursive"));
  if (ios.length === 0) ios = parseBlkioV1(await read(d.blkio, "blkio.throttle.io_serviced_recursive"));
  const blkio: BlkioStats = {
    ...emptyBlkioStats(),
    io_service_bytes_recursive: bytes,
    io_serviced_recursive: ios,
  };
  return {
    cpu: {
      cpu_usage: {
        total_usage: num(usage) ?? 0,
        ...(percpuUsage.length > 0 ? { percpu_usage: percpuUsage } : {}),
        usage_in_kernelmode: (ticks.system ?? 0) * nsPerTick,
        usage_in_usermode: (ticks.user ?? 0) * nsPerTick,
      },
      throttling_data: {
        periods: throttle.nr_periods ?? 0,
        throttled_periods: throttle.nr_throttled ?? 0,
        throttled_time: throttle.throttled_time ?? 0,
      },
    },
    memory,
    blkio,
    pids: { current: num(pidsCur) ?? 0, ...(num(pidsMax) !== undefined ? { limit: num(pidsMax) } : {}) },
  };
}

async function readV2(d: CgroupDirs): Promise<CgroupSample> {
  const dir = d.unified;
  const [cpuStat, memCurrent, memMax, memStat, ioStat, pidsCur, pidsMax] = await Promise.all([
    read(dir, "cpu.stat"),
    read(dir, "memory.current"),
    read(dir, "memory.max"),
    read(dir, "memory.stat"),
    read(dir, "io.stat"),
    read(dir, "pids.current"),
    read(dir, "pids.max"),
  ]);
  const cpu = parseKeyValues(cpuStat);
  const io = parseIoStatV2(ioStat);
  return {
    cpu: {
      cpu_usage: {
        total_usage: (cpu.usage_usec ?? 0) * 1000,
        usage_in_kernelmode: (cpu.system_usec ?? 0) * 1000,
        usage_in_usermode: (cpu.user_usec ?? 0) * 1000,
      },
      throttling_data: {
        periods: cpu.nr_periods ?? 0,
        throttled_periods: cpu.nr_throttled ?? 0,
        throttled_time: (cpu.throttled_usec ?? 0) * 1000,
      },
    },
    memory: { usage: num(memCurrent) ?? 0, stats: parseKeyValues(memStat), limit: num(memMax) },
    blkio: { ...emptyBlkioStats(), io_service_bytes_recursive: io.bytes, io_serviced_recursive: io.ios },
    pids: { current: num(pidsCur) ?? 0, ...(num(pidsMax) !== undefined ? { limit: num(pidsMax) } : {}) },
  };
}

/** The cgroup's figures; `memory.limit` is undefined when the container has none. */
export function readCgroupSample(dirs: CgroupDirs): Promise<CgroupSample> {
  return dirs.version === "v2" ? readV2(dirs) : readV1(dirs);
}
