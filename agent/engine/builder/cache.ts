// The builder's layer cache: one small JSON record per step under <data-root>/build/cache,
// named by the step's key (the image the step starts from, the instruction after substitution
// with the build arguments it sees, and for COPY/ADD a digest of the content read) and pointing
// at the image the step produced. Records survive daemon restarts; a record whose image is gone
// (removed with its last child, or pruned) is a miss and is deleted when met.
import { createHash } from "node:crypto";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { readJsonIfExists, writeJsonAtomic } from "../../../shared/fsutil.js";

export interface CacheRecord {
  /** The image the step produced. */
  image: string;
  /** The image the step started from ("" for scratch). */
  parent: string;
  /** The step as keyed, for people reading the folder. */
  step: string;
  created: string;
}

/** Bump when what a step produces changes for the same key. */
const FORMAT = "shoal-build-cache/1";

/** The cache key of a step. parent: image id or "" (scratch); digest: content read (COPY/ADD). */
export function cacheKey(parent: string, step: string, digest = ""): string {
  return createHash("sha256")
    .update(JSON.stringify([FORMAT, parent, step, digest]))
    .digest("hex");
}

export class BuildCache {
  private constructor(private readonly dir: string) {}

  static async open(dir: string): Promise<BuildCache> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new BuildCache(dir);
  }

  private file(key: string): string {
    return join(this.dir, `${key}.json`);
  }

  /** The image cached for key, if the record exists and `exists` says its image is still there. */
  async get(key: string, exists: (image: string) => boolean): Promise<CacheRecord | undefined> {
    const rec = await readJsonIfExists<CacheRecord>(this.file(key)).catch(() => undefined);
    if (!rec || typeof rec.image !== "string") return undefined;
    if (!exists(rec.image)) {
      await rm(this.file(key), { force: true });
      return undefined;
    }
    return rec;
  }

  async put(key: string, rec: CacheRecord): Promise<void> {
    await writeJsonAtomic(this.file(key), rec);
  }

  /** Drop every record (`POST /build/prune`); returns how many went. */
  async clear(): Promise<number> {
    let n = 0;
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (!name.endsWith(".json")) continue;
      await rm(join(this.dir, name), { force: true });
      n++;
    }
    return n;
  }
}
