// COPY and ADD (and the folders WORKDIR makes): what goes into the step's layer. Sources come from
// the build context (a path leaving it is refused) or from another stage's or image's root
// filesystem; the destination is followed inside the current image, so existing folders keep
// their owner and mode and a symlinked destination lands where the container would see it.
// The plan carries a digest of everything read (names, types, modes, owners, bytes): the cache
// key of the step. Layer entries are produced lazily, so file bytes are read once, into the tar.
import { createHash } from "node:crypto";
import { createReadStream, type Stats } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import { basename, join, posix } from "node:path";
import { invalid } from "../../../shared/errors.js";
import { safeParts, whiteoutPrefix } from "../image/extract.js";
import { TarReader } from "../image/tar-reader.js";
import { resolveUser } from "../runtime/user.js";
import { decompressAny, looksLikeTar } from "./archive.js";
import { devNumbers, type LayerEntry } from "./layer-tar.js";
import { OutsideRootError, resolveScoped } from "../snapshot/scoped-path.js";

export type FindRequest = Pick<CopyRequest, "keyword" | "sources" | "srcRoot" | "srcKind" | "srcName">;

export interface CopyRequest {
  keyword: "COPY" | "ADD";
  /** Sources and destination after variable expansion. */
  sources: string[];
  dest: string;
  workdir: string;
  /** Where sources are read: the context folder, or a mounted root filesystem. */
  srcRoot: string;
  srcKind: "context" | "image";
  /** What --from named, for messages. */
  srcName?: string;
  /** The current image's root filesystem (mounted, or an empty folder for scratch). */
  destRoot: string;
  chown?: string;
  chmod?: string;
  now?: Date;
}

export interface CopyPlan {
  entries(): AsyncIterable<LayerEntry>;
}

/** Go's filepath.Match pattern as a RegExp (null for a bad pattern, which matches nothing). */
export function globToRegExp(pattern: string): RegExp | null {
  let re = "^";
  const chars = [...pattern];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "\\") {
      if (i + 1 >= chars.length) return null;
      re += escapeRe(chars[++i]);
    } else if (c === "[") {
      let j = i + 1;
      let cls = "";
      if (chars[j] === "^" || chars[j] === "!") {
        cls += "^";
        j++;
      }
      let closed = false;
      let first = true;
      for (; j < chars.length; j++) {
        const d = chars[j];
        if (d === "]" && !first) {
          closed = true;
          break;
        }
        first = false;
        if (d === "\\") {
          if (j + 1 >= chars.length) return null;
          cls += escapeRe(chars[++j]);
        } else if (d === "-") cls += "-";
        else cls += escapeRe(d);
      }
      if (!closed || cls === "" || cls === "^") return null;
      re += `(?!/)[${cls}]`;
      i = j;
    } else re += escapeRe(c);
  }
  try {
    return new RegExp(`${re}$`, "s");
  } catch {
    return null;
  }
}

const escapeRe = (c: string): string => c.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");

/** Docker's containsWildcards: *, ? or [ not escaped with a backslash. */
export function hasWildcards(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    if (path[i] === "\\") i++;
    else if (path[i] === "*" || path[i] === "?" || path[i] === "[") return true;
  }
  return false;
}

const isUrl = (s: string): boolean => /^(https?|git|ssh):\/\//i.test(s) || /^git@/.test(s);

export interface Source {
  /** As written, for messages. */
  written: string;
  /** Absolute path on disk (symlinks followed). */
  path: string;
  stats: Stats;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Whether a file is a tar (maybe compressed) archive that ADD unpacks. */
async function isArchive(path: string): Promise<boolean> {
  const it = decompressAny(createReadStream(path), path)[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  try {
    while (head.length < 512) {
      const r = await it.next();
      if (r.done) break;
      head = Buffer.concat([head, r.value]);
    }
  } catch {
    return false; // not valid compressed data: an ordinary file
  } finally {
    await it.return?.(undefined);
  }
  return looksLikeTar(head.subarray(0, 512));
}

async function resolveChown(
  root: string,
  chown: string | undefined,
): Promise<{ uid: number; gid: number } | undefined> {
  if (chown === undefined || chown === "") return undefined;
  const sep = chown.indexOf(":");
  const user = sep < 0 ? chown : chown.slice(0, sep);
  const group = sep < 0 ? chown : chown.slice(sep + 1);
  if (user === "" || group === "")
    throw invalid(`invalid --chown value "${chown}": use user, user:group, uid or uid:gid`);
  try {
    const r = await resolveUser(root, `${user}:${group}`);
    return { uid: r.uid, gid: r.gid };
  } catch (e) {
    throw invalid(`--chown=${chown}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function parseChmod(chmod: string | undefined): number | undefined {
  if (chmod === undefined || chmod === "") return undefined;
  if (!/^[0-7]{3,4}$/.test(chmod))
    throw invalid(`invalid --chmod value "${chmod}": use an octal mode such as 755 or 0644`);
  return parseInt(chmod, 8);
}

const join2 = (a: string, b: string): string => (a === "" ? b : b === "" ? a : `${a}/${b}`);

/** Layer entries keyed by path, later ones replacing earlier ones (and what was below them). */
class EntrySet {
  readonly map = new Map<string, LayerEntry | (() => AsyncIterable<LayerEntry>)>();
  private archives = 0;

  set(e: LayerEntry): void {
    if (e.type !== "dir") {
      for (const k of this.map.keys()) if (k.startsWith(`${e.name}/`)) this.map.delete(k);
    }
    this.map.delete(e.name);
    this.map.set(e.name, e);
  }

  has(name: string): boolean {
    return this.map.has(name);
  }

  addArchive(gen: () => AsyncIterable<LayerEntry>): void {
    this.map.set(`\0archive${this.archives++}`, gen);
  }
}

/** The folder a WORKDIR names, with missing folders to create (empty when it exists). */
export async function planWorkdir(
  destRoot: string,
  workdir: string,
  now = new Date(),
): Promise<LayerEntry[]> {
  const target = await resolveScoped(destRoot, workdir, "clamp");
  if (target.stats) {
    if (!target.stats.isDirectory())
      throw invalid(`WORKDIR ${workdir}: it exists in the image and is not a directory`);
    return [];
  }
  const set = new EntrySet();
  await ensureDirs(set, destRoot, target.rel, { uid: 0, gid: 0, mode: 0o755, mtime: now }, true);
  return [...set.map.values()] as LayerEntry[];
}

interface NewDirAttrs {
  uid: number;
  gid: number;
  mode: number;
  mtime: Date;
}

/** Entries for rel and each of its ancestors: existing folders keep their attributes, missing ones get `fresh`. */
async function ensureDirs(
  set: EntrySet,
  destRoot: string,
  rel: string,
  fresh: NewDirAttrs,
  includeSelf: boolean,
): Promise<void> {
  const parts = rel.split("/").filter((p) => p !== "");
  const upTo = includeSelf ? parts.length : parts.length - 1;
  let cur = "";
  for (let i = 0; i < upTo; i++) {
    cur = join2(cur, parts[i]);
    if (set.has(cur)) continue;
    const st = await lstat(join(destRoot, cur)).catch(() => null);
    if (st && !st.isDirectory())
      throw invalid(`cannot copy to /${rel}: /${cur} exists in the image and is not a directory`);
    set.set(
      st
        ? { name: cur, type: "dir", mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime }
        : { name: cur, type: "dir", ...fresh },
    );
  }
}

function entryFor(
  name: string,
  st: Stats,
  path: string,
  owner: { uid: number; gid: number },
  mode: number | undefined,
): LayerEntry | undefined {
  const base = { name, uid: owner.uid, gid: owner.gid, mtime: st.mtime, mode: mode ?? st.mode & 0o7777 };
  if (st.isFile()) return { ...base, type: "file", size: st.size, source: path };
  if (st.isDirectory()) return { ...base, type: "dir" };
  if (st.isSymbolicLink()) return { ...base, mode: st.mode & 0o7777, type: "symlink" };
  if (st.isFIFO()) return { ...base, type: "fifo" };
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    const { major, minor } = devNumbers(st.rdev);
    return { ...base, type: st.isCharacterDevice() ? "char" : "block", devmajor: major, devminor: minor };
  }
  return undefined; // sockets
}

/** Walk a folder (sorted), yielding [relative path, stats, absolute path]. */
async function* walkDir(dir: string, rel = ""): AsyncGenerator<[string, Stats, string]> {
  const names = (await readdir(rel === "" ? dir : join(dir, rel))).sort();
  for (const name of names) {
    const childRel = join2(rel, name);
    const full = join(dir, childRel);
    const st = await lstat(full);
    yield [childRel, st, full];
    if (st.isDirectory()) yield* walkDir(dir, childRel);
  }
}

function outside(req: FindRequest, src: string): Error {
  return invalid(`${req.keyword} failed: forbidden path outside the build context: ${src}`);
}

/** The sources a COPY or ADD names, wildcards expanded, symlinks followed (refused if they leave the context). */
export async function findSources(req: FindRequest): Promise<Source[]> {
  const out: Source[] = [];
  const where = req.srcKind === "context" ? "build context" : `${req.srcName ?? "the source image"}`;
  for (const written of req.sources) {
    if (isUrl(written)) {
      throw invalid(
        `${req.keyword} failed: ${written} is a URL; shoal builds have no network access. Download the file into the build context and ${req.keyword === "ADD" ? "ADD" : "COPY"} it from there`,
      );
    }
    const cleaned = posix.normalize(`/${written}`).slice(1);
    if (req.srcKind === "context" && posix.normalize(written).startsWith("../")) throw outside(req, written);
    if (req.srcKind === "context" && posix.normalize(written) === "..") throw outside(req, written);
    if (hasWildcards(cleaned)) {
      const re = globToRegExp(cleaned);
      const before = out.length;
      if (re) {
        for await (const [rel] of walkDir(req.srcRoot)) {
          if (!re.test(rel)) continue;
          out.push(await resolveSource(req, rel, written));
        }
      }
      if (out.length === before)
        throw invalid(
          `${req.keyword} failed: no source files were specified: nothing in the ${where} matches ${written}`,
        );
      continue;
    }
    out.push(await resolveSource(req, cleaned, written));
  }
  return out;
}

async function resolveSource(req: FindRequest, rel: string, written: string): Promise<Source> {
  let r;
  try {
    r = await resolveScoped(req.srcRoot, rel, req.srcKind === "context" ? "refuse" : "clamp");
  } catch (e) {
    if (e instanceof OutsideRootError) throw outside(req, written);
    throw e;
  }
  if (!r.stats) {
    throw invalid(
      req.srcKind === "context"
        ? `${req.keyword} failed: file not found in build context or excluded by .dockerignore: stat ${written}: file does not exist`
        : `${req.keyword} failed: stat ${written}: file does not exist in ${req.srcName ?? "the source image"}`,
    );
  }
  return { written, path: join(req.srcRoot, r.rel), stats: r.stats };
}

/**
 * The digest of what the sources hold: names, types, modes, sizes, link targets and file bytes
 * (not times or owners: COPY sets owners, and a touched file with the same bytes is the same).
 */
export async function digestSources(sources: Source[]): Promise<string> {
  const hash = createHash("sha256");
  const line = (...parts: Array<string | number>): void => {
    hash.update(parts.join("\0"));
    hash.update("\n");
  };
  for (const src of sources) {
    const st = src.stats;
    line("source", src.written, basename(src.path), st.mode & 0o7777);
    if (st.isDirectory()) {
      for await (const [rel, cst, full] of walkDir(src.path)) {
        line(
          typeOf(cst),
          rel,
          cst.mode & 0o7777,
          cst.isFile() ? cst.size : 0,
          cst.isSymbolicLink() ? await readlink(full) : "",
          cst.isFile() ? await sha256File(full) : "",
        );
      }
    } else if (st.isFile()) line("file", st.size, await sha256File(src.path));
    else line(typeOf(st));
  }
  return hash.digest("hex");
}

const typeOf = (st: Stats): string =>
  st.isFile()
    ? "file"
    : st.isDirectory()
      ? "dir"
      : st.isSymbolicLink()
        ? "symlink"
        : st.isFIFO()
          ? "fifo"
          : st.isCharacterDevice() || st.isBlockDevice()
            ? `dev:${st.rdev}`
            : "other";

/** Docker's history text for the sources: "file:<hex> in /dest", "dir:<hex> in /dest/", "multi:<hex> in /dest/". */
export function copySummary(
  req: Pick<CopyRequest, "dest" | "workdir">,
  sources: Source[],
  digest: string,
): string {
  const kind = sources.length > 1 ? "multi" : sources[0]?.stats.isDirectory() ? "dir" : "file";
  return `${kind}:${digest} in ${destPath(req)}`;
}

function destPath(req: Pick<CopyRequest, "dest" | "workdir">): string {
  const abs = req.dest.startsWith("/") ? req.dest : posix.join("/", req.workdir || "/", req.dest);
  return /\/\.?$/.test(req.dest) || req.dest === "." ? `${abs.replace(/\/\.?$/, "")}/` : abs;
}

/** Plan a COPY or ADD of found sources into the destination. Throws invalid for what cannot be. */
export async function planCopy(req: CopyRequest, sources: Source[]): Promise<CopyPlan> {
  const now = req.now ?? new Date();
  const owner = (await resolveChown(req.destRoot, req.chown)) ?? { uid: 0, gid: 0 };
  const chmod = parseChmod(req.chmod);
  const destAbs = destPath(req);
  const destIsDir = destAbs.endsWith("/") || req.dest === "";
  if (sources.length > 1 && !destIsDir)
    throw invalid(
      `When using ${req.keyword} with more than one source file, the destination must be a directory and end with a /`,
    );
  const dest = await resolveScoped(req.destRoot, destAbs, "clamp");
  const destExistsAsDir = dest.stats?.isDirectory() === true;
  const fresh: NewDirAttrs = { uid: owner.uid, gid: owner.gid, mode: 0o755, mtime: now };
  const set = new EntrySet();

  for (const src of sources) {
    const st = src.stats;
    if (st.isDirectory()) {
      await ensureDirs(set, req.destRoot, dest.rel, fresh, false);
      if (dest.rel !== "" && !set.has(dest.rel)) {
        set.set(
          dest.stats?.isDirectory()
            ? {
                name: dest.rel,
                type: "dir",
                mode: dest.stats.mode & 0o7777,
                uid: dest.stats.uid,
                gid: dest.stats.gid,
                mtime: dest.stats.mtime,
              }
            : {
                name: dest.rel,
                type: "dir",
                mode: chmod ?? st.mode & 0o7777,
                uid: owner.uid,
                gid: owner.gid,
                mtime: st.mtime,
              },
        );
      }
      for await (const [rel, cst, full] of walkDir(src.path)) {
        const e = entryFor(join2(dest.rel, rel), cst, full, owner, chmod);
        if (!e) continue;
        if (e.type === "symlink") e.linkname = await readlink(full);
        set.set(e);
      }
      continue;
    }
    if (req.keyword === "ADD" && st.isFile() && (await isArchive(src.path))) {
      await ensureDirs(set, req.destRoot, dest.rel, fresh, true);
      const destDir = dest.rel;
      const chownArchive = req.chown ? owner : undefined;
      set.addArchive(() => archiveEntries(src.path, src.written, destDir, chownArchive));
      continue;
    }
    const target =
      destIsDir || destExistsAsDir || sources.length > 1 ? join2(dest.rel, basename(src.path)) : dest.rel;
    if (target === "")
      throw invalid(`${req.keyword} failed: cannot copy the file ${src.written} onto / itself`);
    await ensureDirs(set, req.destRoot, target, fresh, false);
    const e = entryFor(target, st, src.path, owner, chmod);
    if (!e) throw invalid(`${req.keyword} failed: ${src.written} is a socket, which cannot be copied`);
    if (e.type === "symlink") e.linkname = await readlink(src.path);
    set.set(e);
  }
  return {
    entries: async function* () {
      for (const item of set.map.values()) {
        if (typeof item === "function") yield* item();
        else yield item;
      }
    },
  };
}

/** The entries of a local archive, moved below destDir (which the plan already made). */
async function* archiveEntries(
  path: string,
  written: string,
  destDir: string,
  owner: { uid: number; gid: number } | undefined,
): AsyncGenerator<LayerEntry> {
  const what = `ADD ${written}`;
  const reader = new TarReader(decompressAny(createReadStream(path), what));
  for (;;) {
    const next = await reader.next();
    if (next === null) return;
    const h = next.header;
    const parts = safeParts(h.name, what);
    if (parts.length === 0) continue;
    if (parts[parts.length - 1].startsWith(whiteoutPrefix))
      throw invalid(
        `${what}: the archive holds a whiteout entry (${h.name}); unpack it yourself or leave it out`,
      );
    const name = join2(destDir, parts.join("/"));
    const base = {
      name,
      mode: h.mode,
      uid: owner?.uid ?? h.uid,
      gid: owner?.gid ?? h.gid,
      mtime: new Date(h.mtime * 1000),
    };
    switch (h.type) {
      case "file":
        yield { ...base, type: "file", size: h.size, source: () => reader.body() };
        break;
      case "dir":
        yield { ...base, type: "dir" };
        break;
      case "symlink":
        yield { ...base, type: "symlink", linkname: h.linkname };
        break;
      case "link": {
        const target = safeParts(h.linkname, what);
        yield { ...base, type: "link", linkname: join2(destDir, target.join("/")) };
        break;
      }
      case "char":
      case "block":
        yield { ...base, type: h.type, devmajor: h.devmajor, devminor: h.devminor };
        break;
      case "fifo":
        yield { ...base, type: "fifo" };
        break;
    }
  }
}
