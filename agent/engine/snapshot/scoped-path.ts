// Following a path inside a root folder, as the builder and a container's mounts must. In the
// build context a path that leaves the context (a ".." too many, a symlink pointing outside) is
// refused; in an image's or a container's root filesystem symlinks resolve against that root,
// as inside the container, and can never reach the host's files.
import type { Stats } from "node:fs";
import { lstat, readlink } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode, invalid } from "../../../shared/errors.js";

export interface Scoped {
  /** The resolved path relative to root ("" for root itself), symlinks followed. */
  rel: string;
  /** lstat of the resolved path, when it exists. */
  stats?: Stats;
}

export class OutsideRootError extends Error {}

/**
 * Resolve `path` (absolute or relative: both start at root) inside root. "refuse" throws
 * OutsideRootError for a path or link that leaves root; "clamp" keeps it in, as chroot does.
 * Missing components are kept as written; a file used as a folder is an error.
 */
export async function resolveScoped(
  root: string,
  path: string,
  mode: "refuse" | "clamp",
  followLast = true,
): Promise<Scoped> {
  const pending = path.split("/").filter((p) => p !== "" && p !== ".");
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === ".") continue;
    if (part === "..") {
      if (resolved.length === 0) {
        if (mode === "refuse") throw new OutsideRootError(path);
        continue;
      }
      resolved.pop();
      continue;
    }
    const full = join(root, ...resolved, part);
    let st: Stats;
    try {
      st = await lstat(full);
    } catch (e) {
      const code = errnoCode(e);
      if (code === "ENOENT") {
        // The rest does not exist: keep it as written, cleaned lexically.
        const rest = [part, ...pending];
        for (const p of rest) {
          if (p === "." || p === "") continue;
          if (p === "..") {
            if (resolved.length === 0 && mode === "refuse") throw new OutsideRootError(path);
            resolved.pop();
          } else resolved.push(p);
        }
        return { rel: resolved.join("/") };
      }
      if (code === "ENOTDIR") throw invalid(`${path}: /${resolved.join("/")} is not a directory`);
      throw e;
    }
    if (st.isSymbolicLink() && (pending.length > 0 || followLast)) {
      if (++links > 40) throw invalid(`${path}: too many levels of symbolic links`);
      const target = await readlink(full);
      if (target.startsWith("/")) {
        if (mode === "refuse") throw new OutsideRootError(path);
        resolved.length = 0;
      }
      pending.unshift(...target.split("/").filter((p) => p !== "" && p !== "."));
      continue;
    }
    if (pending.length > 0 && !st.isDirectory())
      throw invalid(`${path}: /${[...resolved, part].join("/")} is not a directory`);
    resolved.push(part);
    if (pending.length === 0) return { rel: resolved.join("/"), stats: st };
  }
  return { rel: resolved.join("/"), stats: await lstat(join(root, ...resolved)) };
}
