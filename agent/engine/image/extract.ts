// Unpacks one layer tar into a folder, in overlayfs form, and never writes outside it: a layer
// comes from whoever built the image, so every path is checked component by component with
// lstat, and nothing is ever created through a symlink that the layer itself put there.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { link, lchown, chmod, lstat, lutimes, mkdir, rename, rm, symlink } from "node:fs/promises";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { errnoCode, invalid, isShoalError, messageOf } from "../../../shared/errors.js";
import { TarReader, type TarHeader } from "./tar-reader.js";
import type { SplitRecord } from "./tar-split.js";

const run = promisify(execFile);

export const whiteoutPrefix = ".wh.";
export const opaqueMarker = ".wh..wh..opq";
export const opaqueXattr = "trusted.overlay.opaque";

export interface ExtractOutcome {
  /** sha256 of the uncompressed tar stream. */
  diffId: string;
  /** Bytes of regular file content. */
  size: number;
  /** Length of the uncompressed tar. */
  tarSize: number;
  split: SplitRecord[];
}

/** Split a tar entry name into safe components; refuses anything that could leave the layer. */
export function safeParts(name: string, what: string): string[] {
  if (name.includes("\0")) throw invalid(`${what}: entry "${name}" has a NUL byte in its name`);
  if (name.startsWith("/"))
    throw invalid(`${what}: entry "${name}" has an absolute path; layer entries must be relative`);
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes(".."))
    throw invalid(`${what}: entry "${name}" has a ".." component that would leave the layer`);
  return parts;
}

/** Extended attributes a layer may set; trusted.overlay.* would let an image forge whiteouts or redirects. */
const allowedXattr = (key: string): boolean => key === "security.capability" || key.startsWith("user.");

class Extractor {
  private readonly diff: string;
  private readonly shadowDir: string;
  private readonly split: SplitRecord[] = [];
  /** Content-bearing paths -> index of their split record, so an overwrite can keep the old bytes for `save`. */
  private readonly contentAt = new Map<string, number>();
  private readonly knownDirs = new Set<string>();
  private readonly dirTimes: Array<[string, number]> = [];
  private size = 0;

  constructor(
    layerDir: string,
    private readonly what: string,
  ) {
    this.diff = join(layerDir, "diff");
    this.shadowDir = join(layerDir, "shadow");
  }

  private refuse(name: string, why: string): Error {
    return invalid(`${this.what}: entry "${name}" ${why}; the layer was refused and nothing was stored`);
  }

  /** Checks (and creates missing) parent folders of parts, refusing symlinks and non-folders. */
  private async parents(parts: string[], name: string, create: boolean, missing?: string): Promise<void> {
    let rel = "";
    for (const p of parts.slice(0, -1)) {
      rel = rel ? `${rel}/${p}` : p;
      if (this.knownDirs.has(rel)) continue;
      const full = join(this.diff, rel);
      const st = await lstat(full).catch((e: unknown) => {
        if (errnoCode(e) === "ENOENT") return null;
        throw e;
      });
      if (st === null) {
        if (!create)
          throw this.refuse(name, missing ?? `refers to "${rel}", which does not exist in the layer`);
        await mkdir(full, { mode: 0o755 });
      } else if (st.isSymbolicLink()) {
        throw this.refuse(name, `would be written through the symbolic link "${rel}"`);
      } else if (!st.isDirectory()) {
        throw this.refuse(name, `has "${rel}" as a parent, which is not a directory`);
      }
      this.knownDirs.add(rel);
    }
  }

  /** Removes whatever is at rel (unless it is a folder to keep), keeping content that `save` still needs. */
  private async clear(rel: string, keepDir: boolean): Promise<"dir" | "none"> {
    const full = join(this.diff, rel);
    const st = await lstat(full).catch((e: unknown) => {
      if (errnoCode(e) === "ENOENT") return null;
      throw e;
    });
    if (st === null) return "none";
    if (st.isDirectory() && keepDir) return "dir";
    for (const [path, index] of this.contentAt) {
      if (path === rel || path.startsWith(`${rel}/`)) {
        await mkdir(this.shadowDir, { recursive: true, mode: 0o700 });
        await rename(join(this.diff, path), join(this.shadowDir, String(index)));
        const rec = this.split[index];
        this.split[index] = { sh: String(index), s: "f" in rec ? rec.s : 0 };
        this.contentAt.delete(path);
      }
    }
    await rm(full, { recursive: true, force: true });
    for (const d of this.knownDirs) if (d === rel || d.startsWith(`${rel}/`)) this.knownDirs.delete(d);
    return "none";
  }

  private async owner(full: string, h: TarHeader, setMode: boolean): Promise<void> {
    await lchown(full, h.uid, h.gid);
    // chown clears set-id bits, so the mode comes after it; chmod would follow a symlink, so never on one.
    if (setMode) await chmod(full, h.mode);
    for (const [key, value] of h.xattrs) {
      if (!allowedXattr(key)) continue;
      await run("setfattr", ["-h", "-n", key, "-v", `0s${value.toString("base64")}`, full]);
    }
  }

  async entry(h: TarHeader, raw: Buffer, body: () => AsyncIterable<Buffer>): Promise<void> {
    if (raw.length > 0) this.split.push({ r: raw.toString("base64") });
    const parts = safeParts(h.name, this.what);
    const base = parts[parts.length - 1] ?? "";
    if (base.startsWith(whiteoutPrefix)) return this.whiteout(h, parts);
    const rel = parts.join("/");
    const full = join(this.diff, rel);
    if (parts.length === 0) {
      if (h.type !== "dir") throw this.refuse(h.name, "names the layer root but is not a directory");
      await this.owner(full, h, true);
      this.dirTimes.push([full, h.mtime]);
      return;
    }
    if (h.type === "link") return this.hardlink(h, parts);
    await this.parents(parts, h.name, true);
    const existing = await this.clear(rel, h.type === "dir");
    switch (h.type) {
      case "dir":
        if (existing !== "dir") await mkdir(full, { mode: 0o755 });
        this.knownDirs.add(rel);
        await this.owner(full, h, true);
        this.dirTimes.push([full, h.mtime]);
        return;
      case "file": {
        await pipeline(Readable.from(body()), createWriteStream(full, { flags: "wx", mode: 0o600 }));
        if (h.size > 0) {
          this.contentAt.set(rel, this.split.length);
          this.split.push({ f: rel, s: h.size });
        }
        this.size += h.size;
        await this.owner(full, h, true);
        break;
      }
      case "symlink":
        // The target may point anywhere: it is only ever followed inside the container.
        await symlink(h.linkname, full);
        await this.owner(full, h, false);
        break;
      case "char":
      case "block":
        await run("mknod", [full, h.type === "char" ? "c" : "b", String(h.devmajor), String(h.devminor)]);
        await this.owner(full, h, true);
        break;
      case "fifo":
        await run("mknod", [full, "p"]);
        await this.owner(full, h, true);
        break;
    }
    await lutimes(full, h.mtime, h.mtime);
  }

  private async hardlink(h: TarHeader, parts: string[]): Promise<void> {
    if (h.linkname === "") throw this.refuse(h.name, "is a hard link without a target");
    let targetParts: string[];
    try {
      targetParts = safeParts(h.linkname, this.what);
    } catch {
      throw this.refuse(h.name, `is a hard link to "${h.linkname}", which is outside the layer`);
    }
    const rel = parts.join("/");
    const targetRel = targetParts.join("/");
    if (targetParts.length === 0 || targetRel === rel)
      throw this.refuse(h.name, `is a hard link to "${h.linkname}", which is not a file`);
    const absent = `is a hard link to "${h.linkname}", which does not exist earlier in the layer`;
    await this.parents(targetParts, h.name, false, absent);
    const target = join(this.diff, targetRel);
    const st = await lstat(target).catch(() => null);
    if (st === null) throw this.refuse(h.name, absent);
    if (st.isDirectory()) throw this.refuse(h.name, `is a hard link to the directory "${h.linkname}"`);
    await this.parents(parts, h.name, true);
    await this.clear(rel, false);
    await link(target, join(this.diff, rel));
  }

  private async whiteout(h: TarHeader, parts: string[]): Promise<void> {
    const base = parts[parts.length - 1];
    const dirParts = parts.slice(0, -1);
    if (base === opaqueMarker) {
      // The folder hides everything below it in lower layers: overlayfs reads that from an xattr.
      // The folder is a parent of the marker: it must be a real folder, never a symlink.
      await this.parents(parts, h.name, true);
      await run("setfattr", ["-h", "-n", opaqueXattr, "-v", "y", join(this.diff, dirParts.join("/"))]);
      return;
    }
    if (base.startsWith(`${whiteoutPrefix}${whiteoutPrefix}`)) return; // other AUFS metadata: meaningless here
    const victim = base.slice(whiteoutPrefix.length);
    if (victim === "" || victim === "." || victim === "..")
      throw this.refuse(h.name, "is a whiteout without a valid file name");
    const rel = [...dirParts, victim].join("/");
    await this.parents([...dirParts, victim], h.name, true);
    await this.clear(rel, false);
    // overlayfs marks a deleted lower file with a 0:0 character device of the same name.
    const full = join(this.diff, rel);
    await run("mknod", [full, "c", "0", "0"]);
    await lchown(full, h.uid, h.gid);
  }

  async finish(): Promise<{ size: number; split: SplitRecord[] }> {
    // Folder times last, deepest first: creating children updated them.
    for (const [full, mtime] of this.dirTimes.reverse()) {
      try {
        await lutimes(full, mtime, mtime);
      } catch (e) {
        if (errnoCode(e) !== "ENOENT") throw e;
      }
    }
    return { size: this.size, split: this.split };
  }
}

/**
 * Extract an (optionally already decompressed) layer tar into `<layerDir>/diff`, which must exist
 * and be empty. On error the caller removes layerDir: the contents are then undefined.
 */
export async function extractLayer(
  input: AsyncIterable<Buffer>,
  layerDir: string,
  what: string,
): Promise<ExtractOutcome> {
  const hash = createHash("sha256");
  let tarSize = 0;
  const reader = new TarReader(input, (chunk) => {
    hash.update(chunk);
    tarSize += chunk.length;
  });
  const x = new Extractor(layerDir, what);
  for (;;) {
    const e = await reader.next().catch((err: unknown) => {
      // The reader does not know which layer it reads: name it, so a refused load says which.
      if (isShoalError(err) && err.kind === "invalid") throw invalid(`${what}: ${err.message}`);
      throw err;
    });
    if (e === null) break;
    try {
      await x.entry(e.header, e.raw, () => reader.body());
    } catch (err) {
      if (isShoalError(err)) throw err;
      const code = errnoCode(err);
      if (code === "ENOSPC" || code === "EIO" || code === "EDQUOT") throw err;
      throw invalid(`${what}: cannot extract entry "${e.header.name}": ${messageOf(err)}`);
    }
  }
  const { size, split } = await x.finish();
  const trailer = reader.trailer();
  if (trailer.length > 0) split.push({ r: trailer.toString("base64") });
  return { diffId: `sha256:${hash.digest("hex")}`, size, tarSize, split };
}
