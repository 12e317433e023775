// The build context: the tar the client sends (plain or compressed), unpacked into the build's
// own folder. Nothing is written outside it whatever the tar says (no absolute paths, no "..",
// nothing through a symlink the tar made, hard links only to files already inside). Files keep
// their modes and times; owners are not kept (COPY makes files root's unless --chown).
// Then .dockerignore is applied here too, for clients that did not apply it themselves.
import { createWriteStream } from "node:fs";
import { chmod, link, lstat, lutimes, mkdir, readFile, rm, rmdir, symlink, unlink } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { errnoCode, invalid, isShoalError, messageOf } from "../../../shared/errors.js";
import { contextFilter, walkContext, type ContextFilter } from "../../../shared/dockerignore.js";
import { safeParts } from "../image/extract.js";
import { TarReader } from "../image/tar-reader.js";
import { decompressAny } from "./archive.js";
import { OutsideRootError, resolveScoped } from "../snapshot/scoped-path.js";

const what = "the build context";

async function checkedParents(
  root: string,
  parts: string[],
  known: Set<string>,
  name: string,
): Promise<void> {
  let rel = "";
  for (const p of parts.slice(0, -1)) {
    rel = rel ? `${rel}/${p}` : p;
    if (known.has(rel)) continue;
    const full = join(root, rel);
    const st = await lstat(full).catch((e: unknown) => {
      if (errnoCode(e) === "ENOENT") return null;
      throw e;
    });
    if (st === null) await mkdir(full, { mode: 0o755 });
    else if (!st.isDirectory())
      throw invalid(
        `invalid build context: entry "${name}" would be written through "${rel}", which is not a directory`,
      );
    known.add(rel);
  }
}

/** Unpack a context tar into dir (which exists and is empty). */
export async function extractContext(src: AsyncIterable<Buffer | Uint8Array>, dir: string): Promise<void> {
  const reader = new TarReader(decompressAny(src, what));
  const known = new Set<string>();
  const dirTimes: Array<[string, number]> = [];
  for (;;) {
    const e = await reader.next();
    if (e === null) break;
    const h = e.header;
    try {
      const parts = safeParts(h.name, "invalid build context");
      if (parts.length === 0) continue;
      const rel = parts.join("/");
      const full = join(dir, rel);
      await checkedParents(dir, parts, known, h.name);
      const existing = await lstat(full).catch(() => null);
      if (existing && !(existing.isDirectory() && h.type === "dir")) {
        await rm(full, { recursive: true, force: true });
        for (const k of known) if (k === rel || k.startsWith(`${rel}/`)) known.delete(k);
      }
      switch (h.type) {
        case "dir":
          if (!existing?.isDirectory()) await mkdir(full, { mode: 0o755 });
          known.add(rel);
          await chmod(full, h.mode);
          dirTimes.push([full, h.mtime]);
          continue;
        case "file":
          await pipeline(Readable.from(reader.body()), createWriteStream(full, { flags: "wx", mode: 0o600 }));
          await chmod(full, h.mode);
          break;
        case "symlink":
          await symlink(h.linkname, full);
          break;
        case "link": {
          const target = safeParts(h.linkname, "invalid build context").join("/");
          await checkedParents(dir, target.split("/"), known, h.name);
          const st = await lstat(join(dir, target)).catch(() => null);
          if (!st || st.isDirectory())
            throw invalid(
              `invalid build context: "${h.name}" is a hard link to "${h.linkname}", which is not a file earlier in the context`,
            );
          await link(join(dir, target), full);
          break;
        }
        default:
          continue; // devices and fifos have no place in a build context
      }
      await lutimes(full, h.mtime, h.mtime);
    } catch (err) {
      if (isShoalError(err)) throw err;
      throw invalid(`invalid build context: cannot unpack "${h.name}": ${messageOf(err)}`);
    }
  }
  for (const [full, mtime] of dirTimes.reverse()) await lutimes(full, mtime, mtime).catch(() => undefined);
}

/** Read a file of the context (the Dockerfile, .dockerignore) without leaving it; undefined if absent. */
export async function readContextFile(dir: string, path: string): Promise<string | undefined> {
  let r;
  try {
    r = await resolveScoped(dir, path, "refuse");
  } catch (e) {
    if (e instanceof OutsideRootError) throw invalid(`the file ${path} is outside the build context`);
    throw e;
  }
  if (!r.stats) return undefined;
  if (!r.stats.isFile()) throw invalid(`${path} in the build context is not a regular file`);
  return readFile(join(dir, r.rel), "utf8");
}

/** Delete what .dockerignore excludes, so COPY never sees it. */
export async function pruneExcluded(dir: string, filter: ContextFilter): Promise<void> {
  const dirs: string[] = [];
  for await (const e of walkContext(dir, filter)) {
    if (!e.excluded) continue;
    if (e.stats.isDirectory()) {
      if (filter.hasExceptions) dirs.push(e.full);
      else await rm(e.full, { recursive: true, force: true });
    } else await unlink(e.full);
  }
  // Excluded folders that still hold files brought back by "!" patterns stay.
  for (const d of dirs.reverse()) await rmdir(d).catch(() => undefined);
}

export { contextFilter };
