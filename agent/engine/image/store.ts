// The image store: records, tags and the rules that tie them to blobs and layers. Mutations run
// one at a time (a promise chain) so refcount decisions never race; the slow parts of load and
// import (spooling, unpacking) run before taking the lock, in private temp folders.
import { randomBytes } from "node:crypto";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { conflict, internal, invalid, notFound } from "../../../shared/errors.js";
import { readJsonIfExists, writeJsonAtomic } from "../../../shared/fsutil.js";
import { shortId } from "../../../shared/ids.js";
import type { Logger } from "../../../shared/logging.js";
import {
  familiarName,
  familiarString,
  parseReference,
  parseTagReference,
  withDefaultTag,
} from "../../../shared/reference.js";
import type { ImageStoreApi, ImageUsers, RemoveImageResult } from "./api.js";
import { BlobStore, hexOf, sha256Of } from "./blobs.js";
import { applyChanges } from "./changes.js";
import { ImageDistribution } from "./distribution.js";
import { toImageInspect, toImageSummary } from "./inspect.js";
import { LayerStore, type PreparedLayer } from "./layers.js";
import { hostArchitecture, planArchive } from "./manifest.js";
import { writeSaveArchive, type SaveItem } from "./save.js";
import { Spool } from "./spool.js";
import { TagStore } from "./tags.js";
import { imageEvent } from "./events.js";
import type { EventLog } from "../events.js";
import type { ImageConfigBlob, ImageRecord } from "./types.js";

interface Found {
  image: ImageRecord;
  /** The familiar reference when ref named a tag or digest (not an id). */
  name?: string;
}

export class ImageStore implements ImageStoreApi {
  private readonly images = new Map<string, ImageRecord>();
  /** Layers that a load or save in progress relies on; garbage collection leaves them alone. */
  private readonly inflight = new Map<string, number>();
  /** Layers of images removed with force while containers still used them: image id -> diffIDs. */
  private pins: Record<string, string[]> = {};
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly root: string,
    private readonly log: Logger,
    private readonly blobs: BlobStore,
    private readonly layers: LayerStore,
    private readonly tags: TagStore,
    private readonly events?: EventLog,
  ) {}

  static async open(root: string, log: Logger, events?: EventLog): Promise<ImageStore> {
    await mkdir(root, { recursive: true, mode: 0o700 });
    const tmp = join(root, "tmp");
    // Whatever is in tmp/ is from a crashed load or a half-done delete: never valid.
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { mode: 0o700 });
    await mkdir(join(root, "images"), { recursive: true, mode: 0o700 });
    const store = new ImageStore(
      root,
      log,
      await BlobStore.open(root, tmp),
      await LayerStore.open(root, tmp),
      await TagStore.open(root),
      events,
    );
    for (const name of await readdir(join(root, "images"))) {
      if (!name.endsWith(".json")) continue;
      const rec = await readJsonIfExists<ImageRecord>(join(root, "images", name));
      if (!rec) continue;
      const missing = rec.config.rootfs.diff_ids.filter((d) => !store.layers.has(d));
      if (missing.length > 0) log.warn({ image: rec.id, missing }, "image has missing layers");
      store.images.set(rec.id, rec);
    }
    store.pins = (await readJsonIfExists<Record<string, string[]>>(join(root, "pins.json"))) ?? {};
    for (const rec of store.images.values()) store.refreshRefs(rec.id);
    log.info({ images: store.images.size, layers: store.layers.all().length }, "image store opened");
    return store;
  }

  private get tmpRoot(): string {
    return join(this.root, "tmp");
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }

  private hold(diffIds: Iterable<string>): () => void {
    const held = [...diffIds];
    for (const d of held) this.inflight.set(d, (this.inflight.get(d) ?? 0) + 1);
    return () => {
      for (const d of held) {
        const n = (this.inflight.get(d) ?? 1) - 1;
        if (n <= 0) this.inflight.delete(d);
        else this.inflight.set(d, n);
      }
    };
  }

  private refreshRefs(id: string): void {
    const rec = this.images.get(id);
    if (!rec) return;
    const { tags, digests } = this.tags.refsOf(id);
    rec.repoTags = tags;
    rec.repoDigests = digests;
  }

  /** Point a reference at an image, moving it off whatever image had it. */
  private setRef(ref: string, id: string): void {
    const old = this.tags.get(ref);
    this.tags.set(ref, id);
    if (old !== undefined && old !== id) this.refreshRefs(old);
    this.refreshRefs(id);
  }

  list(): ImageRecord[] {
    return [...this.images.values()].sort((a, b) => b.loadedAt.localeCompare(a.loadedAt));
  }

  /** Pull and push (agent/engine/registry/) work on the store through this; see distribution.ts. */
  distribution(): ImageDistribution {
    return new ImageDistribution({
      root: this.root,
      tmpRoot: this.tmpRoot,
      blobs: this.blobs,
      layers: this.layers,
      images: this.images,
      exclusive: (fn) => this.exclusive(fn),
      hold: (diffIds) => this.hold(diffIds),
      writeImage: (plan) => this.writeImage(plan),
      getRef: (ref) => this.tags.get(ref),
      setRef: (ref, id) => this.setRef(ref, id),
      saveTags: () => this.tags.save(),
      resolve: (ref) => this.resolve(ref),
      event: (action, id, name) => imageEvent(this.events, action, id, name, this.find(id)),
    });
  }

  private lookup(ref: string): Found {
    const full = /^(?:sha256:)?([0-9a-f]{64})$/.exec(ref);
    if (full) {
      const image = this.images.get(`sha256:${full[1]}`);
      if (image) return { image };
      throw notFound(`No such image: ${ref}`);
    }
    let key: string | undefined;
    try {
      const r = parseReference(ref);
      key = r.digest !== undefined ? `${familiarName(r)}@${r.digest}` : familiarString(withDefaultTag(r));
    } catch {
      key = undefined; // not a name; may still be an id prefix
    }
    const byName = key !== undefined ? this.tags.get(key) : undefined;
    const named = byName !== undefined ? this.images.get(byName) : undefined;
    if (named) return { image: named, name: key };
    const prefix = /^(?:sha256:)?([0-9a-f]{4,63})$/.exec(ref);
    if (prefix) {
      const matches = [...this.images.keys()].filter((id) => id.startsWith(`sha256:${prefix[1]}`));
      if (matches.length === 1) return { image: this.images.get(matches[0]) as ImageRecord };
      if (matches.length > 1)
        throw invalid(
          `image id prefix "${ref}" is ambiguous: it matches ${matches.length} images; give more digits`,
        );
    }
    throw notFound(`No such image: ${ref}`);
  }

  /** The image a reference names, or undefined (for event attributes). */
  private find(ref: string): ImageRecord | undefined {
    try {
      return this.lookup(ref).image;
    } catch {
      return undefined;
    }
  }

  resolve(ref: string): ImageRecord {
    return this.lookup(ref).image;
  }

  lowerDirs(image: ImageRecord): string[] {
    return [...image.config.rootfs.diff_ids].reverse().map((d) => this.layers.diffDir(d));
  }

  /** `GET /images/{name}/json` body. */
  inspect(ref: string): Record<string, unknown> {
    const image = this.resolve(ref);
    return toImageInspect(image, this.lowerDirs(image));
  }

  /** `GET /images/json` body (without `all`, like dockerd, since shoal has no intermediate images). */
  summaries(users?: ImageUsers): Array<Record<string, unknown>> {
    return this.list().map((i) => toImageSummary(i, users ? users(i.id).length : -1));
  }

  private async writeImage(
    plan: { configRaw: Buffer; config: ImageConfigBlob },
    parent?: string,
  ): Promise<ImageRecord> {
    const id = sha256Of(plan.configRaw);
    await this.blobs.put(plan.configRaw, id);
    const existing = this.images.get(id);
    if (existing) return existing;
    const size = plan.config.rootfs.diff_ids.reduce((sum, d) => sum + (this.layers.get(d)?.size ?? 0), 0);
    const rec: ImageRecord = {
      id,
      repoTags: [],
      repoDigests: [],
      config: plan.config,
      size,
      loadedAt: new Date().toISOString(),
      ...(parent ? { parent } : {}),
    };
    await writeJsonAtomic(join(this.root, "images", `${hexOf(id)}.json`), rec);
    this.images.set(id, rec);
    return rec;
  }

  async load(archive: Readable, onProgress?: (message: string) => void): Promise<string[]> {
    await mkdir(this.tmpRoot, { recursive: true, mode: 0o700 });
    const work = join(this.tmpRoot, `load-${randomBytes(8).toString("hex")}`);
    await mkdir(work, { mode: 0o700 });
    const prepared: PreparedLayer[] = [];
    let release = (): void => {};
    try {
      const spool = await Spool.fromTar(archive, work);
      const plans = await planArchive(spool);
      const diffIds = new Set(plans.flatMap((p) => p.layers.map((l) => l.diffId)));
      release = this.hold(diffIds);
      const done = new Set<string>();
      for (const plan of plans) {
        for (const l of plan.layers) {
          if (done.has(l.diffId)) continue;
          done.add(l.diffId);
          if (this.layers.has(l.diffId)) {
            onProgress?.(`Layer ${shortId(l.diffId)} already exists`);
            continue;
          }
          onProgress?.(`Loading layer ${shortId(l.diffId)}`);
          prepared.push(
            await this.layers.prepare(spool.stream(l.name, "layer"), `layer ${l.name}`, l.diffId),
          );
        }
      }
      return await this.exclusive(async () => {
        for (const p of prepared.splice(0)) await this.layers.commit(p);
        const lines: string[] = [];
        for (const plan of plans) {
          const rec = await this.writeImage(plan);
          for (const ref of [...plan.repoTags, ...plan.repoDigests]) this.setRef(ref, rec.id);
          if (plan.repoTags.length === 0) lines.push(`Loaded image ID: ${rec.id}`);
          for (const t of plan.repoTags) lines.push(`Loaded image: ${t}`);
          imageEvent(this.events, "load", rec.id, rec.id, rec);
          this.log.info({ image: rec.id, tags: plan.repoTags }, "image loaded");
        }
        await this.tags.save();
        return lines;
      });
    } finally {
      for (const p of prepared) await this.layers.discard(p);
      release();
      await rm(work, { recursive: true, force: true });
    }
  }

  async save(refs: string[], out: Writable): Promise<void> {
    if (refs.length === 0) throw invalid("nothing to save: name at least one image");
    // Gather under the lock and hold the layers before letting go, so a concurrent rmi can
    // neither delete the config blobs we read nor the layers we are about to stream.
    let release = (): void => {};
    const items = await this.exclusive(async () => {
      const byId = new Map<string, SaveItem>();
      for (const ref of refs) {
        const { image, name } = this.lookup(ref);
        const item = byId.get(image.id) ?? { image, configRaw: await this.blobs.get(image.id), tags: [] };
        if (name !== undefined && !name.includes("@") && !item.tags.includes(name)) item.tags.push(name);
        byId.set(image.id, item);
      }
      release = this.hold([...byId.values()].flatMap((i) => i.image.config.rootfs.diff_ids));
      return [...byId.values()];
    });
    try {
      await writeSaveArchive(items, this.layers, out);
      for (const i of items) imageEvent(this.events, "save", i.image.id, i.image.id, i.image);
    } finally {
      release();
    }
  }

  async importRootfs(
    rootfsTar: Readable,
    options: { ref?: string; changes?: string[]; message?: string; platform?: string },
  ): Promise<ImageRecord> {
    // Check everything the user typed before reading a byte of the tar.
    const tag = options.ref ? familiarString(parseTagReference(options.ref)) : undefined;
    const runtime = applyChanges({}, options.changes ?? []);
    const [os, architecture, variant] = (options.platform || `linux/${hostArchitecture()}`).split("/");
    if (!os || !architecture)
      throw invalid(`invalid platform "${options.platform}": use os/arch such as linux/amd64`);
    const prepared = await this.layers.prepare(rootfsTar, "the imported root filesystem");
    try {
      return await this.exclusive(async () => {
        await this.layers.commit(prepared);
        const created = new Date().toISOString();
        const comment = options.message || "Imported from -";
        const config: ImageConfigBlob = {
          architecture,
          os,
          ...(variant ? { variant } : {}),
          created,
          comment,
          config: runtime,
          rootfs: { type: "layers", diff_ids: [prepared.info.diffId] },
          history: [{ created, comment }],
        };
        const rec = await this.writeImage({ configRaw: Buffer.from(JSON.stringify(config)), config });
        if (tag) {
          this.setRef(tag, rec.id);
          await this.tags.save();
        }
        this.log.info({ image: rec.id, tag }, "image imported");
        imageEvent(this.events, "import", rec.id, rec.id, rec);
        return rec;
      });
    } finally {
      await this.layers.discard(prepared);
    }
  }

  async createImage(input: {
    config: ImageConfigBlob;
    parent?: string;
    layer?: AsyncIterable<Buffer>;
    what?: string;
  }): Promise<ImageRecord> {
    const prepared = input.layer
      ? await this.layers.prepare(input.layer, input.what ?? "a built layer")
      : undefined;
    try {
      return await this.exclusive(async () => {
        const config = structuredClone(input.config);
        if (prepared) {
          await this.layers.commit(prepared);
          config.rootfs.diff_ids.push(prepared.info.diffId);
        }
        const missing = config.rootfs.diff_ids.filter((d) => !this.layers.has(d));
        if (missing.length > 0)
          throw internal(`cannot create the image: layers ${missing.join(", ")} are gone`);
        return this.writeImage({ configRaw: Buffer.from(JSON.stringify(config)), config }, input.parent);
      });
    } finally {
      if (prepared) await this.layers.discard(prepared);
    }
  }

  /** After an image went: its untagged, unused parents without other children go too (dockerd's prune on rmi). */
  private async deleteParents(parent: string | undefined, users: ImageUsers): Promise<RemoveImageResult[]> {
    const out: RemoveImageResult[] = [];
    for (let id = parent; id !== undefined;) {
      const rec = this.images.get(id);
      const refs = this.tags.refsOf(id);
      if (!rec || refs.tags.length + refs.digests.length > 0 || users(id).length > 0) break;
      if ([...this.images.values()].some((i) => i.parent === id)) break;
      out.push(...(await this.deleteImage(rec, false)));
      id = rec.parent;
    }
    return out;
  }

  async tag(source: string, target: string): Promise<void> {
    const ref = familiarString(parseTagReference(target));
    await this.exclusive(async () => {
      const image = this.resolve(source);
      this.setRef(ref, image.id);
      await this.tags.save();
      imageEvent(this.events, "tag", image.id, ref, image);
    });
  }

  private async deleteImage(image: ImageRecord, pin: boolean): Promise<RemoveImageResult[]> {
    const out: RemoveImageResult[] = [];
    const { tags, digests } = this.tags.refsOf(image.id);
    for (const r of [...tags, ...digests]) {
      this.tags.delete(r);
      out.push({ Untagged: r });
      imageEvent(this.events, "untag", image.id, r, image);
    }
    if (pin) {
      this.pins[image.id] = image.config.rootfs.diff_ids;
      await writeJsonAtomic(join(this.root, "pins.json"), this.pins);
    }
    await rm(join(this.root, "images", `${hexOf(image.id)}.json`), { force: true });
    this.images.delete(image.id);
    await this.blobs.remove(image.id);
    out.push({ Deleted: image.id });
    imageEvent(this.events, "delete", image.id, image.id, image);
    return out;
  }

  /** Delete layers nothing refers to any more; returns them and the bytes freed. */
  private async collect(users: ImageUsers): Promise<{ deleted: RemoveImageResult[]; reclaimed: number }> {
    let pinsChanged = false;
    for (const id of Object.keys(this.pins)) {
      if (users(id).length === 0) {
        delete this.pins[id];
        pinsChanged = true;
      }
    }
    if (pinsChanged) await writeJsonAtomic(join(this.root, "pins.json"), this.pins);
    const keep = new Set<string>([...this.inflight.keys(), ...Object.values(this.pins).flat()]);
    for (const rec of this.images.values()) for (const d of rec.config.rootfs.diff_ids) keep.add(d);
    const deleted: RemoveImageResult[] = [];
    let reclaimed = 0;
    for (const layer of this.layers.all()) {
      if (keep.has(layer.diffId)) continue;
      await this.layers.remove(layer.diffId);
      deleted.push({ Deleted: layer.diffId });
      reclaimed += layer.size;
    }
    return { deleted, reclaimed };
  }

  async remove(
    ref: string,
    options: { force: boolean; noPrune: boolean },
    users: ImageUsers,
  ): Promise<RemoveImageResult[]> {
    return this.exclusive(async () => {
      const { image, name } = this.lookup(ref);
      const using = users(image.id);
      const refs = this.tags.refsOf(image.id);
      const refCount = refs.tags.length + refs.digests.length;
      const inUse = (): Error =>
        conflict(
          `conflict: unable to remove image ${ref} (must be forced) - image is being used by container ${using.map(shortId).join(", ")}; ` +
            `remove the container${using.length > 1 ? "s" : ""} first or use --force`,
        );
      const results: RemoveImageResult[] = [];
      if (name !== undefined) {
        // Removing a name only untags, unless it was the image's last name.
        if (!options.force && refCount <= 1 && using.length > 0) throw inUse();
        this.tags.delete(name);
        results.push({ Untagged: name });
        imageEvent(this.events, "untag", image.id, name, image);
        const repo = familiarName(parseReference(name));
        const left = this.tags.refsOf(image.id);
        if (!left.tags.some((t) => familiarName(parseReference(t)) === repo)) {
          // Digest references of a repository go with its last tag, as in dockerd.
          for (const d of left.digests.filter((x) => familiarName(parseReference(x)) === repo)) {
            this.tags.delete(d);
            results.push({ Untagged: d });
            imageEvent(this.events, "untag", image.id, d, image);
          }
        }
        this.refreshRefs(image.id);
        if (image.repoTags.length + image.repoDigests.length > 0) {
          await this.tags.save();
          return results;
        }
      } else {
        const repos = new Set([...refs.tags, ...refs.digests].map((r) => familiarName(parseReference(r))));
        if (repos.size > 1 && !options.force) {
          throw conflict(
            `conflict: unable to delete ${shortId(image.id)} (must be forced) - image is referenced in multiple repositories (${refs.tags.join(", ")}); remove the tags one by one or use --force`,
          );
        }
        if (using.length > 0 && !options.force) throw inUse();
      }
      results.push(...(await this.deleteImage(image, using.length > 0)));
      if (!options.noPrune) results.push(...(await this.deleteParents(image.parent, users)));
      await this.tags.save();
      const { deleted } = await this.collect(users);
      this.log.info({ image: image.id, force: options.force }, "image removed");
      return [...results, ...deleted];
    });
  }

  async prune(
    options: { all: boolean },
    users: ImageUsers,
  ): Promise<{ ImagesDeleted: RemoveImageResult[]; SpaceReclaimed: number }> {
    return this.exclusive(async () => {
      // Untagged images with children are a build's intermediate images: they go with their last child.
      const parents = new Set([...this.images.values()].map((i) => i.parent));
      const doomed = [...this.images.values()].filter(
        (i) =>
          (options.all || i.repoTags.length === 0) &&
          users(i.id).length === 0 &&
          !(i.repoTags.length === 0 && parents.has(i.id)),
      );
      const results: RemoveImageResult[] = [];
      for (const image of doomed) {
        if (!this.images.has(image.id)) continue;
        results.push(...(await this.deleteImage(image, false)));
        results.push(...(await this.deleteParents(image.parent, users)));
      }
      if (doomed.length > 0) await this.tags.save();
      const { deleted, reclaimed } = await this.collect(users);
      return { ImagesDeleted: [...results, ...deleted], SpaceReclaimed: reclaimed };
    });
  }
}
