// Named local volumes under <volumesRoot>/<name>/{volume.json,_data}. A volume folder appears
// whole or not at all: it is made under a temporary name and renamed in, and renamed out
// before it is deleted. Who uses a volume is asked of the container engine (a callback), so
// this module knows nothing of containers.

import type { EventLog } from "../events.js";
import { chmod, chown, lstat, mkdir, readdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import {
  conflict,
  errnoCode,
  internal,
  invalid,
  isShoalError,
  messageOf,
  notFound,
  type ShoalError,
} from "../../../shared/errors.js";
import {
  dirSize,
  ensureDir,
  narrowDirMode,
  pathExists,
  readJsonIfExists,
  syncDir,
  writeJsonAtomic,
} from "../../../shared/fsutil.js";
import { newId } from "../../../shared/ids.js";
import type { Logger } from "../../../shared/logging.js";
import { runCommand } from "../runtime/command.js";
import {
  ANONYMOUS_LABEL,
  type CreateVolumeRequest,
  type VolumePruneResult,
  type VolumeRecord,
  type VolumeStoreApi,
  type VolumeUser,
  type VolumeUsers,
} from "./types.js";

/**
 * The volumes root and each volume's folder: only root may pass. A container writes into _data
 * as root (setuid files, device nodes); those must not be usable by a local user
 * (CVE-2021-41091 class), whatever mode the container gave _data.
 */
const PRIVATE_DIR = 0o700;

/** Installs before 0700 made these folders 0701: narrow them at start. */
async function narrowMode(dir: string, log: Logger): Promise<void> {
  const was = await narrowDirMode(dir, PRIVATE_DIR);
  if (was !== undefined) log.warn({ dir, was: was.toString(8) }, "narrowed a volume folder's mode to 700");
}

/** Copy-up's private folder beside _data (see copyUp); one left by a crash goes at the next start. */
const STAGING_PREFIX = ".copy-up-";

async function removeStaging(volumeDir: string, log: Logger): Promise<void> {
  for (const entry of await readdir(volumeDir)) {
    if (!entry.startsWith(STAGING_PREFIX)) continue;
    await rm(join(volumeDir, entry), { recursive: true, force: true });
    log.warn({ dir: join(volumeDir, entry) }, "removed the remains of an unfinished copy-up");
  }
}

/** Docker's rule for local volume names. */
const VOLUME_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function validateVolumeName(name: string): string {
  if (!VOLUME_NAME_PATTERN.test(name)) {
    throw invalid(
      `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
    );
  }
  if (name.length > 200)
    throw invalid(`create ${name.slice(0, 20)}...: a volume name must be at most 200 characters long`);
  return name;
}

/** The local driver's options (type, device, o) mount other filesystems; not built yet. */
function validateDriverOptions(options: Record<string, string> | null | undefined): void {
  for (const key of Object.keys(options ?? {})) {
    if (!["type", "device", "o", "size"].includes(key)) {
      throw invalid(`invalid option key: "${key}": the local driver knows type, device and o`);
    }
    throw invalid(
      `volume option "${key}" is not supported yet: shoal's local volumes are plain folders; create the volume without --opt`,
    );
  }
}

function checkDriver(driver: string | undefined): void {
  if (driver && driver !== "local") {
    throw invalid(`volume driver "${driver}" is not supported: shoal has the "local" driver only`);
  }
}

/** Docker shows volume times in seconds. */
function nowSeconds(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

function boolFilter(key: string, values: string[]): boolean {
  const v = values[values.length - 1].toLowerCase();
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw invalid(`invalid filter '${key}=${values[values.length - 1]}': use true or false`);
}

function labelsMatch(labels: Record<string, string> | null, wanted: string[]): boolean {
  const have = labels ?? {};
  return wanted.every((w) => {
    const eq = w.indexOf("=");
    if (eq < 0) return w in have;
    return have[w.slice(0, eq)] === w.slice(eq + 1);
  });
}

function nameMatches(name: string, pattern: string): boolean {
  if (name === pattern) return true;
  try {
    return new RegExp(pattern).test(name);
  } catch {
    return name.includes(pattern);
  }
}

export class VolumeStore implements VolumeStoreApi {
  private readonly volumes = new Map<string, VolumeRecord>();
  /** Containers being created that use a volume: they count as users until released. */
  private readonly holds = new Map<string, Set<string>>();
  private readonly filling = new Map<string, Promise<void>>();
  /** Changes to the set of volumes (create, remove) run one at a time; they are quick. */
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly root: string,
    private readonly log: Logger,
    private readonly users: VolumeUsers,
    private readonly events?: EventLog,
  ) {}

  /** Load the volumes on disk and remove what an interrupted create or remove left. */
  static async open(root: string, log: Logger, users: VolumeUsers, events?: EventLog): Promise<VolumeStore> {
    await ensureDir(root, PRIVATE_DIR);
    await narrowMode(root, log);
    const store = new VolumeStore(root, log, users, events);
    for (const entry of await readdir(root)) {
      const dir = join(root, entry);
      if (entry.startsWith(".tmp-") || entry.startsWith(".removing-")) {
        await rm(dir, { recursive: true, force: true });
        log.warn({ dir }, "removed the remains of an unfinished volume create or remove");
        continue;
      }
      try {
        const rec = await readJsonIfExists<VolumeRecord>(join(dir, "volume.json"));
        if (!rec || rec.Name !== entry) {
          log.warn({ dir }, "a folder in the volumes root without a volume record; leaving it alone");
          continue;
        }
        await narrowMode(dir, log);
        await removeStaging(dir, log);
        store.volumes.set(rec.Name, rec);
      } catch (e) {
        log.error({ dir, err: messageOf(e) }, "cannot read a volume record; leaving it alone");
      }
    }
    return store;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }

  private dataPath(name: string): string {
    return join(this.root, name, "_data");
  }

  private usersOf(name: string): VolumeUser[] {
    const users = this.users(name);
    const seen = new Set(users.map((u) => u.id));
    for (const id of this.holds.get(name) ?? []) {
      if (!seen.has(id)) users.push({ id, name: "" });
    }
    return users;
  }

  private hold(name: string, holder: string | undefined): void {
    if (holder === undefined) return;
    const set = this.holds.get(name) ?? new Set<string>();
    set.add(holder);
    this.holds.set(name, set);
  }

  release(holder: string): void {
    for (const [name, set] of this.holds) {
      set.delete(holder);
      if (set.size === 0) this.holds.delete(name);
    }
  }

  async create(
    request: CreateVolumeRequest,
    holder?: string,
  ): Promise<{ volume: VolumeRecord; created: boolean }> {
    checkDriver(request.Driver);
    const anonymous = request.Anonymous === true || !request.Name;
    const name = request.Name ? validateVolumeName(request.Name) : newId();
    return this.serial(async () => {
      const existing = this.volumes.get(name);
      if (existing) {
        this.hold(name, holder);
        return { volume: structuredClone(existing), created: false };
      }
      validateDriverOptions(request.DriverOpts);
      const labels = request.Labels ? { ...request.Labels } : null;
      const rec: VolumeRecord = {
        Name: name,
        Driver: "local",
        Mountpoint: this.dataPath(name),
        CreatedAt: nowSeconds(),
        Labels: anonymous ? { ...labels, [ANONYMOUS_LABEL]: "" } : labels,
        Options: request.DriverOpts ? { ...request.DriverOpts } : null,
        Scope: "local",
        Anonymous: anonymous,
      };
      const target = join(this.root, name);
      const strayFolder = (): ShoalError =>
        conflict(
          `create ${name}: ${target} already exists but is no volume of this daemon: remove that folder or pick another name`,
        );
      // rename() would silently replace an empty folder.
      if (await pathExists(target)) throw strayFolder();
      const tmp = join(this.root, `.tmp-${randomBytes(8).toString("hex")}`);
      try {
        await mkdir(tmp, { mode: PRIVATE_DIR });
        await mkdir(join(tmp, "_data"));
        await chmod(join(tmp, "_data"), 0o755);
        await writeJsonAtomic(join(tmp, "volume.json"), rec);
        await rename(tmp, target);
      } catch (e) {
        await rm(tmp, { recursive: true, force: true });
        if (["ENOTEMPTY", "EEXIST", "ENOTDIR"].includes(errnoCode(e) ?? "")) throw strayFolder();
        throw e;
      }
      await syncDir(this.root);
      this.volumes.set(name, rec);
      this.hold(name, holder);
      this.log.info({ name, anonymous }, "volume created");
      this.events?.emit("volume", "create", name, { driver: rec.Driver });
      return { volume: structuredClone(rec), created: true };
    });
  }

  list(filters: Record<string, string[]> = {}): VolumeRecord[] {
    for (const key of Object.keys(filters)) {
      if (!["dangling", "name", "label", "driver"].includes(key)) {
        throw invalid(`invalid filter '${key}': volumes filter on dangling, name, label or driver`);
      }
    }
    const dangling = filters.dangling?.length ? boolFilter("dangling", filters.dangling) : undefined;
    return [...this.volumes.values()]
      .filter((v) => dangling === undefined || (this.usersOf(v.Name).length === 0) === dangling)
      .filter((v) => !filters.name?.length || filters.name.some((n) => nameMatches(v.Name, n)))
      .filter((v) => !filters.label?.length || labelsMatch(v.Labels, filters.label))
      .filter((v) => !filters.driver?.length || filters.driver.includes(v.Driver))
      .sort((a, b) => a.Name.localeCompare(b.Name))
      .map((v) => structuredClone(v));
  }

  inspect(name: string): VolumeRecord {
    const v = this.volumes.get(name);
    if (!v) throw notFound(`No such volume: ${name}`);
    return structuredClone(v);
  }

  async remove(name: string, options: { force?: boolean } = {}): Promise<void> {
    const gone = await this.serial(async () => {
      if (!this.volumes.has(name)) {
        if (options.force) return undefined;
        throw notFound(`No such volume: ${name}`);
      }
      const users = this.usersOf(name);
      if (users.length > 0) {
        const named = users.filter((u) => u.name).map((u) => u.name);
        throw conflict(
          `remove ${name}: volume is in use - [${users.map((u) => u.id).join(", ")}]` +
            (named.length > 0 ? ` (container ${named.join(", ")}): remove the container first` : ""),
        );
      }
      return this.detach(name);
    });
    if (gone) await this.erase(gone);
  }

  /** Take a volume out of the store and rename its folder out of the way; the caller erases it. */
  private async detach(name: string): Promise<string> {
    const gone = join(this.root, `.removing-${randomBytes(8).toString("hex")}`);
    await rename(join(this.root, name), gone);
    await syncDir(this.root);
    this.volumes.delete(name);
    this.log.info({ name }, "volume removed");
    this.events?.emit("volume", "destroy", name, { driver: "local" });
    return gone;
  }

  private async erase(dir: string): Promise<void> {
    try {
      await rm(dir, { recursive: true, force: true });
    } catch (e) {
      // Renamed out already: the volume is gone; the next start retries the folder.
      this.log.error({ dir, err: messageOf(e) }, "cannot delete a removed volume's folder");
    }
  }

  async prune(filters: Record<string, string[]> = {}): Promise<VolumePruneResult> {
    for (const key of Object.keys(filters)) {
      if (!["label", "label!", "all"].includes(key)) {
        throw invalid(`invalid filter '${key}': volume prune filters on label, label! or all`);
      }
    }
    const all = filters.all?.length ? boolFilter("all", filters.all) : false;
    const result: VolumePruneResult = { VolumesDeleted: [], SpaceReclaimed: 0 };
    const candidates = [...this.volumes.values()].filter(
      (v) =>
        (all || v.Anonymous) &&
        (!filters.label?.length || labelsMatch(v.Labels, filters.label)) &&
        !(filters["label!"] ?? []).some((l) => labelsMatch(v.Labels, [l])),
    );
    for (const v of candidates) {
      const gone = await this.serial(async () =>
        this.volumes.get(v.Name) === v && this.usersOf(v.Name).length === 0 ? this.detach(v.Name) : undefined,
      ).catch((e: unknown) => {
        this.log.warn({ name: v.Name, err: messageOf(e) }, "prune could not remove a volume");
        return undefined;
      });
      if (!gone) continue;
      result.SpaceReclaimed += await dirSize(join(gone, "_data"));
      result.VolumesDeleted.push(v.Name);
      await this.erase(gone);
    }
    return result;
  }

  async fillIfEmpty(name: string, source: string): Promise<void> {
    for (let busy = this.filling.get(name); busy; busy = this.filling.get(name)) {
      await busy.catch(() => undefined);
    }
    const data = this.inspect(name).Mountpoint;
    const job = this.copyUp(name, data, source);
    this.filling.set(name, job);
    try {
      await job;
    } finally {
      if (this.filling.get(name) === job) this.filling.delete(name);
    }
  }

  /**
   * A running container that uses the volume can change _data at any moment (swap a folder for
   * a symlink to /etc), so nothing here writes through a path inside _data: the image's content
   * is copied into a staging folder beside _data, which no container sees, and each top-level
   * entry is then renamed into _data. rename() never follows its last component, and _data
   * itself sits in a folder only root can reach. An entry a container made meanwhile wins;
   * nothing in _data is ever deleted here.
   */
  private async copyUp(name: string, data: string, source: string): Promise<void> {
    if ((await readdir(data)).length > 0) return;
    const st = await lstat(source);
    const staging = join(this.root, name, `${STAGING_PREFIX}${randomBytes(8).toString("hex")}`);
    try {
      await mkdir(staging, { mode: PRIVATE_DIR });
      // cp -a keeps owners, modes, times, links and xattrs, and follows no symlink in the tree.
      await runCommand("cp", ["-a", "--", `${source}/.`, `${staging}/`], { timeoutMs: 3_600_000 });
      for (const entry of await readdir(staging)) {
        await rename(join(staging, entry), join(data, entry)).catch((e: unknown) => {
          if (!["ENOTEMPTY", "EEXIST", "ENOTDIR", "EISDIR"].includes(errnoCode(e) ?? "")) throw e;
          this.log.warn({ name, entry }, "copy-up kept what a container wrote into the volume meanwhile");
        });
      }
      await chown(data, st.uid, st.gid);
      await chmod(data, st.mode & 0o7777);
    } catch (e) {
      if (isShoalError(e)) throw e;
      throw internal(
        `copying the image's content into volume ${basename(dirname(data))} failed: ${messageOf(e)}`,
        e,
      );
    } finally {
      await rm(staging, { recursive: true, force: true }).catch((e: unknown) =>
        this.log.error({ dir: staging, err: messageOf(e) }, "cannot delete a copy-up staging folder"),
      );
    }
  }
}
