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
  /** Linux name of the default bridge network's bridge (dockerd's --bridge). */
  bridgeName: string;
  /** The default bridge's gateway address with prefix, e.g. 172.17.0.1/16 (dockerd's --bip); picked when unset. */
  bridgeIp?: string;
  /** Turn on IPv4 forwarding at start (dockerd's --ip-forward); egress and published ports need it. */
  ipForward: boolean;
  /** Where the host's resolvers are listed; the daemon's DNS forwards other names to them. */
  resolvConfPath: string;
  /** shoal's own nftables table (family ip). */
  firewallTable: string;
}

export function defaultEngineConfig(): EngineConfig {
  return {
    dataRoot: "/var/lib/shoal",
    execRoot: "/run/shoal",
    runtimePath: "/usr/sbin/runc",
    conmonPath: "/usr/bin/conmon",
    initPath: "/usr/bin/tini-static",
    cgroupParent: "shoal",
    bridgeName: "shoal0",
    ipForward: true,
    resolvConfPath: "/etc/resolv.conf",
    firewallTable: "shoal",
  };
}

/** The fixed layout below dataRoot and execRoot; every module takes its folders from here. */
export function enginePaths(c: EngineConfig) {
  return {
    imageRoot: join(c.dataRoot, "image"),
    containersRoot: join(c.dataRoot, "containers"),
    volumesRoot: join(c.dataRoot, "volumes"),
    runtimeRoot: join(c.execRoot, "runtime"),
    exitsDir: join(c.execRoot, "exits"),
    conmonDir: join(c.execRoot, "conmon"),
    networkRoot: join(c.dataRoot, "network"),
  };
}
