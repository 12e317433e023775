// Unpacked layers, one folder per diffID under <root>/layers/<hex>/, shared by every image and
// container that uses them. A layer is extracted into <root>/tmp and renamed in only when it
// is complete and its digest checked, so a folder under layers/ is always a whole, true layer.
import { randomBytes } from "node:crypto";
import { mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode, invalid } from "../../../shared/errors.js";
import { readJsonIfExists, writeJsonAtomic } from "../../../shared/fsutil.js";
import { hexOf } from "./blobs.js";
import { decompressed } from "./decompress.js";
import { extractLayer } from "./extract.js";
import { regenerateLayerTar, serializeSplit, splitFile } from "./tar-split.js";

export interface LayerInfo {
  diffId: string;
  /** Bytes of file content. */
  size: number;
  /** Bytes of the uncompressed layer tar, as `save` writes it. */
  tarSize: number;
}

/** A layer extracted into the temp area, not yet visible. */
export interface PreparedLayer {
  info: LayerInfo;
  tmpDir: string;
}

const metaFile = "layer.json";

export class LayerStore {
  private readonly layers = new Map<string, LayerInfo>();

  private constructor(
    private readonly dir: string,
    private readonly tmpRoot: string,
  ) {}

  static async open(root: string, tmpRoot: string): Promise<LayerStore> {
    const dir = join(root, "layers");
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const store = new LayerStore(dir, tmpRoot);
    for (const name of await readdir(dir)) {
      const info = await readJsonIfExists<LayerInfo>(join(dir, name, metaFile));
      if (info && hexOf(info.diffId) === name) store.layers.set(info.diffId, info);
    }
    return store;
  }

  has(diffId: string): boolean {
    return this.layers.has(diffId);
  }

  get(diffId: string): LayerInfo | undefined {
    return this.layers.get(diffId);
  }

  all(): LayerInfo[] {
    return [...this.layers.values()];
  }

  /** The folder holding the layer's files (a lowerdir of a container's rootfs mount). */
  diffDir(diffId: string): string {
    return join(this.dir, hexOf(diffId), "diff");
  }

  /**
   * Extract a layer tar (gzip or plain) into the temp area. With `expected`, refuse a tar whose
   * uncompressed digest differs. `what` names the layer in error messages.
   */
  async prepare(
    src: AsyncIterable<Buffer | Uint8Array>,
    what: string,
    expected?: string,
  ): Promise<PreparedLayer> {
    await mkdir(this.tmpRoot, { recursive: true, mode: 0o700 });
    const tmpDir = join(this.tmpRoot, `layer-${randomBytes(8).toString("hex")}`);
    await mkdir(join(tmpDir, "diff"), { recursive: true, mode: 0o755 });
    try {
      const out = await extractLayer(decompressed(src, what), tmpDir, what);
      if (expected !== undefined && out.diffId !== expected) {
        throw invalid(
          `${what}: its content hashes to ${out.diffId} but the image config says ${expected}; the archive is corrupt`,
        );
      }
      const info: LayerInfo = { diffId: out.diffId, size: out.size, tarSize: out.tarSize };
      await writeFile(join(tmpDir, splitFile), serializeSplit(out.split), { mode: 0o600 });
      await writeJsonAtomic(join(tmpDir, metaFile), info);
      return { info, tmpDir };
    } catch (e) {
      await rm(tmpDir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Make a prepared layer visible; if an identical one appeared meanwhile, keep that one. */
  async commit(p: PreparedLayer): Promise<void> {
    if (this.layers.has(p.info.diffId)) return this.discard(p);
    try {
      await rename(p.tmpDir, join(this.dir, hexOf(p.info.diffId)));
    } catch (e) {
      await this.discard(p);
      if (errnoCode(e) !== "ENOTEMPTY" && errnoCode(e) !== "EEXIST") throw e;
    }
    this.layers.set(p.info.diffId, p.info);
  }

  async discard(p: PreparedLayer): Promise<void> {
    await rm(p.tmpDir, { recursive: true, force: true });
  }

  /** Delete a layer. It is first moved out of layers/, so a crash never leaves half a layer there. */
  async remove(diffId: string): Promise<void> {
    if (!this.layers.delete(diffId)) return;
    await mkdir(this.tmpRoot, { recursive: true, mode: 0o700 });
    const doomed = join(this.tmpRoot, `rm-${randomBytes(8).toString("hex")}`);
    try {
      await rename(join(this.dir, hexOf(diffId)), doomed);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return;
      throw e;
    }
    await rm(doomed, { recursive: true, force: true });
  }

  /** The layer's original uncompressed tar, byte for byte. */
  tar(diffId: string): AsyncGenerator<Buffer> {
    return regenerateLayerTar(join(this.dir, hexOf(diffId)), diffId);
  }
}
