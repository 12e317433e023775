// `PUT /containers/{id}/archive`: a tar unpacked into a folder of a container. All or nothing:
// the tar is first unpacked into a hidden staging folder inside the destination (same
// filesystem), every entry checked (no "..", no absolute name, nothing written through a
// symlink, links kept inside, metadata headers bounded by the engine's tar reader), then what
// it holds is moved into place by rename(2), which never follows a symlink. A tar that is bad
// or cut off, a full disk or a conflict (a folder where the tar has a file) leaves the
// container's files as they were; if a rename fails, the ones done are undone. Everything is
// done through held folder descriptors (dir-fd.ts), so a running container changing its files
// meanwhile cannot make the daemon write outside the container.
import { randomBytes } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { link, lchown, lutimes, mkdir, open, rename, rmdir, symlink, unlink } from "node:fs/promises";
import { errnoCode, invalid, isShoalError, messageOf } from "../../../shared/errors.js";
import { safeParts } from "../image/extract.js";
import { TarReader, type TarHeader } from "../image/tar-reader.js";
import { cleanComponents, type ContainerFs, type Located } from "./container-fs.js";
import type { DirFd } from "./dir-fd.js";

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
const what = "the archive";

export interface ExtractOptions {
  /** Refuse to replace a folder by a non-folder and the reverse (the docker CLI always asks this). */
  noOverwriteDirNonDir: boolean;
  /** Owner for every entry (copyUIDGID: the container's user); otherwise the tar's own. */
  owner?: { uid: number; gid: number };
}

/** Remove an entry and everything below it, never following a symlink. */
export async function removeEntry(dir: DirFd, name: string): Promise<void> {
  const st = await dir.lstat(name);
  if (!st) return;
  if (st.isDirectory()) {
    let inner: DirFd | undefined;
    try {
      inner = await dir.openDir(name);
    } catch (e) {
      if (errnoCode(e) !== "ELOOP" && errnoCode(e) !== "ENOTDIR") throw e;
    }
    if (inner) {
      try {
        for (const child of await inner.list()) await removeEntry(inner, child);
      } finally {
        await inner.close();
      }
      await rmdir(dir.at(name));
      return;
    }
  }
  await unlink(dir.at(name));
}

/** The folder holding an entry inside the staging folder; missing parents are made, symlinks refused. */
async function parentIn(
  stage: DirFd,
  parts: string[],
  name: string,
  create: { uid: number; gid: number } | undefined,
): Promise<DirFd> {
  let dir = stage;
  const opened: DirFd[] = [];
  try {
    for (const p of parts.slice(0, -1)) {
      const st = await dir.lstat(p);
      if (!st) {
        if (!create) throw invalid(`${what}: "${name}" refers to a file that is not earlier in the archive`);
        await mkdir(dir.at(p), { mode: 0o755 });
        await lchown(dir.at(p), create.uid, create.gid);
      } else if (st.isSymbolicLink()) {
        throw invalid(
          `${what}: entry "${name}" would be written through the symbolic link "${p}"; nothing was copied`,
        );
      } else if (!st.isDirectory()) {
        throw invalid(
          `${what}: entry "${name}" has "${p}" as a parent, which is not a directory; nothing was copied`,
        );
      }
      dir = await dir.openDir(p);
      opened.push(dir);
    }
    for (const d of opened.slice(0, -1)) await d.close();
    return dir;
  } catch (e) {
    for (const d of opened) await d.close();
    throw e;
  }
}

/** Docker's rule: a relative symlink may not point above the folder the archive is unpacked into. */
function checkSymlink(h: TarHeader, parts: string[], destPath: string): void {
  if (h.linkname.startsWith("/")) return; // resolved against the container's root, inside it
  const dest = cleanComponents(destPath.split("/"));
  const resolved = cleanComponents([...dest, ...parts.slice(0, -1), ...h.linkname.split("/")]);
  if (resolved.length < dest.length || dest.some((p, i) => resolved[i] !== p))
    throw invalid(
      `${what}: invalid symlink "${h.name}" -> "${h.linkname}": it points outside ${destPath}; nothing was copied`,
    );
}

async function writeEntry(
  stage: DirFd,
  h: TarHeader,
  body: () => AsyncIterable<Buffer>,
  destPath: string,
  options: ExtractOptions,
  dirTimes: Array<[string[], number]>,
): Promise<void> {
  const parts = safeParts(h.name, `${what}`);
  if (parts.length === 0) return; // the "./" entry: the destination folder keeps its own owner and mode
  const owner = options.owner ?? { uid: h.uid, gid: h.gid };
  if (h.type === "char" || h.type === "block" || h.type === "fifo")
    throw invalid(
      `${what}: entry "${h.name}" is a device or fifo; shoal does not copy those into containers`,
    );
  const parent = await parentIn(stage, parts, h.name, owner);
  try {
    const name = parts[parts.length - 1];
    const existing = await parent.lstat(name);
    if (existing && !(existing.isDirectory() && h.type === "dir")) await removeEntry(parent, name);
    switch (h.type) {
      case "dir": {
        if (!existing?.isDirectory()) await mkdir(parent.at(name), { mode: 0o700 });
        const d = await parent.openDir(name);
        try {
          await d.handle.chown(owner.uid, owner.gid);
          await d.handle.chmod(h.mode); // after chown, which clears set-id bits
        } finally {
          await d.close();
        }
        dirTimes.push([parts, h.mtime]);
        return;
      }
      case "file": {
        const fh = await open(parent.at(name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
        try {
          for await (const chunk of body()) {
            let off = 0;
            while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
          }
          await fh.chown(owner.uid, owner.gid);
          await fh.chmod(h.mode);
          await fh.utimes(h.mtime, h.mtime);
        } finally {
          await fh.close();
        }
        return;
      }
      case "symlink":
        checkSymlink(h, parts, destPath);
        await symlink(h.linkname, parent.at(name));
        await lchown(parent.at(name), owner.uid, owner.gid);
        await lutimes(parent.at(name), h.mtime, h.mtime);
        return;
      case "link": {
        let targetParts: string[];
        try {
          targetParts = safeParts(h.linkname, what);
        } catch {
          throw invalid(
            `${what}: "${h.name}" is a hard link to "${h.linkname}", which is outside the archive`,
          );
        }
        const tparent = await parentIn(stage, targetParts, h.name, undefined);
        try {
          const tname = targetParts[targetParts.length - 1];
          const st = tname === undefined ? undefined : await tparent.lstat(tname);
          if (!st || st.isDirectory())
            throw invalid(
              `${what}: "${h.name}" is a hard link to "${h.linkname}", which is not a file earlier in the archive`,
            );
          await link(tparent.at(tname), parent.at(name));
        } finally {
          if (tparent !== stage) await tparent.close();
        }
        return;
      }
    }
  } finally {
    if (parent !== stage) await parent.close();
  }
}

type Op =
  | { kind: "move"; from: DirFd; to: DirFd; name: string }
  | { kind: "replace"; from: DirFd; to: DirFd; name: string; trash: DirFd; trashName: string }
  | { kind: "attrs"; dir: DirFd; staged: Stats };

/** What moving the staged tree into place takes; refuses conflicts before anything moves. */
async function planMerge(
  fs: ContainerFs,
  staged: DirFd,
  dest: DirFd,
  destPath: string,
  stage: DirFd,
  options: ExtractOptions,
  ops: Op[],
  held: DirFd[],
): Promise<void> {
  for (const name of await staged.list()) {
    const path = destPath === "/" ? `/${name}` : `${destPath}/${name}`;
    const s = (await staged.lstat(name)) as Stats;
    const m = fs.mountAt(path);
    if (m)
      throw invalid(
        `${what} writes ${path}, where the container has a ${m.kind} mount: copy into ${m.dest} itself; nothing was copied`,
      );
    const d = await dest.lstat(name);
    if (!d) {
      ops.push({ kind: "move", from: staged, to: dest, name });
    } else if (s.isDirectory() && d.isDirectory()) {
      const sd = await staged.openDir(name);
      held.push(sd);
      const dd = await dest.openDir(name);
      held.push(dd);
      await planMerge(fs, sd, dd, path, stage, options, ops, held);
      ops.push({ kind: "attrs", dir: dd, staged: s });
    } else if (s.isDirectory() !== d.isDirectory() && options.noOverwriteDirNonDir) {
      throw invalid(
        d.isDirectory()
          ? `cannot overwrite directory "${path}" with non-directory "${name}"; nothing was copied`
          : `cannot overwrite non-directory "${path}" with directory "${name}"; nothing was copied`,
      );
    } else if (s.isDirectory() || d.isDirectory()) {
      ops.push({
        kind: "replace",
        from: staged,
        to: dest,
        name,
        trash: stage,
        trashName: `.old-${ops.length}`,
      });
    } else {
      ops.push({ kind: "move", from: staged, to: dest, name });
    }
  }
}

async function applyOps(ops: Op[]): Promise<void> {
  const done: Op[] = [];
  try {
    for (const op of ops) {
      if (op.kind === "move") {
        await rename(op.from.at(op.name), op.to.at(op.name));
      } else if (op.kind === "replace") {
        await rename(op.to.at(op.name), op.trash.at(op.trashName));
        try {
          await rename(op.from.at(op.name), op.to.at(op.name));
        } catch (e) {
          await rename(op.trash.at(op.trashName), op.to.at(op.name)).catch(() => undefined);
          throw e;
        }
      } else continue;
      done.push(op);
    }
  } catch (e) {
    // Put back what moved, newest first. A file replaced by a plain rename cannot come back:
    // renames of files over files are the last step that can fail, and they fail before replacing.
    for (const op of done.reverse()) {
      if (op.kind === "move") await rename(op.to.at(op.name), op.from.at(op.name)).catch(() => undefined);
      else if (op.kind === "replace") {
        await rename(op.to.at(op.name), op.from.at(op.name)).catch(() => undefined);
        await rename(op.trash.at(op.trashName), op.to.at(op.name)).catch(() => undefined);
      }
    }
    throw e;
  }
  for (const op of ops) {
    if (op.kind !== "attrs") continue;
    // As dockerd: a folder of the tar that already exists takes the tar's owner, mode and time.
    await op.dir.handle.chown(op.staged.uid, op.staged.gid);
    await op.dir.handle.chmod(op.staged.mode & 0o7777);
    await op.dir.handle.utimes(op.staged.atime, op.staged.mtime);
  }
}

/** Unpack a tar into the located folder of a container, all or nothing. */
export async function extractArchive(
  fs: ContainerFs,
  target: Located,
  input: AsyncIterable<Buffer>,
  options: ExtractOptions,
): Promise<void> {
  const dest = await fs.openDir(target);
  const stageName = `.shoal-cp-${randomBytes(8).toString("hex")}`;
  let stage: DirFd | undefined;
  const held: DirFd[] = [];
  try {
    await mkdir(dest.at(stageName), { mode: 0o700 });
    stage = await dest.openDir(stageName);
    const reader = new TarReader(input);
    const dirTimes: Array<[string[], number]> = [];
    for (;;) {
      const e = await reader.next();
      if (e === null) break;
      try {
        await writeEntry(stage, e.header, () => reader.body(), target.path, options, dirTimes);
      } catch (err) {
        if (isShoalError(err)) throw err;
        const code = errnoCode(err);
        if (code === "ENOSPC" || code === "EDQUOT" || code === "EIO") throw err;
        throw invalid(
          `${what}: cannot copy "${e.header.name}" into ${target.path}: ${messageOf(err)}; nothing was copied`,
        );
      }
    }
    for (const [parts, mtime] of dirTimes.reverse()) {
      const parent: DirFd | undefined = await parentIn(stage, parts, parts.join("/"), undefined).catch(
        () => undefined,
      );
      if (!parent) continue;
      await lutimes(parent.at(parts[parts.length - 1]), mtime, mtime).catch(() => undefined);
      if (parent !== stage) await parent.close();
    }
    const ops: Op[] = [];
    await planMerge(fs, stage, dest, target.path, stage, options, ops, held);
    await applyOps(ops);
  } finally {
    for (const d of held) await d.close();
    if (stage) await stage.close();
    await removeEntry(dest, stageName).catch(() => undefined);
    await dest.close();
  }
}
