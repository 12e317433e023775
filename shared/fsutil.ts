import { access, chmod, lstat, open, readdir, rename, mkdir, rm, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { errnoCode } from "./errors.js";

/**
 * Replace a file's content so that a crash leaves either the old or the new content, never a
 * torn mix: write a temporary file in the same folder, fsync it, rename it over, fsync the folder.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.tmp-${randomBytes(6).toString("hex")}`);
  const fh = await open(tmp, "w", mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 1));
}

/** Read and parse a JSON file; undefined when it does not exist. */
export async function readJsonIfExists<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    throw e;
  }
}

export async function ensureDir(path: string, mode = 0o700): Promise<string> {
  await mkdir(path, { recursive: true, mode });
  return path;
}

export async function pathExists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** fsync a folder, so that renames and creations inside it survive a crash. */
export async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** Bytes in a folder tree (apparent sizes, symlinks not followed); 0 when it does not exist. */
export async function dirSize(dir: string): Promise<number> {
  let total = 0;
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return 0;
  }
  for (const name of entries) {
    const p = join(dir, name);
    try {
      const st = await lstat(p);
      total += st.isDirectory() ? await dirSize(p) : st.size;
    } catch {
      // Vanished while counting.
    }
  }
  return total;
}

/**
 * Take away any permission bit of folder `dir` beyond `mode` (an older install may have left it
 * looser). Returns the mode it had when it was narrowed, undefined when it was already tight.
 */
export async function narrowDirMode(dir: string, mode: number): Promise<number | undefined> {
  const st = await lstat(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory: remove it or pick another folder`);
  const was = st.mode & 0o7777;
  if ((was & ~mode) === 0) return undefined;
  await chmod(dir, mode);
  return was;
}
