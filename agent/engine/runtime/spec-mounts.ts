// The filesystems every container gets (moby's DefaultLinuxSpec mounts) and the tweaks dockerd
// applies for a read-only root, --privileged and --init.

import { normalize } from "node:path/posix";
import { invalid } from "../../../shared/errors.js";
import type { ContainerRecord } from "../container/types.js";
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

/** /etc/hosts, /etc/resolv.conf, /etc/hostname: the engine's files, writable unless the root is read-only (as in Docker). */
export function etcMounts(
  files: { hosts: string; resolvConf: string; hostname: string },
  readonlyRoot: boolean,
): Mount[] {
  const options = ["rbind", "rprivate", readonlyRoot ? "ro" : "rw"];
  return [
    { destination: "/etc/hostname", type: "bind", source: files.hostname, options: [...options] },
    { destination: "/etc/hosts", type: "bind", source: files.hosts, options: [...options] },
    { destination: "/etc/resolv.conf", type: "bind", source: files.resolvConf, options: [...options] },
  ];
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

// ---- user mounts: volumes, binds and tmpfs (-v, --mount, --tmpfs) ------------------------------

/** Mount flags a tmpfs accepts, by the kernel flag they set: a later one of a pair wins (ro/rw). */
const TMPFS_FLAG_KIND: Record<string, string> = {
  ro: "rdonly",
  rw: "rdonly",
  suid: "nosuid",
  nosuid: "nosuid",
  dev: "nodev",
  nodev: "nodev",
  exec: "noexec",
  noexec: "noexec",
  sync: "sync",
  async: "sync",
  dirsync: "dirsync",
  mand: "mand",
  nomand: "mand",
  atime: "noatime",
  noatime: "noatime",
  diratime: "nodiratime",
  nodiratime: "nodiratime",
  relatime: "relatime",
  norelatime: "relatime",
  strictatime: "strictatime",
  nostrictatime: "strictatime",
  private: "propagation",
  rprivate: "propagation",
  shared: "propagation",
  rshared: "propagation",
  slave: "propagation",
  rslave: "propagation",
  unbindable: "propagation",
  runbindable: "propagation",
};

/** tmpfs's data options and what their values look like. */
const TMPFS_DATA: Record<string, RegExp> = {
  size: /^\d+[kKmMgG%]?$/,
  nr_blocks: /^\d+[kKmMgG%]?$/,
  nr_inodes: /^\d+[kKmMgG%]?$/,
  mode: /^[0-7]{1,4}$/,
  uid: /^\d+$/,
  gid: /^\d+$/,
  mpol: /^.+$/,
};

/** Docker's defaults for every tmpfs mount, before the user's options. */
const TMPFS_DEFAULTS = ["noexec", "nosuid", "nodev", "rprivate"];

/**
 * The mount options of a tmpfs: Docker's defaults, then the user's ("size=64m,exec"), a later
 * option replacing an earlier one of its kind (moby's MergeTmpfsOptions). Throws a 400 that
 * names the bad option.
 */
export function tmpfsMountOptions(data: string, where: string): string[] {
  const options = [...TMPFS_DEFAULTS, ...data.split(",").filter((o) => o !== "" && o !== "defaults")];
  const seen = new Set<string>();
  const out: string[] = [];
  for (let i = options.length - 1; i >= 0; i--) {
    const option = options[i];
    const kind = TMPFS_FLAG_KIND[option];
    if (kind !== undefined) {
      if (seen.has(kind)) continue;
      seen.add(kind);
      out.unshift(option);
      continue;
    }
    const eq = option.indexOf("=");
    const key = eq < 0 ? option : option.slice(0, eq);
    const pattern = TMPFS_DATA[key];
    if (eq < 0 || pattern === undefined) {
      throw invalid(
        `invalid tmpfs option "${option}" for ${where}: use size=, mode=, uid=, gid=, nr_inodes= or flags such as ro, exec, nosuid`,
      );
    }
    if (!pattern.test(option.slice(eq + 1))) {
      throw invalid(
        `invalid value in tmpfs option "${option}" for ${where}: ${key === "mode" ? "give octal digits such as 1777" : key === "uid" || key === "gid" ? "give a number" : "give a number with an optional k, m, g or % suffix"}`,
      );
    }
    if (seen.has(key)) continue;
    seen.add(key);
    out.unshift(option);
  }
  return out;
}

/** `--mount type=tmpfs` options as the data string moby makes of them ("ro,mode=1777,size=64m"). */
export function tmpfsData(
  options: { SizeBytes?: number; Mode?: number } | undefined,
  readOnly: boolean,
): string {
  const raw: string[] = [];
  if (readOnly) raw.push("ro");
  if (options?.Mode) raw.push(`mode=${options.Mode.toString(8)}`);
  if (options?.SizeBytes) {
    let size = options.SizeBytes;
    let suffix = "";
    for (const [s, d] of [
      ["g", 2 ** 30],
      ["m", 2 ** 20],
      ["k", 2 ** 10],
    ] as const) {
      if (size % d === 0) {
        size /= d;
        suffix = s;
        break;
      }
    }
    raw.push(`size=${size}${suffix}`);
  }
  return raw.join(",");
}

/** The container's own mounts in OCI form: volumes and binds from its resolved Mounts, tmpfs from HostConfig. */
export function userMounts(record: Pick<ContainerRecord, "Mounts" | "HostConfig">): Mount[] {
  const out: Mount[] = [];
  for (const m of record.Mounts ?? []) {
    if (m.Type !== "bind" && m.Type !== "volume") continue;
    out.push({
      destination: m.Destination,
      type: "bind",
      source: m.Source,
      options: ["rbind", m.RW ? "rw" : "ro", m.Propagation || "rprivate"],
    });
  }
  const hc = record.HostConfig;
  for (const [destination, data] of Object.entries(hc.Tmpfs ?? {})) {
    out.push({
      destination: cleanMountPath(destination),
      type: "tmpfs",
      source: "tmpfs",
      options: tmpfsMountOptions(data ?? "", `--tmpfs ${destination}`),
    });
  }
  for (const m of hc.Mounts ?? []) {
    if (m.Type !== "tmpfs") continue;
    const destination = cleanMountPath(m.Target);
    const data = tmpfsData(m.TmpfsOptions, m.ReadOnly === true);
    out.push({
      destination,
      type: "tmpfs",
      source: "tmpfs",
      options: tmpfsMountOptions(data, `--mount ${destination}`),
    });
  }
  return out;
}

/** A container path as Docker keeps it: cleaned, no trailing slash. */
export function cleanMountPath(p: string): string {
  return normalize(p).replace(/(.)\/$/, "$1");
}

const depth = (p: string): number => p.split("/").filter(Boolean).length;

/**
 * The spec's mounts with the user's added: a default mount the user replaces (same destination,
 * or anything under /dev when the user mounts /dev) is dropped, as dockerd does. Then parents
 * come before children, so a volume on /etc does not hide the engine's /etc/hosts.
 */
export function withUserMounts(
  defaults: Mount[],
  record: Pick<ContainerRecord, "Mounts" | "HostConfig">,
): Mount[] {
  const user = userMounts(record);
  if (user.length === 0) return defaults;
  const targets = new Set(user.map((m) => m.destination));
  const kept = defaults.filter(
    (m) => !targets.has(m.destination) && !(targets.has("/dev") && m.destination.startsWith("/dev/")),
  );
  // Array.prototype.sort is stable: mounts of one depth keep their order, defaults first.
  return [...kept, ...user].sort((a, b) => depth(a.destination) - depth(b.destination));
}

/** runc must make the root shared (or slave) for a shared (or slave) bind to propagate. */
export function rootfsPropagationFor(mounts: Mount[]): string | undefined {
  const opts = new Set(mounts.filter((m) => m.type === "bind").flatMap((m) => m.options));
  if (opts.has("shared") || opts.has("rshared")) return "rshared";
  if (opts.has("slave") || opts.has("rslave")) return "rslave";
  return undefined;
}
