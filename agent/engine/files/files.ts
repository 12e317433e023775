// The container filesystem side of the Engine API: cp's archive endpoints, export, diff,
// commit and sizes. The container engine hands this its context and its per-container lock;
// the modules beside this file do the work.
import { invalid } from "../../../shared/errors.js";
import { dirSize } from "../../../shared/fsutil.js";
import { containerPaths, type EngineContext } from "../container/context.js";
import type { ContainerRecord } from "../container/types.js";
import type { ImageRecord } from "../image/types.js";
import { resolveUser } from "../runtime/user.js";
import { archiveOf, exportRootfs } from "./archive-out.js";
import { extractArchive } from "./archive-in.js";
import { containerChanges, type Change } from "./changes.js";
import { commitContainer, type CommitOptions } from "./commit.js";
import { ContainerFs, followsLast, requestedBase, type FsMount, type Located } from "./container-fs.js";
import { pathStat, type ContainerPathStat } from "./path-stat.js";

export type LockRunner = <T>(id: string, fn: () => Promise<T>) => Promise<T>;

export interface ContainerSizes {
  SizeRw: number;
  SizeRootFs: number;
}

function cleanDest(p: string): string {
  return `/${p
    .split("/")
    .filter((x) => x !== "" && x !== ".")
    .join("/")}`;
}

/** The container's tree as cp sees it: its root filesystem, its volumes and binds, the engine's /etc files. */
export function containerFs(ctx: EngineContext, rec: ContainerRecord, ref: string): ContainerFs {
  const p = containerPaths(ctx, rec.Id);
  const readOnlyRoot = rec.HostConfig.ReadonlyRootfs === true;
  const mounts: FsMount[] = (rec.Mounts ?? []).map((m) => ({
    dest: cleanDest(m.Destination),
    source: m.Type === "tmpfs" ? "" : m.Source,
    kind: m.Type,
    readOnly: !m.RW,
  }));
  // --tmpfs mounts are kept under HostConfig.Tmpfs only (as Docker lists them), --mount ones in Mounts.
  for (const path of Object.keys(rec.HostConfig.Tmpfs ?? {})) {
    const dest = cleanDest(path.split(":")[0]);
    if (!mounts.some((m) => m.dest === dest))
      mounts.push({ dest, source: "", kind: "tmpfs", readOnly: false });
  }
  const engineFiles: Array<[string, string]> = [
    ["/etc/hosts", p.etc.hosts],
    ["/etc/hostname", p.etc.hostname],
    ["/etc/resolv.conf", p.etc.resolvConf],
  ];
  for (const [dest, source] of engineFiles)
    if (!mounts.some((m) => m.dest === dest))
      mounts.push({ dest, source, kind: "file", readOnly: readOnlyRoot });
  const running = rec.State.Status === "running" || rec.State.Status === "paused";
  return new ContainerFs(p.rootfs, mounts, running, ref);
}

function checkPath(path: string): string {
  if (path === "")
    throw invalid("no path given: name a file or folder in the container, e.g. path=/etc/hostname");
  if (path.includes("\0")) throw invalid("the path has a NUL byte");
  return path;
}

export class ContainerFiles {
  constructor(
    private readonly ctx: EngineContext,
    private readonly lock: LockRunner,
  ) {}

  private fsOf(ref: string): { rec: ContainerRecord; fs: ContainerFs } {
    const rec = this.ctx.store.resolve(ref);
    return { rec, fs: containerFs(this.ctx, rec, ref) };
  }

  /** HEAD /containers/{id}/archive: what is at a path, without following its last symlink. */
  async stat(ref: string, path: string): Promise<ContainerPathStat> {
    const { fs } = this.fsOf(ref);
    const loc = await fs.locate(checkPath(path), followsLast(path));
    try {
      return await this.statOf(fs, loc, path);
    } finally {
      await loc.release();
    }
  }

  private async statOf(fs: ContainerFs, loc: Located, path: string): Promise<ContainerPathStat> {
    let linkTarget = "";
    if (loc.stats.isSymbolicLink()) {
      // Docker's linkTarget: the link fully resolved inside the container, as an absolute path.
      const target = await fs.locate(path, true).catch(() => undefined);
      if (target) {
        linkTarget = target.path;
        await target.release();
      }
    }
    return pathStat(requestedBase(path), loc.stats, linkTarget);
  }

  /** GET /containers/{id}/archive: the stat header and the tar. */
  async archive(ref: string, path: string): Promise<{ stat: ContainerPathStat; tar: AsyncIterable<Buffer> }> {
    const { rec, fs } = this.fsOf(ref);
    const loc = await fs.locate(checkPath(path), followsLast(path));
    try {
      const stat = await this.statOf(fs, loc, path);
      const tar = archiveOf(fs, loc, requestedBase(path) === "/" ? "." : requestedBase(path));
      this.ctx.events.emit("container", "archive-path", rec.Id, { name: rec.Name, path });
      return { stat, tar };
    } catch (e) {
      await loc.release();
      throw e;
    }
  }

  /** PUT /containers/{id}/archive: unpack a tar into a folder of the container, all or nothing. */
  async extract(
    ref: string,
    path: string,
    tar: AsyncIterable<Buffer>,
    options: { noOverwriteDirNonDir: boolean; copyUIDGID: boolean },
  ): Promise<void> {
    const first = this.ctx.store.resolve(ref);
    await this.lock(first.Id, async () => {
      const { rec, fs } = this.fsOf(ref);
      const loc = await fs.locate(checkPath(path), followsLast(path));
      try {
        if (!loc.stats.isDirectory())
          throw invalid(
            `extraction point is not a directory: ${loc.path} in container ${ref} is not a folder`,
          );
        const mount = fs.mountOf(loc.path);
        if (mount?.readOnly)
          throw invalid(`mounted volume is marked read-only: ${mount.dest} in container ${ref}`);
        if (!mount && rec.HostConfig.ReadonlyRootfs)
          throw invalid(`container rootfs is marked read-only: ${ref}`);
        const owner = options.copyUIDGID
          ? await resolveUser(containerPaths(this.ctx, rec.Id).rootfs, rec.Config.User ?? "")
          : undefined;
        await extractArchive(fs, loc, tar, {
          noOverwriteDirNonDir: options.noOverwriteDirNonDir,
          ...(owner ? { owner: { uid: owner.uid, gid: owner.gid } } : {}),
        });
      } finally {
        await loc.release();
      }
      this.ctx.events.emit("container", "extract-to-dir", rec.Id, { name: rec.Name, path });
    });
  }

  /** GET /containers/{id}/export. */
  export(ref: string): AsyncIterable<Buffer> {
    const { rec, fs } = this.fsOf(ref);
    this.ctx.events.emit("container", "export", rec.Id, { name: rec.Name });
    return exportRootfs(fs);
  }

  private lowersOf(rec: ContainerRecord): string[] {
    try {
      return this.ctx.images.lowerDirs(this.ctx.images.resolve(rec.ImageId));
    } catch {
      return []; // the image was force-removed: everything counts as added
    }
  }

  /** GET /containers/{id}/changes. */
  async changes(ref: string): Promise<Change[]> {
    const rec = this.ctx.store.resolve(ref);
    return containerChanges(containerPaths(this.ctx, rec.Id).upper, this.lowersOf(rec));
  }

  /** POST /commit. */
  async commit(ref: string, options: CommitOptions): Promise<ImageRecord> {
    const rec = this.ctx.store.resolve(ref);
    return this.lock(rec.Id, () => commitContainer(this.ctx, rec, options));
  }

  /** ps -s / inspect -s: the container's own bytes, and with its image's. */
  async sizes(ref: string): Promise<ContainerSizes> {
    const rec = this.ctx.store.resolve(ref);
    const rw = await dirSize(containerPaths(this.ctx, rec.Id).upper);
    let image = 0;
    try {
      image = this.ctx.images.resolve(rec.ImageId).size;
    } catch {
      // image gone (force-removed): only the container's own bytes
    }
    return { SizeRw: rw, SizeRootFs: rw + image };
  }
}

/** Sizes of unpacked layer folders, for system df (each folder once). */
export async function layerDirSizes(dirs: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const d of dirs) {
    if (out.has(d)) continue;
    out.set(d, await dirSize(d));
  }
  return out;
}
