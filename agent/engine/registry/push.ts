// `POST /images/{name}/push`: for each tag, make sure the registry has every layer blob (already
// there → skipped; known in another repository of the same registry → mounted; else uploaded
// from the blob kept in the layer's folder, which is made by gzip on the first push), then the
// config, then the manifest. A manifest this image was pulled with or pushed as before is sent
// again byte for byte when its blobs can be provided, so digests do not change.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { internal, invalid, notFound } from "../../../shared/errors.js";
import { familiarName, fullName, parseReference, type Reference } from "../../../shared/reference.js";
import type { ImageDistribution, KeptBlob, LayerBlob, StoredManifest } from "../image/distribution.js";
import type { ImageRecord } from "../image/types.js";
import type { RegistryCredentials } from "./auth.js";
import { repositoryScope } from "./auth.js";
import { RegistryClient, mediaTypes } from "./client.js";
import { runLimited } from "./limit.js";
import type { RegistryContext } from "./pull.js";
import { byteProgress, statusLine, type Emit } from "./progress.js";
import { shortId } from "../../../shared/ids.js";

export interface PushRequest {
  /** The repository, possibly with a tag: "127.0.0.1:5000/team/app[:tag]". */
  name: string;
  /** The tag to push; without one (and none in name), every local tag of the repository. */
  tag?: string;
  credentials?: RegistryCredentials;
}

interface PlannedManifest {
  raw: Buffer;
  mediaType: string;
  /** The blob each layer is pushed as, bottom first. */
  blobs: LayerBlob[];
}

const gzipTypes = new Set<string>([mediaTypes.dockerLayerGzip, mediaTypes.ociLayerGzip]);

/** Docker schema 2, indented as dockerd writes it. */
export function dockerManifest(config: LayerBlob, layers: LayerBlob[]): Buffer {
  return Buffer.from(
    JSON.stringify(
      {
        schemaVersion: 2,
        mediaType: mediaTypes.dockerManifest,
        config: { mediaType: mediaTypes.dockerConfig, size: config.size, digest: config.digest },
        layers: layers.map((l) => ({
          mediaType: mediaTypes.dockerLayerGzip,
          size: l.size,
          digest: l.digest,
        })),
      },
      null,
      3,
    ),
  );
}

export class PushJob {
  private readonly repository: string;

  private constructor(
    private readonly ctx: RegistryContext,
    private readonly client: RegistryClient,
    private readonly ref: Reference,
    private readonly targets: Array<{ tag: string; image: ImageRecord }>,
  ) {
    this.repository = fullName(ref);
  }

  static async prepare(ctx: RegistryContext, req: PushRequest): Promise<PushJob> {
    const parsed = parseReference(req.name);
    if (parsed.digest !== undefined)
      throw invalid(`cannot push a digest reference (${req.name}): push a tag`);
    const ref: Reference = { domain: parsed.domain, path: parsed.path };
    const name = familiarName(ref);
    const tag = req.tag || parsed.tag;
    const store = ctx.store();
    let targets: Array<{ tag: string; image: ImageRecord }>;
    if (tag !== undefined) {
      let image: ImageRecord;
      try {
        image = store.resolve(`${name}:${tag}`);
      } catch {
        throw notFound(`An image does not exist locally with the tag: ${name}:${tag}`);
      }
      targets = [{ tag, image }];
    } else {
      targets = store
        .list()
        .flatMap((image) =>
          image.repoTags
            .map((t) => parseReference(t))
            .filter((r) => familiarName(r) === name && r.tag !== undefined)
            .map((r) => ({ tag: r.tag as string, image })),
        )
        .sort((a, b) => a.tag.localeCompare(b.tag));
      if (targets.length === 0) throw notFound(`An image does not exist locally with the tag: ${name}`);
    }
    const client = new RegistryClient(ctx.hosts, ref.domain, req.credentials, ctx.log, ctx.retry);
    await client.ping();
    // Wrong or missing credentials are a 401 now, before the progress stream starts.
    await client.checkAuth([repositoryScope(ref.path, ["pull", "push"])]);
    return new PushJob(ctx, client, ref, targets);
  }

  async run(emit: Emit, signal?: AbortSignal): Promise<void> {
    emit({ status: `The push refers to repository [${this.repository}]` });
    for (const t of this.targets) await this.pushTag(t.tag, t.image, emit, signal);
  }

  private async pushTag(tag: string, image: ImageRecord, emit: Emit, signal?: AbortSignal): Promise<void> {
    const store = this.ctx.store();
    const diffIds = image.config.rootfs.diff_ids;
    const release = store.hold(diffIds);
    try {
      const unique = [...new Set(diffIds)];
      // Docker lists the top layer first.
      for (const d of [...unique].reverse()) statusLine(emit, shortId(d), "Preparing");
      const reused = await this.reusableManifest(image, store);
      const limit = this.ctx.uploads ?? 5;
      const order = [...unique].reverse();
      for (const d of order.slice(limit)) statusLine(emit, shortId(d), "Waiting");
      const chosen = new Map<string, LayerBlob>();
      const settled = await runLimited(order, limit, async (diffId) => {
        const planned = reused?.blobs[diffIds.indexOf(diffId)];
        const blob = planned ?? (await this.gzipBlob(diffId, store));
        chosen.set(diffId, blob);
        await this.ensureLayer(diffId, blob, store, emit, signal);
      });
      if (settled.failed) throw settled.error;
      const configRaw = await store.configBlob(image.id);
      if (!(await this.client.headBlob(this.ref.path, image.id, signal))) {
        await this.client.uploadBlob(
          this.ref.path,
          image.id,
          configRaw.length,
          () => Readable.from([configRaw]),
          signal,
        );
      }
      const manifest: PlannedManifest = reused ?? {
        raw: dockerManifest(
          { digest: image.id, size: configRaw.length, mediaType: mediaTypes.dockerConfig },
          diffIds.map((d) => chosen.get(d) as LayerBlob),
        ),
        mediaType: mediaTypes.dockerManifest,
        blobs: diffIds.map((d) => chosen.get(d) as LayerBlob),
      };
      const digest = await this.client.putManifest(
        this.ref.path,
        tag,
        manifest.raw,
        manifest.mediaType,
        signal,
      );
      const stored: StoredManifest = {
        digest,
        mediaType: manifest.mediaType,
        repository: this.repository,
        raw: manifest.raw,
      };
      await store.recordPush(image.id, `${familiarName(this.ref)}@${digest}`, stored);
      this.ctx.log.info({ image: image.id, repository: this.repository, tag, digest }, "image pushed");
      store.event("push", `${familiarName(this.ref)}:${tag}`, familiarName(this.ref));
      emit({ status: `${tag}: digest: ${digest} size: ${manifest.raw.length}` });
      emit({ progressDetail: {}, aux: { Tag: tag, Digest: digest, Size: manifest.raw.length } });
    } finally {
      release();
    }
  }

  /** Same registry? (A repository name's domain is everything before its first "/".) */
  private sameRegistry(repository: string): boolean {
    return repository.startsWith(`${this.ref.domain}/`);
  }

  /**
   * A manifest this image was pulled with or pushed as, if every blob it names can be provided:
   * kept here, known to be in the target repository, or in another repository of the registry.
   */
  private async reusableManifest(
    image: ImageRecord,
    store: ImageDistribution,
  ): Promise<PlannedManifest | undefined> {
    const stored = await store.storedManifests(image.id);
    const ordered = [
      ...stored.filter((m) => m.repository === this.repository),
      ...stored.filter((m) => m.repository !== this.repository),
    ];
    const diffIds = image.config.rootfs.diff_ids;
    for (const m of ordered) {
      if (m.mediaType !== mediaTypes.dockerManifest && m.mediaType !== mediaTypes.ociManifest) continue;
      let parsed: {
        config?: { digest?: string };
        layers?: Array<{ digest: string; size: number; mediaType?: string }>;
      };
      try {
        parsed = JSON.parse(m.raw.toString("utf8")) as typeof parsed;
      } catch {
        continue;
      }
      if (parsed.config?.digest !== image.id || !Array.isArray(parsed.layers)) continue;
      if (parsed.layers.length !== diffIds.length) continue;
      let usable = true;
      for (const [i, l] of parsed.layers.entries()) {
        const known = (await store.keptBlobs(diffIds[i])).find((b) => b.digest === l.digest);
        if (!known || !(known.kept || known.repositories.some((r) => this.sameRegistry(r)))) {
          usable = false;
          break;
        }
      }
      if (!usable) continue;
      return {
        raw: m.raw,
        mediaType: m.mediaType,
        blobs: parsed.layers.map((l) => ({
          digest: l.digest,
          size: l.size,
          mediaType: l.mediaType ?? mediaTypes.ociLayerGzip,
        })),
      };
    }
    return undefined;
  }

  /** The layer's kept gzip blob, or a new one made now (and kept, so the next push matches). */
  private async gzipBlob(diffId: string, store: ImageDistribution): Promise<LayerBlob> {
    const kept = (await store.keptBlobs(diffId)).find((b) => b.kept && gzipTypes.has(b.mediaType));
    if (kept) return { digest: kept.digest, size: kept.size, mediaType: kept.mediaType };
    const tmp = await store.tempPath("gzip");
    const hash = createHash("sha256");
    let size = 0;
    try {
      await pipeline(
        Readable.from(store.layerTar(diffId)),
        createGzip(),
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            size += chunk.length;
            cb(null, chunk);
          },
        }),
        createWriteStream(tmp, { mode: 0o600 }),
      );
      const blob: LayerBlob = {
        digest: `sha256:${hash.digest("hex")}`,
        size,
        mediaType: mediaTypes.dockerLayerGzip,
      };
      await store.keepBlob(diffId, tmp, blob);
      return blob;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  private async ensureLayer(
    diffId: string,
    blob: LayerBlob,
    store: ImageDistribution,
    emit: Emit,
    signal?: AbortSignal,
  ): Promise<void> {
    const id = shortId(diffId);
    const path = this.ref.path;
    if (await this.client.headBlob(path, blob.digest, signal)) {
      statusLine(emit, id, "Layer already exists");
      await store.noteRepository(diffId, blob, this.repository);
      return;
    }
    const known: KeptBlob | undefined = (await store.keptBlobs(diffId)).find((b) => b.digest === blob.digest);
    const sources = (known?.repositories ?? []).filter((r) => r !== this.repository && this.sameRegistry(r));
    for (const source of sources) {
      const from = source.slice(this.ref.domain.length + 1);
      if (await this.client.mountBlob(path, blob.digest, from, signal)) {
        statusLine(emit, id, `Mounted from ${from}`);
        await store.noteRepository(diffId, blob, this.repository);
        return;
      }
    }
    if (!known?.kept) {
      throw internal(
        `cannot push layer ${id}: its blob ${blob.digest} is not kept here and the registry could not mount it from another repository`,
      );
    }
    const file = store.keptBlobPath(diffId, blob.digest);
    const progress = byteProgress(emit, id, "Pushing", blob.size);
    await this.client.uploadBlob(
      path,
      blob.digest,
      blob.size,
      () => {
        async function* counted(): AsyncGenerator<Buffer> {
          let sent = 0;
          for await (const chunk of createReadStream(file)) {
            sent += (chunk as Buffer).length;
            progress(sent);
            yield chunk as Buffer;
          }
        }
        return Readable.from(counted());
      },
      signal,
    );
    statusLine(emit, id, "Pushed");
    await store.noteRepository(diffId, blob, this.repository);
  }
}
