// Image archives are streams whose entries come in any order (manifest.json may be last), so
// `load` first copies every file to a private temp folder, hashing as it goes; the files are
// stored under counter names, so hostile entry names cannot point anywhere.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { posix, join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { invalid } from "../../../shared/errors.js";
import { decompressed } from "./decompress.js";
import { TarReader } from "./tar-reader.js";

export interface SpooledFile {
  path: string;
  size: number;
  digest: string;
}

const maxJson = 16 << 20;

const norm = (name: string): string => posix.normalize(`/${name}`).slice(1).replace(/\/$/, "");

export class Spool {
  private readonly files = new Map<string, SpooledFile>();
  private readonly links = new Map<string, string>();

  private constructor() {}

  static async fromTar(
    archive: AsyncIterable<Buffer | Uint8Array>,
    dir: string,
    onFile?: (name: string) => void,
  ): Promise<Spool> {
    const spool = new Spool();
    const reader = new TarReader(decompressed(archive, "the image archive"));
    let n = 0;
    for (;;) {
      const e = await reader.next();
      if (e === null) break;
      const name = norm(e.header.name);
      if (e.header.type === "file") {
        const path = join(dir, `f${n++}`);
        const hash = createHash("sha256");
        const hasher = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            cb(null, chunk);
          },
        });
        await pipeline(Readable.from(reader.body()), hasher, createWriteStream(path, { mode: 0o600 }));
        spool.files.set(name, { path, size: e.header.size, digest: `sha256:${hash.digest("hex")}` });
        spool.links.delete(name);
        onFile?.(name);
      } else if (e.header.type === "symlink" || e.header.type === "link") {
        // Old `docker save` links duplicate layers to their first copy.
        const target =
          e.header.type === "link"
            ? norm(e.header.linkname)
            : norm(posix.join(posix.dirname(name), e.header.linkname));
        spool.links.set(name, target);
      }
    }
    return spool;
  }

  get(name: string): SpooledFile | undefined {
    let key = norm(name);
    for (let hops = 0; hops < 16; hops++) {
      const f = this.files.get(key);
      if (f) return f;
      const next = this.links.get(key);
      if (next === undefined) return undefined;
      key = next;
    }
    return undefined;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** The file or a 400 naming what is missing. */
  need(name: string, what: string): SpooledFile {
    const f = this.get(name);
    if (!f) throw invalid(`invalid image archive: ${what} "${name}" is missing from the archive`);
    return f;
  }

  async readBuffer(name: string, what: string): Promise<Buffer> {
    const f = this.need(name, what);
    if (f.size > maxJson)
      throw invalid(`invalid image archive: ${what} "${name}" is ${f.size} bytes, more than ${maxJson}`);
    const parts: Buffer[] = [];
    for await (const chunk of createReadStream(f.path)) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  }

  async readJson<T>(name: string, what: string): Promise<T> {
    const buf = await this.readBuffer(name, what);
    try {
      return JSON.parse(buf.toString("utf8")) as T;
    } catch {
      throw invalid(`invalid image archive: ${what} "${name}" is not valid JSON`);
    }
  }

  stream(name: string, what: string): Readable {
    return createReadStream(this.need(name, what).path);
  }
}
