import { join } from "node:path";
import type { Logger } from "../../../shared/logging.js";
import type { EngineConfig } from "../config.js";
import { enginePaths } from "../config.js";
import type { ImageStoreApi } from "../image/api.js";
import type { CgroupVersion } from "../runtime/cgroups.js";
import { cgroupsPathFor } from "../runtime/cgroups.js";
import type { Runtime } from "../runtime/runc.js";
import type { CapabilityEnv } from "../runtime/capabilities.js";
import type { HostRlimits } from "../runtime/spec-resources.js";
import type { ContainerStore } from "./store.js";
import type { VolumeStoreApi } from "../volume/types.js";
import type { HostNetworks } from "../network/host-networks.js";
import type { EventLog } from "../events.js";

/** What the container modules share: settings, folders, collaborators and host facts found at open. */
export interface EngineContext {
  config: EngineConfig;
  paths: ReturnType<typeof enginePaths>;
  images: ImageStoreApi;
  store: ContainerStore;
  runtime: Runtime;
  log: Logger;
  cgroupVersion: CgroupVersion;
  swapAccounting: boolean;
  /** The capabilities this daemon holds: --privileged grants these, not more (runc cannot). */
  capabilities: CapabilityEnv;
  /** The daemon's own hard limits: --ulimit above them is refused up front, not by runc at start. */
  hostRlimits: HostRlimits;
  /** Named and anonymous volumes (-v, --mount, image VOLUMEs). */
  volumes: VolumeStoreApi;
  network: HostNetworks;
  /** What `docker events` shows: every part of the engine emits here. */
  events: EventLog;
}

/** Where one container's things are. Persistent ones under dataRoot, per-run ones under execRoot. */
export function containerPaths(ctx: EngineContext, id: string) {
  const dir = join(ctx.paths.containersRoot, id);
  return {
    dir,
    record: join(dir, "container.json"),
    bundle: dir,
    spec: join(dir, "config.json"),
    rootfs: join(dir, "rootfs"),
    upper: join(dir, "diff"),
    work: join(dir, "work"),
    /** A lower layer for images without any (overlayfs needs one). */
    emptyLower: join(dir, "empty"),
    log: join(dir, "container.log"),
    /** Bind-mounted as /etc/hosts, /etc/resolv.conf and /etc/hostname; rewritten in place. */
    etc: { hosts: join(dir, "hosts"), resolvConf: join(dir, "resolv.conf"), hostname: join(dir, "hostname") },
    /** conmon's pid files and its `exit`/`oom` markers for the current run. */
    run: join(ctx.paths.conmonDir, id),
    /** Links to attach sockets; short names keep socket paths under 108 bytes. */
    socketDir: join(ctx.paths.conmonDir, "attach"),
    attachName: id.slice(0, 16),
    exitFile: join(ctx.paths.exitsDir, id),
    cgroupsPath: cgroupsPathFor(ctx.config.cgroupParent, id, ctx.cgroupVersion),
  };
}

/** The attach socket conmon serves for a running container (SOCK_SEQPACKET; first byte of each packet names the stream). */
export function attachSocketPath(ctx: EngineContext, id: string): string {
  const p = containerPaths(ctx, id);
  return join(p.socketDir, p.attachName, "attach");
}
