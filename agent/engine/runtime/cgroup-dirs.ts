// Where one container's cgroup lives: a folder per controller on v1 (each hierarchy mounted on
// its own, cpu and cpuacct sometimes joined), one folder on v2. Roots are parameters so the
// readers can be tested against fixture folders.
import { join } from "node:path";
import type { CgroupVersion } from "./cgroups.js";

export interface CgroupDirs {
  version: CgroupVersion;
  /** v2: the container's only folder; v1: unused. */
  unified: string;
  memory: string;
  cpu: string;
  cpuacct: string;
  blkio: string;
  pids: string;
  freezer: string;
  cpuset: string;
}

export const CGROUP_ROOT = "/sys/fs/cgroup";

export function cgroupDirs(cgroupsPath: string, version: CgroupVersion, root = CGROUP_ROOT): CgroupDirs {
  const rel = cgroupsPath.replace(/^\/+/, "");
  const at = (controller: string): string =>
    version === "v2" ? join(root, rel) : join(root, controller, rel);
  return {
    version,
    unified: join(root, rel),
    memory: at("memory"),
    cpu: at("cpu"),
    cpuacct: at("cpuacct"),
    blkio: at("blkio"),
    pids: at("pids"),
    freezer: at("freezer"),
    cpuset: at("cpuset"),
  };
}
