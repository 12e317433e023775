// A container's file tree as the container sees it, reached from the host without entering the
// container: the root filesystem (the overlay mount, kept mounted in every state), with the
// container's volumes and binds resolved to their host folders and the engine's /etc files to
// the container's own copies, as dockerd does for `docker cp`. Paths resolve the way a chroot
// would (moby's FollowSymlinkInScope): ".." stops at "/", a symlink's absolute target starts
// again at the container's root, so no path or link ever leads to the host's files. The walk
// holds each folder open and looks up one component at a time with O_NOFOLLOW (dir-fd.ts), so a
// running container that swaps a folder for a symlink mid-walk makes the walk fail, not escape.
import type { Stats } from "node:fs";
import { lstat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { errnoCode, invalid, notFound } from "../../../shared/errors.js";
import { DirFd } from "./dir-fd.js";

export interface FsMount {
  /** Absolute, cleaned container path. */
  dest: string;
  /** Host path (a folder for binds and volumes, a file for the engine's /etc files, "" for tmpfs). */
  source: string;
  kind: "bind" | "volume" | "tmpfs" | "file";
  readOnly: boolean;
}

export interface Located {
  /** Absolute container path, symlinks followed (the last component only when asked). */
  path: string;
  /** The folder holding the entry, open. */
  parent: DirFd;
  /** The entry's name in parent. */
  name: string;
  stats: Stats;
  /** The mount the entry is on (or is the root of); undefined for the root filesystem. */
  mount?: FsMount;
  /** The entry is the root of that mount (or of the root filesystem). */
  mountRoot: boolean;
  /** Close what the lookup holds open. */
  release(): Promise<void>;
}

const MAX_LINKS = 40;

/** Components of a container path after a lexical clean: "." and "" dropped, ".." stops at the root. */
export function cleanComponents(parts: string[]): string[] {
  const out: string[] = [];
  for (const p of parts) {
    if (p === "" || p === ".") continue;
    if (p === "..") out.pop();
    else out.push(p);
  }
  return out;
}

/** Go's filepath.Base of an absolute container path as the client wrote it ("/a/b/" → "b", "/a/." → "."). */
export function requestedBase(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  if (trimmed === "") return "/";
  const base = trimmed.slice(trimmed.lastIndexOf("/") + 1);
  return base;
}

/** Whether a request asks for the folder a trailing "/" or "/." names, so its last symlink is followed (Docker's ResolvePath). */
export function followsLast(path: string): boolean {
  return path.endsWith("/") || path.endsWith("/.") || path === ".";
}

export class ContainerFs {
  constructor(
    readonly rootfs: string,
    readonly mounts: FsMount[],
    readonly running: boolean,
    /** The container as the user named it, for messages. */
    readonly ref: string,
  ) {}

  mountAt(path: string): FsMount | undefined {
    return this.mounts.find((m) => m.dest === path);
  }

  /** The mount a container path lies on (the deepest one), undefined for the root filesystem. */
  mountOf(path: string): FsMount | undefined {
    let best: FsMount | undefined;
    for (const m of this.mounts) {
      if ((path === m.dest || path.startsWith(`${m.dest}/`)) && (!best || m.dest.length > best.dest.length))
        best = m;
    }
    return best;
  }

  /** A running container's tmpfs mounts live only in its mount namespace: refused by name rather than half-reached. */
  refuseTmpfs(m: FsMount, path: string): never {
    throw invalid(
      `${path} is on the tmpfs mount ${m.dest} of the running container ${this.ref}, which shoal cannot reach safely from the host: stop the container first, or copy to or from a path outside ${m.dest}`,
    );
  }

  notFound(path: string): Error {
    return notFound(`Could not find the file ${path} in container ${this.ref}`);
  }

  /**
   * Find a path (absolute or relative; both start at "/"). Missing entries are a 404 naming the
   * path as the client wrote it; a non-folder used as a folder is a 400.
   */
  async locate(requested: string, followLast: boolean): Promise<Located> {
    let pending = cleanComponents(requested.split("/"));
    let links = 0;
    for (;;) {
      const opened: DirFd[] = [];
      const keep = (parent: DirFd): (() => Promise<void>) => {
        const others = opened.filter((d) => d !== parent);
        void Promise.all(others.map((d) => d.close()));
        return () => parent.close();
      };
      try {
        if (pending.length === 0) {
          const parent = await DirFd.openHost(dirname(this.rootfs));
          opened.push(parent);
          const stats = (await parent.lstat(basename(this.rootfs))) as Stats;
          return {
            path: "/",
            parent,
            name: basename(this.rootfs),
            stats,
            mountRoot: true,
            release: keep(parent),
          };
        }
        let dir = await DirFd.openHost(this.rootfs);
        opened.push(dir);
        let mount: FsMount | undefined;
        const done: string[] = [];
        let restarted = false;
        for (let i = 0; i < pending.length; i++) {
          const part = pending[i];
          const last = i === pending.length - 1;
          const path = `/${[...done, part].join("/")}`;
          const m = this.mountAt(path);
          if (m && m.kind === "tmpfs" && this.running) this.refuseTmpfs(m, requested);
          if (m && m.kind !== "tmpfs") {
            const hostStats = await lstat(m.source).catch((e: unknown) => {
              if (errnoCode(e) === "ENOENT") return undefined;
              throw e;
            });
            if (hostStats) {
              if (last) {
                const parent = await DirFd.openHost(dirname(m.source));
                opened.push(parent);
                const stats = (await parent.lstat(basename(m.source))) ?? hostStats;
                return {
                  path,
                  parent,
                  name: basename(m.source),
                  stats,
                  mount: m,
                  mountRoot: true,
                  release: keep(parent),
                };
              }
              if (!hostStats.isDirectory()) throw invalid(`${requested}: ${path} is not a directory`);
              dir = await DirFd.openHost(m.source);
              opened.push(dir);
              mount = m;
              done.push(part);
              continue;
            }
          }
          const st = await dir.lstat(part);
          if (!st) throw this.notFound(requested);
          if (st.isSymbolicLink() && (!last || followLast)) {
            if (++links > MAX_LINKS) throw invalid(`${requested}: too many levels of symbolic links`);
            const target = await dir.readlink(part);
            const base = target.startsWith("/") ? [] : done;
            pending = cleanComponents([...base, ...target.split("/"), ...pending.slice(i + 1)]);
            restarted = true;
            break;
          }
          if (last)
            return { path, parent: dir, name: part, stats: st, mount, mountRoot: false, release: keep(dir) };
          if (!st.isDirectory()) throw invalid(`${requested}: ${path} is not a directory`);
          dir = await dir.openDir(part);
          opened.push(dir);
          done.push(part);
        }
        if (!restarted) throw this.notFound(requested);
        await Promise.all(opened.map((d) => d.close()));
      } catch (e) {
        await Promise.all(opened.map((d) => d.close()));
        if (errnoCode(e) === "ELOOP" || errnoCode(e) === "ENOTDIR")
          throw invalid(
            `${requested} changed while shoal was resolving it in container ${this.ref}; try again`,
          );
        throw e;
      }
    }
  }

  /** Open a located folder itself (a mount root by its host path, anything else below its parent, never through a symlink). */
  async openDir(loc: Located): Promise<DirFd> {
    if (loc.mountRoot) return DirFd.openHost(loc.mount ? loc.mount.source : this.rootfs);
    return loc.parent.openDir(loc.name);
  }
}
