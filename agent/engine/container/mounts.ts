// A container's volumes, bind mounts and tmpfs mounts: `-v` (HostConfig.Binds), `--mount`
// (HostConfig.Mounts), `--tmpfs` (HostConfig.Tmpfs) and the anonymous volumes of Config.Volumes
// (the image's VOLUME entries and the docker CLI's `-v /path`). planMounts checks and resolves
// them without touching anything; prepareMounts makes volumes and bind folders and copies the
// image's content into fresh volumes, pushing an undo for everything it made.

import { mkdir, rmdir, stat } from "node:fs/promises";
import { join, posix } from "node:path";
import { errnoCode, invalid, isShoalError, messageOf } from "../../../shared/errors.js";
import { resolveScoped } from "../snapshot/scoped-path.js";
import { cleanMountPath, tmpfsData, tmpfsMountOptions } from "../runtime/spec-mounts.js";
import { validateVolumeName } from "../volume/store.js";
import type { VolumeUser } from "../volume/types.js";
import type { EngineContext } from "./context.js";
import type { ContainerStore } from "./store.js";
import type { ContainerConfig, ContainerRecord, MountPoint } from "./types.js";
import type { HostConfig, MountRequest } from "../../../shared/engine-api.js";

/** One mount of the container, checked and resolved, before anything exists on disk. */
export interface PlannedMount {
  Type: "bind" | "volume" | "tmpfs";
  /** bind: host path; volume: name ("" = a new anonymous volume); tmpfs: "". */
  Source: string;
  Destination: string;
  RW: boolean;
  /** Inspect's Mode: the user's option text, "z" for a volume given without one (as dockerd). */
  Mode: string;
  /** bind: rprivate unless asked; "" for volumes and tmpfs. */
  Propagation: string;
  /** volume: fill it from the image when it is empty (not with nocopy). */
  CopyData: boolean;
  /** bind: make a missing source folder (`-v`, or --mount with bind-create-mountpoint). */
  CreateSource: boolean;
  /** volume options from --mount, used when the volume is made. */
  Driver?: string;
  Labels?: Record<string, string>;
  DriverOpts?: Record<string, string>;
}

const RW_MODES = new Set(["rw", "ro"]);
const LABEL_MODES = new Set(["z", "Z"]);
const PROPAGATION = new Set(["private", "rprivate", "shared", "rshared", "slave", "rslave"]);
const CONSISTENCY = new Set(["consistent", "cached", "delegated"]);
const MODE_HELP =
  "use rw or ro, nocopy (volumes), z or Z, and for bind mounts one of rprivate, private, rslave, slave, rshared, shared";

interface ParsedMode {
  rw: boolean;
  propagation: string;
  nocopy: boolean;
}

/** `-v`'s third field ("ro", "ro,nocopy", "rslave"): at most one option of each kind. */
function parseMode(mode: string, raw: string): ParsedMode {
  const out: ParsedMode = { rw: true, propagation: "", nocopy: false };
  const seen = new Set<string>();
  for (const part of mode.split(",")) {
    const kind = RW_MODES.has(part)
      ? "rw"
      : LABEL_MODES.has(part)
        ? "label"
        : PROPAGATION.has(part)
          ? "propagation"
          : CONSISTENCY.has(part)
            ? "consistency"
            : part === "nocopy"
              ? "copy"
              : undefined;
    if (kind === undefined || seen.has(kind)) {
      throw invalid(`invalid mode: ${mode} in volume specification '${raw}': ${MODE_HELP}`);
    }
    seen.add(kind);
    if (kind === "rw") out.rw = part === "rw";
    if (kind === "propagation") out.propagation = part;
    if (kind === "copy") out.nocopy = true;
  }
  return out;
}

function isMode(text: string): boolean {
  try {
    parseMode(text, text);
    return true;
  } catch {
    return false;
  }
}

/** An absolute container path, cleaned; never "/" itself. */
function destination(path: string, type: string): string {
  if (!path.startsWith("/")) {
    throw invalid(
      `invalid mount config for type "${type}": invalid mount path: '${path}' mount path must be absolute`,
    );
  }
  const clean = cleanMountPath(path);
  if (clean === "/") {
    throw invalid(`invalid mount config for type "${type}": invalid specification: destination can't be '/'`);
  }
  return clean;
}

/** One `-v` entry: "name:/path[:mode]", "/host:/path[:mode]" or "/path". */
export function parseBind(raw: string): PlannedMount {
  const parts = raw.split(":");
  let src = "";
  let dst: string;
  let mode = "";
  if (parts.length === 1) {
    dst = parts[0];
  } else if (parts.length === 2 && !isMode(parts[1])) {
    [src, dst] = parts;
  } else if (parts.length === 3) {
    [src, dst, mode] = parts;
  } else {
    throw invalid(
      `invalid volume specification: '${raw}': use name:/container/path[:ro], /host/path:/container/path[:ro] or /container/path`,
    );
  }
  if (dst === "" || (parts.length > 1 && src === "")) {
    throw invalid(
      `invalid volume specification: '${raw}': use name:/container/path[:ro], /host/path:/container/path[:ro] or /container/path`,
    );
  }
  const type = src.startsWith("/") ? "bind" : "volume";
  const m = mode === "" ? { rw: true, propagation: "", nocopy: false } : parseMode(mode, raw);
  const target = destination(dst, type);
  if (type === "bind") {
    if (m.nocopy)
      throw invalid(`invalid mode: ${mode} in '${raw}': nocopy applies to volumes, not bind mounts`);
    return {
      Type: "bind",
      Source: cleanMountPath(src),
      Destination: target,
      RW: m.rw,
      Mode: mode,
      Propagation: m.propagation || "rprivate",
      CopyData: false,
      CreateSource: true,
    };
  }
  if (m.propagation) {
    throw invalid(
      `invalid mode: ${mode} in '${raw}': propagation (${m.propagation}) applies to bind mounts, not volumes`,
    );
  }
  if (src !== "") validateVolumeName(src);
  return {
    Type: "volume",
    Source: src,
    Destination: target,
    RW: m.rw,
    Mode: src === "" ? mode : mode || "z",
    Propagation: "",
    CopyData: !m.nocopy,
    CreateSource: false,
  };
}

/** One `--mount` (HostConfig.Mounts entry), checked as dockerd checks it. */
export function parseMountRequest(m: MountRequest): PlannedMount {
  const type = String(m.Type ?? "");
  const what = `invalid mount config for type "${type}"`;
  if (!["bind", "volume", "tmpfs"].includes(type)) {
    throw invalid(`${what}: mount type unknown: use bind, volume or tmpfs`);
  }
  if (!m.Target) throw invalid(`${what}: field Target must not be empty`);
  const target = destination(m.Target, type);
  const rw = m.ReadOnly !== true;
  const forbid = (field: "BindOptions" | "VolumeOptions" | "TmpfsOptions"): void => {
    if (m[field]) throw invalid(`${what}: field ${field} must not be specified`);
  };
  if (type === "bind") {
    forbid("VolumeOptions");
    forbid("TmpfsOptions");
    if (!m.Source) throw invalid(`${what}: field Source must not be empty`);
    if (!m.Source.startsWith("/")) {
      throw invalid(`${what}: invalid mount path: '${m.Source}' mount path must be absolute`);
    }
    const propagation = m.BindOptions?.Propagation || "rprivate";
    if (!PROPAGATION.has(propagation)) {
      throw invalid(
        `${what}: invalid propagation mode: ${propagation}: use rprivate, private, rslave, slave, rshared or shared`,
      );
    }
    if (m.BindOptions?.NonRecursive) {
      throw invalid(`${what}: bind-nonrecursive is not supported yet: leave it out (binds are recursive)`);
    }
    return {
      Type: "bind",
      Source: cleanMountPath(m.Source),
      Destination: target,
      RW: rw,
      Mode: "",
      Propagation: propagation,
      CopyData: false,
      CreateSource: m.BindOptions?.CreateMountpoint === true,
    };
  }
  if (type === "volume") {
    forbid("BindOptions");
    forbid("TmpfsOptions");
    const source = m.Source ?? "";
    if (source !== "") validateVolumeName(source);
    const v = m.VolumeOptions;
    return {
      Type: "volume",
      Source: source,
      Destination: target,
      RW: rw,
      Mode: "z",
      Propagation: "",
      CopyData: v?.NoCopy !== true,
      CreateSource: false,
      Driver: v?.DriverConfig?.Name || undefined,
      Labels: v?.Labels && Object.keys(v.Labels).length > 0 ? { ...v.Labels } : undefined,
      DriverOpts:
        v?.DriverConfig?.Options && Object.keys(v.DriverConfig.Options).length > 0
          ? { ...v.DriverConfig.Options }
          : undefined,
    };
  }
  forbid("BindOptions");
  forbid("VolumeOptions");
  if (m.Source) throw invalid(`${what}: field Source must not be specified`);
  const t = m.TmpfsOptions;
  if (t?.SizeBytes !== undefined && (!Number.isInteger(t.SizeBytes) || t.SizeBytes < 0)) {
    throw invalid(`${what}: invalid tmpfs-size ${t.SizeBytes}: give a size in bytes, such as 64m`);
  }
  if (t?.Mode !== undefined && (!Number.isInteger(t.Mode) || t.Mode < 0 || t.Mode > 0o7777)) {
    throw invalid(`${what}: invalid tmpfs-mode ${t.Mode}: give octal permissions such as 1777`);
  }
  tmpfsMountOptions(tmpfsData(t, !rw), `--mount ${target}`);
  return {
    Type: "tmpfs",
    Source: "",
    Destination: target,
    RW: rw,
    Mode: "",
    Propagation: "",
    CopyData: false,
    CreateSource: false,
  };
}

/**
 * Every mount of a new container in inspect's order (by destination): `-v`, `--mount`, then an
 * anonymous volume for each Config.Volumes path nothing else covers. `--tmpfs` mounts are
 * checked here but are not part of the result (Docker lists them under HostConfig.Tmpfs only).
 * Throws a 400 naming what to fix: relative or duplicate paths, unknown options, bad names.
 */
export function planMounts(config: ContainerConfig, host: HostConfig): PlannedMount[] {
  checkShapes(config, host);
  const planned: PlannedMount[] = [];
  const taken = new Set<string>();
  const claim = (dst: string): void => {
    if (taken.has(dst)) {
      throw invalid(`Duplicate mount point: ${dst}: give each container path one -v, --mount or --tmpfs`);
    }
    taken.add(dst);
  };
  for (const raw of host.Binds ?? []) {
    const m = parseBind(raw);
    claim(m.Destination);
    planned.push(m);
  }
  for (const req of host.Mounts ?? []) {
    const m = parseMountRequest(req);
    claim(m.Destination);
    planned.push(m);
  }
  for (const [path, data] of Object.entries(host.Tmpfs ?? {})) {
    const dst = destination(path, "tmpfs");
    tmpfsMountOptions(data ?? "", `--tmpfs ${path}`);
    claim(dst);
  }
  for (const path of Object.keys(config.Volumes ?? {}).sort()) {
    const dst = destination(path, "volume");
    if (taken.has(dst)) continue;
    taken.add(dst);
    planned.push({
      Type: "volume",
      Source: "",
      Destination: dst,
      RW: true,
      Mode: "",
      Propagation: "",
      CopyData: true,
      CreateSource: false,
    });
  }
  return planned.sort((a, b) => (a.Destination < b.Destination ? -1 : a.Destination > b.Destination ? 1 : 0));
}

/** The request's JSON has the shapes the Engine API defines (a client may send anything). */
function checkShapes(config: ContainerConfig, host: HostConfig): void {
  const isObject = (v: unknown): boolean => typeof v === "object" && v !== null && !Array.isArray(v);
  if (host.Binds != null && !(Array.isArray(host.Binds) && host.Binds.every((b) => typeof b === "string"))) {
    throw invalid('invalid HostConfig.Binds: expected a list of strings such as "data:/data"');
  }
  if (host.Mounts != null && !(Array.isArray(host.Mounts) && host.Mounts.every(isObject))) {
    throw invalid("invalid HostConfig.Mounts: expected a list of mount objects (Type, Source, Target)");
  }
  if (
    host.Tmpfs != null &&
    !(isObject(host.Tmpfs) && Object.values(host.Tmpfs).every((v) => typeof v === "string"))
  ) {
    throw invalid(
      'invalid HostConfig.Tmpfs: expected an object of path → options, such as {"/run": "size=64m"}',
    );
  }
  if (config.Volumes != null && !isObject(config.Volumes)) {
    throw invalid('invalid Volumes: expected an object of container paths, such as {"/data": {}}');
  }
}

/**
 * Follow `path` inside `root` as the container would see it: symlinks resolve against `root`,
 * never outside it. Undefined when a component is missing.
 */
async function resolveInRoot(root: string, path: string): Promise<string | undefined> {
  try {
    const r = await resolveScoped(root, path, "clamp");
    return r.stats ? join(root, r.rel) : undefined;
  } catch {
    return undefined;
  }
}

/** Remove the folders `mkdir -p` made, deepest first, as long as they are still empty. */
async function removeMadeDirs(first: string, leaf: string): Promise<void> {
  for (let dir = leaf; dir.length >= first.length; dir = posix.dirname(dir)) {
    try {
      await rmdir(dir);
    } catch {
      return;
    }
    if (dir === first) return;
  }
}

/**
 * Make what the planned mounts need: bind folders `-v` asks for, volumes (created on first use,
 * held for container `id` until the volume store's release(id)), and Docker's copy-up of the
 * image's content (`rootfs` is the container's mounted root) into empty volumes. Everything made
 * gets an undo on `undo`. Returns inspect's Mounts.
 */
export async function prepareMounts(
  ctx: EngineContext,
  id: string,
  rootfs: string,
  planned: PlannedMount[],
  undo: Array<() => Promise<void>>,
): Promise<MountPoint[]> {
  const out: MountPoint[] = [];
  for (const m of planned) {
    if (m.Type === "bind") {
      await prepareBindSource(m, undo);
      out.push({
        Type: "bind",
        Source: m.Source,
        Destination: m.Destination,
        Mode: m.Mode,
        RW: m.RW,
        Propagation: m.Propagation,
      });
      continue;
    }
    if (m.Type === "tmpfs") {
      out.push({
        Type: "tmpfs",
        Source: "",
        Destination: m.Destination,
        Mode: "",
        RW: m.RW,
        Propagation: "",
      });
      continue;
    }
    const { volume, created } = await ctx.volumes.create(
      {
        Name: m.Source || undefined,
        Driver: m.Driver,
        DriverOpts: m.DriverOpts,
        Labels: m.Labels,
        Anonymous: m.Source === "",
      },
      id,
    );
    if (created) {
      undo.push(async () => {
        ctx.volumes.release(id);
        await ctx.volumes.remove(volume.Name).catch((e: unknown) => {
          // Another container took the new volume up meanwhile: it stays.
          if (!(isShoalError(e) && e.kind === "conflict")) throw e;
        });
      });
    }
    if (m.CopyData) {
      const source = await resolveInRoot(rootfs, m.Destination);
      if (source !== undefined && (await stat(source)).isDirectory()) {
        await ctx.volumes.fillIfEmpty(volume.Name, source);
      }
    }
    out.push({
      Type: "volume",
      Name: volume.Name,
      Source: volume.Mountpoint,
      Destination: m.Destination,
      Driver: volume.Driver,
      Mode: m.Mode,
      RW: m.RW,
      Propagation: "",
    });
  }
  return out;
}

async function prepareBindSource(m: PlannedMount, undo: Array<() => Promise<void>>): Promise<void> {
  try {
    await stat(m.Source);
    return;
  } catch (e) {
    if (errnoCode(e) !== "ENOENT") {
      throw invalid(
        `invalid mount config for type "bind": cannot use bind source ${m.Source}: ${messageOf(e)}`,
      );
    }
  }
  if (!m.CreateSource) {
    throw invalid(`invalid mount config for type "bind": bind source path does not exist: ${m.Source}`);
  }
  // Docker's `-v /host/path:...` makes a missing host folder.
  const first = await mkdir(m.Source, { recursive: true, mode: 0o755 });
  if (first !== undefined) undo.push(() => removeMadeDirs(first, m.Source));
}

/** The containers (any state) whose mounts name a volume: what the volume store asks before removing. */
export function volumeUsers(store: ContainerStore, volumeName: string): VolumeUser[] {
  return store
    .all()
    .filter((r) => r.Mounts?.some((m) => m.Type === "volume" && m.Name === volumeName))
    .map((r) => ({ id: r.Id, name: r.Name }));
}

/** `rm -v` and `--rm`: the container's anonymous volumes go with it; named ones stay. */
export async function removeAnonymousVolumes(ctx: EngineContext, rec: ContainerRecord): Promise<void> {
  for (const m of rec.Mounts ?? []) {
    if (m.Type !== "volume" || !m.Name) continue;
    try {
      if (!ctx.volumes.inspect(m.Name).Anonymous) continue;
      await ctx.volumes.remove(m.Name);
    } catch (e) {
      ctx.log.warn(
        { id: rec.Id, volume: m.Name, err: messageOf(e) },
        "could not remove a container's volume",
      );
    }
  }
}
