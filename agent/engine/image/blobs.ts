// Content-addressable blobs (image configs, manifests, registry downloads) under
// <root>/blobs/sha256/<hex>. A blob's name is its digest, so a blob is written to a temp file
// while hashed and renamed in only when the digest is right: readers never see a wrong blob.
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { errnoCode, invalid } from "../../../shared/errors.js";
import { validateDigest } from "../../../shared/reference.js";

export const sha256Of = (data: Buffer | string): string =>
  `sha256:${createHash("sha256").update(data).digest("hex")}`;

export const hexOf = (digest: string): string => validateDigest(digest).slice("sha256:".length);

export class BlobStore {
  private constructor(
    private readonly dir: string,
    private readonly tmpDir: string,
  ) {}

  static async open(root: string, tmpDir: string): Promise<BlobStore> {
    const dir = join(root, "blobs", "sha256");
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new BlobStore(dir, tmpDir);
  }

  path(digest: string): string {
    return join(this.dir, hexOf(digest));
  }

  async has(digest: string): Promise<boolean> {
    try {
      await stat(this.path(digest));
      return true;
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return false;
      throw e;
    }
  }

  /** Store a blob; with `expected`, refuse (store nothing) when the content does not hash to it. */
  async put(src: Readable | Buffer, expected?: string): Promise<{ digest: string; size: number }> {
    if (expected !== undefined) validateDigest(expected);
    await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
    const tmp = join(this.tmpDir, `blob-${randomBytes(8).toString("hex")}`);
    const hash = createHash("sha256");
    let size = 0;
    const hasher = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    });
    try {
      await pipeline(
        Buffer.isBuffer(src) ? Readable.from([src]) : src,
        hasher,
        createWriteStream(tmp, { mode: 0o600 }),
      );
      const digest = `sha256:${hash.digest("hex")}`;
      if (expected !== undefined && digest !== expected) {
        throw invalid(
          `blob digest mismatch: expected ${expected} but the content hashes to ${digest}; the data is corrupt`,
        );
      }
      await rename(tmp, this.path(digest));
      return { digest, size };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async get(digest: string): Promise<Buffer> {
    return readFile(this.path(digest));
  }

  async remove(digest: string): Promise<void> {
    await rm(this.path(digest), { force: true });
  }
}
