// What pull and push (agent/engine/registry/) need of the image store, and what the store keeps
// for them:
// - the compressed blobs of a layer, as pulled or as first pushed, in the layer's own folder
//   (`layers/<diffID hex>/compressed/<hex>`, listed in `compressed.json` with the repositories
//   known to hold them), so a second push sends the same bytes under the same digest and a
//   blob can be mounted from another repository of the same registry; they go with the layer.
// - the manifests an image was pulled with or pushed as (`distribution/<image hex>/`), so a
//   pulled image pushed back unchanged keeps its manifest digest. Folders of images that are
//   gone are swept at the next pull or push.
// Every change runs inside the store's lock; slow work (downloads, compression) happens before.
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { errnoCode } from "../../../shared/errors.js";
import { readJsonIfExists, writeJsonAtomic } from "../../../shared/fsutil.js";
import type { BlobStore } from "./blobs.js";
import { hexOf } from "./blobs.js";
import type { LayerInfo, LayerStore, PreparedLayer } from "./layers.js";
import type { ImageConfigBlob, ImageRecord } from "./types.js";

/** A compressed form of a layer, as registries store it. */
export interface LayerBlob {
  digest: string;
  size: number;
  mediaType: string;
}

export interface KeptBlob extends LayerBlob {
  /** Full repository names ("127.0.0.1:5000/team/app") known to hold the blob. */
  repositories: string[];
  /** Whether the bytes are kept in the layer's folder (else only known to exist remotely). */
  kept: boolean;
}

export interface StoredManifest {
  digest: string;
  mediaType: string;
  /** The full repository name it was pulled from or pushed to. */
  repository: string;
  raw: Buffer;
}

interface ManifestEntry {
  digest: string;
  mediaType: string;
  repository: string;
}

/** The store's internals this module works with; handed over by ImageStore.distribution(). */
export interface StoreInternals {
  root: string;
  tmpRoot: string;
  blobs: BlobStore;
  layers: LayerStore;
  images: ReadonlyMap<string, ImageRecord>;
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  hold(diffIds: Iterable<string>): () => void;
  writeImage(plan: { configRaw: Buffer; config: ImageConfigBlob }): Promise<ImageRecord>;
  getRef(ref: string): string | undefined;
  setRef(ref: string, id: string): void;
  saveTags(): Promise<void>;
  resolve(ref: string): ImageRecord;
  /** docker events: pull and push, with the reference as the actor. */
  event?(action: "pull" | "push", ref: string, name: string): void;
}

const blobsFile = "compressed.json";
const blobsDir = "compressed";

export interface PulledImage {
  configRaw: Buffer;
  config: ImageConfigBlob;
  /** Layers downloaded by this pull (already verified), in any order. */
  prepared: PreparedLayer[];
  /** The blob each layer of the manifest came as, and where it came from. */
  sources: Array<{ diffId: string; blob: LayerBlob; repository: string }>;
  /** Tags and digest references to point at the image ("name:tag", "name@sha256:..."). */
  refs: string[];
  manifest?: StoredManifest;
}

export class ImageDistribution {
  constructor(private readonly s: StoreInternals) {}

  hasLayer(diffId: string): boolean {
    return this.s.layers.has(diffId);
  }

  layerInfo(diffId: string): LayerInfo | undefined {
    return this.s.layers.get(diffId);
  }

  /** Keep layers from garbage collection while a pull or push relies on them. */
  hold(diffIds: Iterable<string>): () => void {
    return this.s.hold(diffIds);
  }

  resolve(ref: string): ImageRecord {
    return this.s.resolve(ref);
  }

  /** Log a finished pull or push (dockerd: the familiar reference, and its repository as name). */
  event(action: "pull" | "push", ref: string, name: string): void {
    this.s.event?.(action, ref, name);
  }

  list(): ImageRecord[] {
    return [...this.s.images.values()];
  }

  /** The image a reference points at now, if any. */
  refTarget(ref: string): string | undefined {
    return this.s.getRef(ref);
  }

  configBlob(imageId: string): Promise<Buffer> {
    return this.s.blobs.get(imageId);
  }

  /** A fresh path in the store's temp area (same filesystem as the layers, so it can be renamed in). */
  async tempPath(prefix: string): Promise<string> {
    await mkdir(this.s.tmpRoot, { recursive: true, mode: 0o700 });
    return join(this.s.tmpRoot, `${prefix}-${randomBytes(8).toString("hex")}`);
  }

  /** Unpack a layer (gzip or plain) into the temp area, refusing it unless it hashes to diffId. */
  prepareLayer(
    src: AsyncIterable<Buffer | Uint8Array>,
    what: string,
    diffId: string,
  ): Promise<PreparedLayer> {
    return this.s.layers.prepare(src, what, diffId);
  }

  discardLayer(p: PreparedLayer): Promise<void> {
    return this.s.layers.discard(p);
  }

  /** The layer's original uncompressed tar, byte for byte. */
  layerTar(diffId: string): AsyncGenerator<Buffer> {
    return this.s.layers.tar(diffId);
  }

  private layerDir(diffId: string): string {
    return dirname(this.s.layers.diffDir(diffId));
  }

  /** Put a verified compressed blob into a prepared layer, so it is committed with it. */
  async attachBlob(p: PreparedLayer, file: string, blob: LayerBlob, repository: string): Promise<void> {
    await mkdir(join(p.tmpDir, blobsDir), { mode: 0o700 });
    await rename(file, join(p.tmpDir, blobsDir, hexOf(blob.digest)));
    const entry: KeptBlob = { ...blob, repositories: [repository], kept: true };
    await writeFile(join(p.tmpDir, blobsFile), JSON.stringify([entry]), { mode: 0o600 });
  }

  /** What is known of a committed layer's compressed forms; entries whose file vanished are marked not kept. */
  async keptBlobs(diffId: string): Promise<KeptBlob[]> {
    if (!this.s.layers.has(diffId)) return [];
    const list = (await readJsonIfExists<KeptBlob[]>(join(this.layerDir(diffId), blobsFile))) ?? [];
    for (const b of list) if (b.kept) b.kept = await this.exists(this.keptBlobPath(diffId, b.digest));
    return list;
  }

  keptBlobPath(diffId: string, digest: string): string {
    return join(this.layerDir(diffId), blobsDir, hexOf(digest));
  }

  private async exists(path: string): Promise<boolean> {
    try {
      await stat(path);
      return true;
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return false;
      throw e;
    }
  }

  private async updateBlobs(diffId: string, change: (list: KeptBlob[]) => void): Promise<void> {
    if (!this.s.layers.has(diffId)) return;
    const file = join(this.layerDir(diffId), blobsFile);
    const list = (await readJsonIfExists<KeptBlob[]>(file)) ?? [];
    change(list);
    await writeJsonAtomic(file, list);
  }

  private static note(
    list: KeptBlob[],
    blob: LayerBlob,
    repository: string | undefined,
    kept: boolean,
  ): void {
    let entry = list.find((b) => b.digest === blob.digest);
    if (!entry) {
      entry = { ...blob, repositories: [], kept };
      list.push(entry);
    }
    if (kept) entry.kept = true;
    if (repository !== undefined && !entry.repositories.includes(repository))
      entry.repositories.push(repository);
  }

  /** Keep a compressed blob made for a push (tmpFile is moved into the layer folder). */
  async keepBlob(diffId: string, tmpFile: string, blob: LayerBlob): Promise<void> {
    await this.s.exclusive(async () => {
      if (!this.s.layers.has(diffId)) {
        await rm(tmpFile, { force: true });
        return;
      }
      await mkdir(join(this.layerDir(diffId), blobsDir), { recursive: true, mode: 0o700 });
      await rename(tmpFile, this.keptBlobPath(diffId, blob.digest));
      await this.updateBlobs(diffId, (list) => ImageDistribution.note(list, blob, undefined, true));
    });
  }

  /** Remember that a repository holds a layer's blob (after a push, a mount or a pull). */
  async noteRepository(diffId: string, blob: LayerBlob, repository: string): Promise<void> {
    await this.s.exclusive(() =>
      this.updateBlobs(diffId, (list) => ImageDistribution.note(list, blob, repository, false)),
    );
  }

  /** Commit a pull: layers, config, image record, references and what to remember for pushes. */
  async commitPulled(p: PulledImage): Promise<{ image: ImageRecord; previous: Array<string | undefined> }> {
    return this.s.exclusive(async () => {
      for (const layer of p.prepared) await this.s.layers.commit(layer);
      const image = await this.s.writeImage({ configRaw: p.configRaw, config: p.config });
      const previous = p.refs.map((r) => this.s.getRef(r));
      for (const r of p.refs) this.s.setRef(r, image.id);
      await this.s.saveTags();
      for (const src of p.sources) {
        await this.updateBlobs(src.diffId, (list) =>
          ImageDistribution.note(list, src.blob, src.repository, false),
        );
      }
      if (p.manifest) await this.storeManifest(image.id, p.manifest);
      await this.sweep();
      return { image, previous };
    });
  }

  /** After a push: the digest reference and the manifest, for the next push of the same image. */
  async recordPush(imageId: string, digestRef: string, manifest: StoredManifest): Promise<void> {
    await this.s.exclusive(async () => {
      if (!this.s.images.has(imageId)) return; // removed while pushing
      this.s.setRef(digestRef, imageId);
      await this.s.saveTags();
      await this.storeManifest(imageId, manifest);
      await this.sweep();
    });
  }

  private manifestDir(imageId: string): string {
    return join(this.s.root, "distribution", hexOf(imageId));
  }

  private async storeManifest(imageId: string, m: StoredManifest): Promise<void> {
    const dir = this.manifestDir(imageId);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(join(dir, hexOf(m.digest)), m.raw, { mode: 0o600 });
    const index = join(dir, "manifests.json");
    const list = ((await readJsonIfExists<ManifestEntry[]>(index)) ?? []).filter(
      (e) => !(e.digest === m.digest && e.repository === m.repository),
    );
    // Most recent first.
    list.unshift({ digest: m.digest, mediaType: m.mediaType, repository: m.repository });
    await writeJsonAtomic(index, list);
  }

  /** Manifests an image was pulled with or pushed as, most recent first. */
  async storedManifests(imageId: string): Promise<StoredManifest[]> {
    const dir = this.manifestDir(imageId);
    const list = (await readJsonIfExists<ManifestEntry[]>(join(dir, "manifests.json"))) ?? [];
    const out: StoredManifest[] = [];
    for (const e of list) {
      try {
        out.push({ ...e, raw: await readFile(join(dir, hexOf(e.digest))) });
      } catch (err) {
        if (errnoCode(err) !== "ENOENT") throw err;
      }
    }
    return out;
  }

  /** Remove manifest folders of images that are gone. */
  private async sweep(): Promise<void> {
    const root = join(this.s.root, "distribution");
    let names: string[];
    try {
      names = await readdir(root);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return;
      throw e;
    }
    for (const n of names) {
      if (!this.s.images.has(`sha256:${n}`)) await rm(join(root, n), { recursive: true, force: true });
    }
  }
}
