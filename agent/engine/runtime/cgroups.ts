// Start-up facts about the host's cgroups that decide what goes into a spec: which cgroup
// version runc will drive, and whether memory+swap can be limited at all.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pathExists } from "../../../shared/fsutil.js";

export type CgroupVersion = "v1" | "v2";

/**
 * v2 only when /sys/fs/cgroup itself is the unified hierarchy. A "hybrid" host (v1 controllers
 * plus an almost empty cgroup2 at /sys/fs/cgroup/unified) is v1 for runc.
 */
export async function detectCgroupVersion(root = "/sys/fs/cgroup"): Promise<CgroupVersion> {
  return (await pathExists(join(root, "cgroup.controllers"))) ? "v2" : "v1";
}

/**
 * linux.cgroupsPath for runc's cgroupfs driver: an absolute path below every hierarchy's root
 * (v1) or the unified root (v2). Both versions take the same form.
 */
export function cgroupsPathFor(parent: string, id: string, _version: CgroupVersion): string {
  const clean = parent
    .split("/")
    .filter((p) => p !== "" && p !== "." && p !== "..")
    .join("/");
  return clean === "" ? `/${id}` : `/${clean}/${id}`;
}

/**
 * Whether memory+swap can be limited. v1: the memory controller has memory.memsw.* files
 * (swapaccount enabled). v2: memory.swap.max exists in a non-root cgroup (the root has none),
 * here our own.
 */
export async function hasSwapAccounting(version: CgroupVersion, root = "/sys/fs/cgroup"): Promise<boolean> {
  if (version === "v1") return pathExists(join(root, "memory", "memory.memsw.limit_in_bytes"));
  let own = "/";
  try {
    const line = (await readFile("/proc/self/cgroup", "utf8")).split("\n").find((l) => l.startsWith("0::"));
    if (line) own = line.slice(3);
  } catch {
    return false;
  }
  return pathExists(join(root, own, "memory.swap.max"));
}
