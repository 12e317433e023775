import { join } from "node:path";

/** Where one daemon keeps its things; several daemons on one machine differ in all of these. */
export interface EngineConfig {
  /** Persistent state: images, layers, containers (dockerd's --data-root). Default /var/lib/shoal. */
  dataRoot: string;
  /** Runtime state that dies with the machine: runc state, conmon pid and exit files (--exec-root). Default /run/shoal. */
  execRoot: string;
  /** The OCI runtime binary (runc; crun or youki also fit). */
  runtimePath: string;
  conmonPath: string;
  /** Static tini, bind-mounted as /sbin/docker-init for --init. */
  initPath: string;
  /** Cgroup parent under which containers get their own cgroup (v1: in every hierarchy). */
  cgroupParent: string;
}

export function defaultEngineConfig(): EngineConfig {
  return {
    dataRoot: "/var/lib/shoal",
    execRoot: "/run/shoal",
    runtimePath: "/usr/sbin/runc",
    conmonPath: "/usr/bin/conmon",
    initPath: "/usr/bin/tini-static",
    cgroupParent: "shoal",
  };
}

/** The fixed layout below dataRoot and execRoot; every module takes its folders from here. */
export function enginePaths(c: EngineConfig) {
  return {
    imageRoot: join(c.dataRoot, "image"),
    containersRoot: join(c.dataRoot, "containers"),
    runtimeRoot: join(c.execRoot, "runtime"),
    exitsDir: join(c.execRoot, "exits"),
    conmonDir: join(c.execRoot, "conmon"),
  };
}
