// Device access: which device nodes a container may open (the devices cgroup) and, for
// --privileged, which host device nodes runc creates in the container's /dev.

import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode } from "../../../shared/errors.js";
import type { LinuxDevice, LinuxDeviceCgroup } from "./oci-types.js";

const allowChar = (major: number, minor: number): LinuxDeviceCgroup => ({
  allow: true,
  type: "c",
  major,
  minor,
  access: "rwm",
});

/**
 * moby's DefaultLinuxSpec rules, in moby's order: deny all, allow null, zero, urandom, random,
 * tty, console; deny fuse. runc 1.1 appends its own defaults after these (mknod of anything,
 * full, ptmx, /dev/pts/*, tun), so the container ends up with Docker's full allow-list. Writing
 * runc's "c *:* m" here ourselves would break the fuse deny: cgroup v1 cannot punch a hole
 * in a wildcard rule, and runc refuses the spec.
 */
export function defaultDeviceRules(): LinuxDeviceCgroup[] {
  return [
    { allow: false, access: "rwm" },
    allowChar(1, 5),
    allowChar(1, 3),
    allowChar(1, 9),
    allowChar(1, 8),
    allowChar(5, 0),
    allowChar(5, 1),
    { allow: false, type: "c", major: 10, minor: 229, access: "rwm" },
  ];
}

export function privilegedDeviceRules(): LinuxDeviceCgroup[] {
  return [{ allow: true, access: "rwm" }];
}

/** Folders of /dev that are mounts of their own in a container, or runtime clutter (containerd's list). */
const SKIP_DIRS = new Set(["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"]);

/** glibc's gnu_dev_major/minor for a 64-bit dev_t. */
export function majorMinor(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

/**
 * Every character and block device under the host's /dev (containerd's HostDevices): what a
 * --privileged container sees. Symlinks and the console are left out, as containerd does.
 */
export async function hostDevices(dir = "/dev"): Promise<LinuxDevice[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if (errnoCode(e) === "ENOENT" || errnoCode(e) === "EACCES") return [];
    throw e;
  }
  const out: LinuxDevice[] = [];
  for (const name of names.sort()) {
    const path = join(dir, name);
    let st;
    try {
      st = await lstat(path, { bigint: true });
    } catch (e) {
      if (errnoCode(e) === "ENOENT") continue;
      throw e;
    }
    if (st.isDirectory()) {
      if (!SKIP_DIRS.has(name)) out.push(...(await hostDevices(path)));
      continue;
    }
    if (name === "console" || !(st.isCharacterDevice() || st.isBlockDevice())) continue;
    out.push({
      path,
      type: st.isCharacterDevice() ? "c" : "b",
      ...majorMinor(st.rdev),
      fileMode: Number(st.mode & 0o777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
    });
  }
  return out;
}
