// GET /containers/{id}/stats: samples of a container's cgroup, its network namespace's
// counters and the host's CPU time, once a second while streaming. A container that is not
// running gives zeros (as dockerd does), so a stream survives a restart of the container.
import { totalmem } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { cgroupDirs } from "../runtime/cgroup-dirs.js";
import { readCgroupSample } from "../runtime/cgroup-stats.js";
import { readNetDev, readProcStat } from "../runtime/proc-stats.js";
import {
  emptyBlkioStats,
  emptyCpuStats,
  ZERO_TIME,
  type ContainerStats,
  type CpuStats,
} from "../runtime/stats-types.js";
import { containerPaths, type EngineContext } from "./context.js";
import type { ContainerRecord } from "./types.js";

export interface StatsOptions {
  /** Keep sending a sample a second until the signal aborts. */
  stream: boolean;
  /** With stream false: one sample at once, no precpu (Docker's one-shot). */
  oneShot: boolean;
  signal?: AbortSignal;
}

const INTERVAL_MS = 1000;

function zeroSample(rec: ContainerRecord): ContainerStats {
  return {
    read: ZERO_TIME,
    preread: ZERO_TIME,
    pids_stats: {},
    blkio_stats: emptyBlkioStats(),
    num_procs: 0,
    storage_stats: {},
    cpu_stats: emptyCpuStats(),
    precpu_stats: emptyCpuStats(),
    memory_stats: {},
    name: `/${rec.Name}`,
    id: rec.Id,
  };
}

/** One sample of a container, with the previous one's CPU figures as precpu. */
export async function sampleStats(
  ctx: EngineContext,
  rec: ContainerRecord,
  previous?: ContainerStats,
): Promise<ContainerStats> {
  const s = rec.State.Status;
  const pid = rec.State.Pid;
  if ((s !== "running" && s !== "paused") || pid <= 0) return zeroSample(rec);
  const dirs = cgroupDirs(containerPaths(ctx, rec.Id).cgroupsPath, ctx.cgroupVersion);
  const ownNetns = rec.HostConfig.NetworkMode !== "host";
  const [cg, host, networks] = await Promise.all([
    readCgroupSample(dirs),
    readProcStat(),
    ownNetns ? readNetDev(pid) : Promise.resolve(undefined),
  ]);
  // No limit (or one above the machine) shows the machine's memory, as dockerd does.
  const machine = totalmem();
  const limit = cg.memory.limit === undefined ? machine : Math.min(cg.memory.limit, machine);
  const cpu: CpuStats = { ...cg.cpu, system_cpu_usage: host.systemCpuUsage, online_cpus: host.onlineCpus };
  const out: ContainerStats = {
    read: new Date().toISOString(),
    preread: previous && previous.read !== ZERO_TIME ? previous.read : ZERO_TIME,
    pids_stats: cg.pids,
    blkio_stats: cg.blkio,
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpu,
    precpu_stats: previous && previous.read !== ZERO_TIME ? previous.cpu_stats : emptyCpuStats(),
    memory_stats: { ...cg.memory, limit },
    name: `/${rec.Name}`,
    id: rec.Id,
  };
  if (networks && Object.keys(networks).length > 0) out.networks = networks;
  return out;
}

/**
 * The samples a request asks for. `current()` gives the record as it is now (undefined once the
 * container is gone, which ends a stream). Without stream and one-shot, two samples a second
 * apart make one answer with precpu filled, so the CLI's --no-stream shows a CPU %.
 */
export async function* streamStats(
  ctx: EngineContext,
  current: () => ContainerRecord | undefined,
  options: StatsOptions,
): AsyncGenerator<ContainerStats> {
  const wait = async (): Promise<boolean> => {
    try {
      await sleep(INTERVAL_MS, undefined, { signal: options.signal });
      return true;
    } catch {
      return false;
    }
  };
  let rec = current();
  if (!rec) return;
  if (!options.stream) {
    if (options.oneShot) {
      yield await sampleStats(ctx, rec);
      return;
    }
    const first = await sampleStats(ctx, rec);
    if (first.read === ZERO_TIME || !(await wait())) {
      yield first;
      return;
    }
    rec = current();
    yield rec ? await sampleStats(ctx, rec, first) : first;
    return;
  }
  let previous: ContainerStats | undefined;
  while (rec && !options.signal?.aborted) {
    previous = await sampleStats(ctx, rec, previous);
    yield previous;
    if (!(await wait())) return;
    rec = current();
  }
}
