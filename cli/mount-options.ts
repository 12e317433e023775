// -v/--volume, --mount and --tmpfs of run/create, mapped onto the Engine API as the docker CLI
// maps them: `-v a:b[:c]` → HostConfig.Binds, `-v /path` → Config.Volumes, `--mount` →
// HostConfig.Mounts, `--tmpfs /path[:opts]` → HostConfig.Tmpfs. The daemon checks the rest.

import { resolve } from "node:path";
import { parseBytes } from "../shared/units.js";
import type { MountRequest } from "../shared/engine-api.js";
import { UsageError } from "./errors.js";

interface StorageFields {
  Binds: string[] | null;
  Volumes: Record<string, object> | null;
  Mounts: MountRequest[] | null;
  Tmpfs: Record<string, string> | null;
}

const isRelativeHostPath = (p: string): boolean =>
  p === "." || p === ".." || p.startsWith("./") || p.startsWith("../");

/** `-v` values: with a colon a bind or named volume ("./dir" made absolute), without one an anonymous volume. */
export function parseVolumeFlags(
  values: readonly string[],
  cwd: string = process.cwd(),
): { binds: string[]; volumes: Record<string, object> } {
  const binds: string[] = [];
  const volumes: Record<string, object> = {};
  for (const v of values) {
    if (v === "")
      throw new UsageError(`invalid argument "" for "-v, --volume" flag: the volume spec is empty`);
    const colon = v.indexOf(":");
    if (colon < 0) {
      volumes[v] = {};
      continue;
    }
    const host = v.slice(0, colon);
    binds.push(isRelativeHostPath(host) ? `${resolve(cwd, host)}${v.slice(colon)}` : v);
  }
  return { binds, volumes };
}

/** One CSV record, as Go's encoding/csv reads the docker CLI's --mount value. */
function csvFields(value: string, flag: string): string[] {
  const fields: string[] = [];
  let cur = "";
  let quoted = false;
  let atStart = true;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted) {
      if (c === '"' && value[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c === '"' && atStart) {
      quoted = true;
      atStart = false;
    } else if (c === ",") {
      fields.push(cur);
      cur = "";
      atStart = true;
    } else {
      cur += c;
      atStart = false;
    }
  }
  if (quoted) throw new UsageError(`invalid argument "${value}" for "${flag}" flag: unclosed quote`);
  fields.push(cur);
  return fields;
}

function parseBool(text: string, key: string, value: string): boolean {
  if (/^(1|t|true)$/i.test(text)) return true;
  if (/^(0|f|false)$/i.test(text)) return false;
  throw new UsageError(`invalid argument "${value}" for "--mount" flag: invalid value for ${key}: ${text}`);
}

function keyValue(text: string, key: string, value: string): [string, string] {
  const eq = text.indexOf("=");
  if (eq <= 0) {
    throw new UsageError(
      `invalid argument "${value}" for "--mount" flag: invalid value for ${key}: ${text} (use ${key}=key=value)`,
    );
  }
  return [text.slice(0, eq), text.slice(eq + 1)];
}

/** `--mount type=volume,source=data,target=/data,readonly` → a HostConfig.Mounts entry. */
export function parseMountFlag(value: string, cwd: string = process.cwd()): MountRequest {
  const bad = (why: string): UsageError =>
    new UsageError(`invalid argument "${value}" for "--mount" flag: ${why}`);
  const mount: MountRequest = { Type: "volume", Target: "" };
  const bind = (): NonNullable<MountRequest["BindOptions"]> => (mount.BindOptions ??= {});
  const vol = (): NonNullable<MountRequest["VolumeOptions"]> => (mount.VolumeOptions ??= {});
  const tmpfs = (): NonNullable<MountRequest["TmpfsOptions"]> => (mount.TmpfsOptions ??= {});
  for (const field of csvFields(value, "--mount")) {
    const eq = field.indexOf("=");
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase().trim();
    const val = eq < 0 ? undefined : field.slice(eq + 1);
    if (val === undefined) {
      if (key === "readonly" || key === "ro") mount.ReadOnly = true;
      else if (key === "volume-nocopy") vol().NoCopy = true;
      else if (key === "bind-nonrecursive") bind().NonRecursive = true;
      else if (key === "bind-create-mountpoint") bind().CreateMountpoint = true;
      else throw bad(`invalid field '${field}' must be a key=value pair`);
      continue;
    }
    switch (key) {
      case "type":
        mount.Type = val.toLowerCase();
        break;
      case "source":
      case "src":
        mount.Source = isRelativeHostPath(val) ? resolve(cwd, val) : val;
        break;
      case "target":
      case "dst":
      case "destination":
        mount.Target = val;
        break;
      case "readonly":
      case "ro":
        mount.ReadOnly = parseBool(val, key, value);
        break;
      case "consistency":
        mount.Consistency = val.toLowerCase();
        break;
      case "bind-propagation":
        bind().Propagation = val.toLowerCase();
        break;
      case "bind-nonrecursive":
        bind().NonRecursive = parseBool(val, key, value);
        break;
      case "bind-create-mountpoint":
        bind().CreateMountpoint = parseBool(val, key, value);
        break;
      case "volume-nocopy":
        vol().NoCopy = parseBool(val, key, value);
        break;
      case "volume-label": {
        const [k, v] = keyValue(val, key, value);
        (vol().Labels ??= {})[k] = v;
        break;
      }
      case "volume-driver":
        (vol().DriverConfig ??= {}).Name = val;
        break;
      case "volume-opt": {
        const [k, v] = keyValue(val, key, value);
        ((vol().DriverConfig ??= {}).Options ??= {})[k] = v;
        break;
      }
      case "tmpfs-size":
        try {
          tmpfs().SizeBytes = parseBytes(val, "tmpfs-size");
        } catch {
          throw bad(`invalid value for tmpfs-size: ${val} (use a size such as 64m)`);
        }
        break;
      case "tmpfs-mode":
        if (!/^[0-7]{1,4}$/.test(val))
          throw bad(`invalid value for tmpfs-mode: ${val} (use octal such as 1777)`);
        tmpfs().Mode = parseInt(val, 8);
        break;
      default:
        throw bad(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (!["bind", "volume", "tmpfs"].includes(mount.Type)) {
    throw bad(`unknown mount type '${mount.Type}': use bind, volume or tmpfs`);
  }
  if (mount.Target === "") throw bad("target is required");
  if (mount.BindOptions && mount.Type !== "bind") {
    throw bad(`cannot mix 'bind-*' options with mount type '${mount.Type}'`);
  }
  if (mount.VolumeOptions && mount.Type !== "volume") {
    throw bad(`cannot mix 'volume-*' options with mount type '${mount.Type}'`);
  }
  if (mount.TmpfsOptions && mount.Type !== "tmpfs") {
    throw bad(`cannot mix 'tmpfs-*' options with mount type '${mount.Type}'`);
  }
  return mount;
}

/** `--tmpfs /run:size=64m,mode=1777` → {"/run": "size=64m,mode=1777"}. */
export function parseTmpfsFlags(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const colon = v.indexOf(":");
    const path = colon < 0 ? v : v.slice(0, colon);
    if (path === "") throw new UsageError(`invalid argument "${v}" for "--tmpfs" flag: the path is empty`);
    out[path] = colon < 0 ? "" : v.slice(colon + 1);
  }
  return out;
}

/** The storage part of the create body from the three flags (null where a flag was not given). */
export function storageFields(
  flags: { volume?: string[]; mount?: string[]; tmpfs?: string[] },
  cwd: string = process.cwd(),
): StorageFields {
  const { binds, volumes } = parseVolumeFlags(flags.volume ?? [], cwd);
  const mounts = (flags.mount ?? []).map((m) => parseMountFlag(m, cwd));
  const tmpfs = parseTmpfsFlags(flags.tmpfs ?? []);
  return {
    Binds: binds.length > 0 ? binds : null,
    Volumes: Object.keys(volumes).length > 0 ? volumes : null,
    Mounts: mounts.length > 0 ? mounts : null,
    Tmpfs: Object.keys(tmpfs).length > 0 ? tmpfs : null,
  };
}
