// Layer tars for the builder. A build step's changes are a folder in overlayfs form (a RUN
// container's upper dir) or a list of files to add (COPY, ADD, WORKDIR); either way they leave
// here as a layer tar in the form registries and engines exchange: overlayfs whiteouts (a 0:0
// character device, the trusted.overlay.opaque xattr) become AUFS ".wh." entries, as dockerd's
// overlay2 driver writes them. The tar is streamed (tar-stream), never built in memory.
import type { Stats } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { internal } from "../../../shared/errors.js";
import { CommandError, runCommand } from "../runtime/command.js";
import type { LayerEntry } from "../../../shared/tar-pack.js";
import { opaqueMarker, opaqueXattr, whiteoutPrefix } from "../image/extract.js";

export type { LayerEntry, LayerEntryType } from "../../../shared/tar-pack.js";
export { packTar as packLayer } from "../../../shared/tar-pack.js";

/** major/minor of a dev_t as glibc splits it. */
export function devNumbers(rdev: number): { major: number; minor: number } {
  const big = BigInt(rdev);
  const major = Number(((big >> 8n) & 0xfffn) | ((big >> 32n) & ~0xfffn));
  const minor = Number((big & 0xffn) | ((big >> 12n) & 0xfff00n));
  return { major, minor };
}

/** The trusted.overlay.* xattrs set below dir, by path relative to dir. One getfattr for the tree. */
async function layerXattrs(dir: string): Promise<Map<string, Map<string, string>>> {
  let stdout: string;
  try {
    ({ stdout } = await runCommand(
      "getfattr",
      ["-R", "-P", "--absolute-names", "-d", "-e", "text", "-m", "^trusted\\.overlay\\.", dir],
      { timeoutMs: 300_000 },
    ));
  } catch (e) {
    // getfattr exits non-zero when some file vanished or has none it may read; keep what it printed.
    if (!(e instanceof CommandError)) throw e;
    stdout = e.stdout;
  }
  const out = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  const unescape = (s: string): string =>
    Buffer.from(
      s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))),
      "latin1",
    ).toString("utf8");
  for (const line of stdout.split("\n")) {
    if (line.startsWith("# file: ")) {
      const path = unescape(line.slice("# file: ".length));
      const rel = path === dir ? "" : path.startsWith(`${dir}/`) ? path.slice(dir.length + 1) : undefined;
      current = rel === undefined ? undefined : new Map();
      if (rel !== undefined && current) out.set(rel, current);
      continue;
    }
    const eq = line.indexOf("=");
    if (current && eq > 0) current.set(line.slice(0, eq), line.slice(eq + 1).replace(/^"|"$/g, ""));
  }
  return out;
}

export interface UpperDirOptions {
  /** Empty regular files to leave out: mount points the engine made (/etc/hosts, ...). */
  skipEmptyFiles?: ReadonlySet<string>;
}

const isWhiteout = (st: Stats): boolean => st.isCharacterDevice() && st.rdev === 0;

/** Whether a folder holds nothing but skipped empty files (and is a parent of one). */
async function onlySkipped(full: string, rel: string, skip: ReadonlySet<string>): Promise<boolean> {
  if (![...skip].some((p) => p.startsWith(`${rel}/`))) return false;
  const names = await readdir(full);
  for (const name of names) {
    if (!skip.has(`${rel}/${name}`)) return false;
    const st = await lstat(join(full, name));
    if (!st.isFile() || st.size !== 0) return false;
  }
  return true;
}

/**
 * The entries of an overlayfs upper dir as a layer: whiteouts become ".wh.<name>" files and an
 * opaque folder gets a ".wh..wh..opq" entry; hard links within the dir stay hard links.
 */
export async function* upperDirEntries(
  dir: string,
  options: UpperDirOptions = {},
): AsyncGenerator<LayerEntry> {
  const xattrs = await layerXattrs(dir);
  for (const [rel, attrs] of xattrs) {
    for (const key of attrs.keys()) {
      if (key === "trusted.overlay.redirect" || key === "trusted.overlay.metacopy") {
        throw internal(
          `the overlay wrote ${key} on /${rel}: the kernel's overlayfs has redirect_dir or metacopy on, which a layer cannot carry; load the overlay module with redirect_dir=off metacopy=off`,
        );
      }
    }
  }
  const links = new Map<string, string>();
  async function* walk(rel: string): AsyncGenerator<LayerEntry> {
    const names = (await readdir(rel === "" ? dir : join(dir, rel))).sort();
    for (const name of names) {
      const childRel = rel === "" ? name : `${rel}/${name}`;
      const full = join(dir, childRel);
      const st = await lstat(full);
      const base = { name: childRel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
      if (isWhiteout(st)) {
        yield {
          ...base,
          name: rel === "" ? `${whiteoutPrefix}${name}` : `${rel}/${whiteoutPrefix}${name}`,
          type: "file",
          mode: st.mode & 0o777,
          size: 0,
        };
        continue;
      }
      if (st.isDirectory()) {
        // A folder the engine's mount points alone put in the upper dir (/etc for /etc/hosts)
        // is not a change of the step, as dockerd's init layer keeps it out of the diff.
        const opaque = xattrs.get(childRel)?.get(opaqueXattr) === "y";
        if (!opaque && options.skipEmptyFiles && (await onlySkipped(full, childRel, options.skipEmptyFiles)))
          continue;
        yield { ...base, type: "dir" };
        if (opaque)
          yield {
            ...base,
            name: `${childRel}/${opaqueMarker}`,
            type: "file",
            mode: st.mode & 0o777,
            size: 0,
          };
        yield* walk(childRel);
        continue;
      }
      if (st.isFile()) {
        if (st.size === 0 && options.skipEmptyFiles?.has(childRel)) continue;
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? links.get(key) : undefined;
        if (first !== undefined) {
          yield { ...base, type: "link", linkname: first };
          continue;
        }
        if (st.nlink > 1) links.set(key, childRel);
        yield { ...base, type: "file", size: st.size, source: full };
      } else if (st.isSymbolicLink()) {
        yield { ...base, type: "symlink", linkname: await readlink(full) };
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const { major, minor } = devNumbers(st.rdev);
        yield { ...base, type: st.isCharacterDevice() ? "char" : "block", devmajor: major, devminor: minor };
      } else if (st.isFIFO()) {
        yield { ...base, type: "fifo" };
      }
      // sockets are not carried in layers (as in Docker)
    }
  }
  yield* walk("");
}
