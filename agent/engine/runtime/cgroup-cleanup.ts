import { readdir, readFile, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode } from "../../../shared/errors.js";

const CGROUP_ROOT = "/sys/fs/cgroup";

/**
 * Every folder a container's cgroup can have: the unified root (v2), each v1 hierarchy, and the
 * cgroup2 mount of a hybrid host. runc usually removes them on delete; this catches what a
 * failed create or a killed runc left.
 */
async function candidates(cgroupsPath: string, root: string): Promise<string[]> {
  const rel = cgroupsPath.replace(/^\/+/, "");
  const out = [join(root, rel)];
  try {
    for (const e of await readdir(root, { withFileTypes: true })) {
      if (e.isDirectory()) out.push(join(root, e.name, rel));
    }
  } catch {
    // No cgroup filesystem: nothing to clean.
  }
  return out;
}

/** Remove a container's (empty) cgroup folders in every hierarchy; missing ones are fine. */
export async function removeCgroupDirs(cgroupsPath: string, root = CGROUP_ROOT): Promise<void> {
  for (const dir of await candidates(cgroupsPath, root)) {
    try {
      await rmdir(dir);
    } catch (e) {
      const code = errnoCode(e);
      if (code !== "ENOENT" && code !== "ENOTDIR") throw e;
    }
  }
}

/** Whether the kernel OOM-killed a process in this cgroup (v1 memory.oom_control, v2 memory.events). */
export async function cgroupSawOomKill(cgroupsPath: string, root = CGROUP_ROOT): Promise<boolean> {
  const rel = cgroupsPath.replace(/^\/+/, "");
  const files = [join(root, "memory", rel, "memory.oom_control"), join(root, rel, "memory.events")];
  for (const f of files) {
    try {
      const m = /^oom_kill (\d+)$/m.exec(await readFile(f, "utf8"));
      if (m && Number(m[1]) > 0) return true;
    } catch {
      // This hierarchy does not exist here.
    }
  }
  return false;
}
