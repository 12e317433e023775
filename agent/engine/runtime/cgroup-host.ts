// The host's side of the cgroup limits: which CPUs and memory nodes exist, and whether the
// kernel has the knobs a field needs. A field the host cannot apply is refused here, at create
// or update, instead of being dropped (dockerd warns and drops) or failing later inside runc.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { invalid } from "../../../shared/errors.js";
import { pathExists } from "../../../shared/fsutil.js";
import type { CgroupVersion } from "./cgroups.js";
import { parseCpuList, type Limits } from "./resource-limits.js";
import { hasThrottles } from "./blkio-devices.js";
import type { HostConfig } from "../../../shared/engine-api.js";

export interface CgroupHostFacts {
  version: CgroupVersion;
  /** The kernel's list text, e.g. "0-1". */
  cpus: string;
  mems: string;
  /** A block I/O weight knob exists (v1 blkio.weight / blkio.bfq.weight, v2 io.weight / io.bfq.weight). */
  blkioWeight: boolean;
  /** Per-device throttles exist (v1 blkio.throttle.*, v2 io.max). */
  blkioThrottle: boolean;
}

async function firstText(paths: string[]): Promise<string> {
  for (const p of paths) {
    try {
      const t = (await readFile(p, "utf8")).trim();
      if (t !== "") return t;
    } catch {
      // Next candidate.
    }
  }
  return "";
}

async function anyExists(paths: string[]): Promise<boolean> {
  for (const p of paths) if (await pathExists(p)) return true;
  return false;
}

/** The daemon's own v2 cgroup folder (the root has no io.weight, a child does). */
async function ownUnifiedDir(root: string, procSelfCgroup: string): Promise<string> {
  try {
    const line = (await readFile(procSelfCgroup, "utf8")).split("\n").find((l) => l.startsWith("0::"));
    return join(root, line ? line.slice(3) : "/");
  } catch {
    return root;
  }
}

export async function readCgroupHostFacts(
  version: CgroupVersion,
  root = "/sys/fs/cgroup",
  procSelfCgroup = "/proc/self/cgroup",
): Promise<CgroupHostFacts> {
  if (version === "v1") {
    return {
      version,
      cpus: await firstText([join(root, "cpuset/cpuset.effective_cpus"), join(root, "cpuset/cpuset.cpus")]),
      mems: await firstText([join(root, "cpuset/cpuset.effective_mems"), join(root, "cpuset/cpuset.mems")]),
      blkioWeight: await anyExists([join(root, "blkio/blkio.weight"), join(root, "blkio/blkio.bfq.weight")]),
      blkioThrottle: await anyExists([join(root, "blkio/blkio.throttle.read_bps_device")]),
    };
  }
  const own = await ownUnifiedDir(root, procSelfCgroup);
  const subtree = await firstText([join(root, "cgroup.subtree_control")]);
  return {
    version,
    cpus: await firstText([join(root, "cpuset.cpus.effective"), "/sys/devices/system/cpu/online"]),
    mems: await firstText([join(root, "cpuset.mems.effective"), "/sys/devices/system/node/online"]),
    blkioWeight:
      (await anyExists([join(own, "io.weight"), join(own, "io.bfq.weight")])) ||
      subtree.split(/\s+/).includes("io"),
    blkioThrottle: (await anyExists([join(own, "io.max")])) || subtree.split(/\s+/).includes("io"),
  };
}

function checkSubset(requested: string, available: string, flag: string, what: string): void {
  if (available === "") return;
  const have = new Set(parseCpuList(available, flag));
  if (parseCpuList(requested, flag).some((c) => !have.has(c)))
    throw invalid(
      `Requested ${what} are not available - requested ${requested}, available: ${available} (${flag})`,
    );
}

/** Refuse what this host cannot apply; `hc` holds the fields as they will be in force. */
export function checkHostLimits(hc: Limits & Partial<HostConfig>, facts: CgroupHostFacts): void {
  if (hc.CpusetCpus) checkSubset(hc.CpusetCpus, facts.cpus, "--cpuset-cpus", "CPUs");
  if (hc.CpusetMems) checkSubset(hc.CpusetMems, facts.mems, "--cpuset-mems", "memory nodes");
  if ((hc.BlkioWeight ?? 0) > 0 && !facts.blkioWeight)
    throw invalid(
      "--blkio-weight cannot be applied: this host's kernel has no block I/O weight knob (its I/O scheduler is neither BFQ nor CFQ); run without --blkio-weight",
    );
  if (hasThrottles(hc) && !facts.blkioThrottle)
    throw invalid(
      "--device-read-bps/--device-write-bps/--device-read-iops/--device-write-iops cannot be applied: this host has no block I/O throttling cgroup; run without them",
    );
  const swappiness = hc.MemorySwappiness;
  if (facts.version === "v2" && swappiness !== undefined && swappiness !== null && swappiness !== -1)
    throw invalid(
      "--memory-swappiness cannot be applied: cgroup v2 has no per-container swappiness; run without it",
    );
  if (facts.version === "v2" && hc.OomKillDisable === true)
    throw invalid(
      "--oom-kill-disable cannot be applied: cgroup v2 cannot turn the OOM killer off; run without it",
    );
}
