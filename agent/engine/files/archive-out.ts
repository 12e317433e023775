// Tar streams out of a container: `GET /containers/{id}/archive` (a file or folder, named as the
// client asked for it, mounts included as the container sees them) and `export` (the whole root
// filesystem, mounts left out). Every folder is walked through held descriptors and every file
// opened with O_NOFOLLOW and checked to be the file that was listed, so a running container
// cannot turn the walk towards the host's files. A file that changes size while it is read is
// cut or padded to the size its header announced, so the tar stays well-formed.
import { constants, type Stats } from "node:fs";
import { lstat, open } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { internal } from "../../../shared/errors.js";
import { packTar, type LayerEntry } from "../../../shared/tar-pack.js";
import { devNumbers } from "../builder/layer-tar.js";
import type { ContainerFs, Located } from "./container-fs.js";
import { DirFd } from "./dir-fd.js";

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = constants;
const CHUNK = 256 * 1024;

/** A file's bytes, exactly `st.size` of them, from the entry `name` of `dir`, refusing anything but that same file. */
async function* boundedContent(dir: DirFd, name: string, st: Stats): AsyncGenerator<Buffer> {
  const fh = await open(dir.at(name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  try {
    const now = await fh.stat();
    if (!now.isFile() || now.ino !== st.ino || now.dev !== st.dev)
      throw internal(`${name} was replaced while it was being copied`);
    let left = st.size;
    let pos = 0;
    while (left > 0) {
      const buf = Buffer.alloc(Math.min(CHUNK, left));
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) {
        yield Buffer.alloc(left); // the file shrank: pad to the announced size
        return;
      }
      pos += bytesRead;
      left -= bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

function entryFor(
  dir: DirFd,
  name: string,
  st: Stats,
  tarName: string,
  linkname?: string,
): LayerEntry | undefined {
  const base = { name: tarName, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
  if (st.isFile())
    return { ...base, type: "file", size: st.size, source: () => boundedContent(dir, name, st) };
  if (st.isDirectory()) return { ...base, type: "dir" };
  if (st.isSymbolicLink()) return { ...base, type: "symlink", linkname: linkname ?? "" };
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    const { major, minor } = devNumbers(st.rdev);
    return { ...base, type: st.isCharacterDevice() ? "char" : "block", devmajor: major, devminor: minor };
  }
  if (st.isFIFO()) return { ...base, type: "fifo" };
  return undefined; // sockets do not travel in tars (as in Docker)
}

const child = (prefix: string, name: string): string => (prefix === "" ? name : `${prefix}/${name}`);

interface WalkOptions {
  /** Follow the container's mounts (cp), or show the root filesystem alone (export). */
  mounts: boolean;
}

async function* walk(
  fs: ContainerFs,
  dir: DirFd,
  containerPath: string,
  prefix: string,
  options: WalkOptions,
): AsyncGenerator<LayerEntry> {
  for (const name of await dir.list()) {
    const path = containerPath === "/" ? `/${name}` : `${containerPath}/${name}`;
    const tarName = child(prefix, name);
    const m = options.mounts ? fs.mountAt(path) : undefined;
    if (m && m.kind === "tmpfs" && fs.running) fs.refuseTmpfs(m, path);
    if (m && m.kind !== "tmpfs") {
      const host = await lstat(m.source).catch(() => undefined);
      if (host) {
        const parent = await DirFd.openHost(dirname(m.source));
        try {
          const st = (await parent.lstat(basename(m.source))) ?? host;
          if (st.isDirectory()) {
            const inner = await DirFd.openHost(m.source);
            try {
              const e = entryFor(parent, basename(m.source), st, tarName);
              if (e) yield e;
              yield* walk(fs, inner, path, tarName, options);
            } finally {
              await inner.close();
            }
          } else {
            const e = entryFor(
              parent,
              basename(m.source),
              st,
              tarName,
              await linkOf(parent, basename(m.source), st),
            );
            if (e) yield e;
          }
        } finally {
          await parent.close();
        }
        continue;
      }
    }
    const st = await dir.lstat(name);
    if (!st) continue; // gone since the listing
    if (st.isDirectory()) {
      let inner: DirFd;
      try {
        inner = await dir.openDir(name);
      } catch {
        continue; // replaced by something else since the lstat
      }
      try {
        const e = entryFor(dir, name, st, tarName);
        if (e) yield e;
        yield* walk(fs, inner, path, tarName, options);
      } finally {
        await inner.close();
      }
      continue;
    }
    const e = entryFor(dir, name, st, tarName, await linkOf(dir, name, st));
    if (e) yield e;
  }
}

async function linkOf(dir: DirFd, name: string, st: Stats): Promise<string | undefined> {
  return st.isSymbolicLink() ? dir.readlink(name) : undefined;
}

/** The entries for a located path, the top one named `base` (Docker's rebase of the copied path). */
async function* locatedEntries(fs: ContainerFs, loc: Located, base: string): AsyncGenerator<LayerEntry> {
  try {
    if (!loc.stats.isDirectory()) {
      const e = entryFor(
        loc.parent,
        loc.name,
        loc.stats,
        base,
        await linkOf(loc.parent, loc.name, loc.stats),
      );
      if (e) yield e;
      return;
    }
    const dir = await fs.openDir(loc);
    try {
      const e = entryFor(loc.parent, loc.name, loc.stats, base);
      if (e) yield e;
      yield* walk(fs, dir, loc.path, base, { mounts: true });
    } finally {
      await dir.close();
    }
  } finally {
    await loc.release();
  }
}

/** A running container's tmpfs mounts below a folder being copied: refused before the first byte, not mid-stream. */
export function checkTmpfsBelow(fs: ContainerFs, loc: Located): void {
  if (!fs.running || !loc.stats.isDirectory()) return;
  for (const m of fs.mounts) {
    if (m.kind === "tmpfs" && (loc.path === "/" || m.dest.startsWith(`${loc.path}/`)))
      fs.refuseTmpfs(m, m.dest);
  }
}

/** The tar `docker cp container:path -` receives. */
export function archiveOf(fs: ContainerFs, loc: Located, base: string): AsyncIterable<Buffer> {
  checkTmpfsBelow(fs, loc);
  return packTar(locatedEntries(fs, loc, base));
}

/** `docker export`: the root filesystem as the container sees it without its mounts, names relative to "/". */
export function exportRootfs(fs: ContainerFs): AsyncIterable<Buffer> {
  async function* entries(): AsyncGenerator<LayerEntry> {
    const root = await DirFd.openHost(fs.rootfs);
    try {
      yield* walk(fs, root, "/", "", { mounts: false });
    } finally {
      await root.close();
    }
  }
  return packTar(entries());
}
