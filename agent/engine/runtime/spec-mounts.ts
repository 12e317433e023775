// The filesystems every container gets (moby's DefaultLinuxSpec mounts) and the tweaks dockerd
// applies for a read-only root, --privileged and --init.

import type { Mount } from "./oci-types.js";

/** Docker's default --shm-size. */
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

export const INIT_PATH_IN_CONTAINER = "/sbin/docker-init";

/** Mounts that stay writable with --read-only, so that /dev, ptys and IPC keep working. */
const WRITABLE_WITH_READONLY_ROOT = new Set(["/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev"]);

export interface MountOptions {
  shmSize: number;
  readonlyRoot: boolean;
  privileged: boolean;
  /** Host path of the init binary when --init is on. */
  initPath?: string;
}

export function defaultMounts(o: MountOptions): Mount[] {
  const mounts: Mount[] = [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    {
      destination: "/dev",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    {
      destination: "/sys/fs/cgroup",
      type: "cgroup",
      source: "cgroup",
      options: ["ro", "nosuid", "noexec", "nodev"],
    },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    {
      destination: "/dev/shm",
      type: "tmpfs",
      source: "shm",
      options: ["nosuid", "noexec", "nodev", "mode=1777", `size=${o.shmSize}`],
    },
  ];
  if (o.initPath !== undefined) {
    mounts.push({
      destination: INIT_PATH_IN_CONTAINER,
      type: "bind",
      source: o.initPath,
      options: ["bind", "ro"],
    });
  }
  if (o.readonlyRoot) {
    for (const m of mounts) {
      if (!WRITABLE_WITH_READONLY_ROOT.has(m.destination) && !m.options.includes("ro")) m.options.push("ro");
    }
  }
  if (o.privileged) {
    // A privileged container may write sysfs and its cgroups, as with dockerd.
    for (const m of mounts) {
      if (m.destination === "/sys" || m.type === "cgroup") m.options = m.options.filter((x) => x !== "ro");
    }
  }
  return mounts;
}

/** moby's masked paths: kernel information a container has no business reading. */
export const MASKED_PATHS: readonly string[] = [
  "/proc/asound",
  "/proc/acpi",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
];

export const READONLY_PATHS: readonly string[] = [
  "/proc/bus",
  "/proc/fs",
  "/proc/irq",
  "/proc/sys",
  "/proc/sysrq-trigger",
];
