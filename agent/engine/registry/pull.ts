// `POST /images/create?fromImage=`: resolve the reference to one image manifest (choosing a
// platform from a list or index), fetch and check its config, then fetch the missing layers in
// parallel, each one hashed, kept and unpacked while it streams. Nothing becomes visible until
// every layer is verified: then layers, config, record and references are committed at once.
import { rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { ShoalError, internal, invalid, isShoalError, messageOf } from "../../../shared/errors.js";
import type { Logger } from "../../../shared/logging.js";
import {
  familiarName,
  familiarString,
  fullName,
  parseReference,
  validateDigest,
  withDefaultTag,
  type Reference,
} from "../../../shared/reference.js";
import type { ImageDistribution, LayerBlob } from "../image/distribution.js";
import type { PreparedLayer } from "../image/layers.js";
import { parseConfig } from "../image/manifest.js";
import type { ImageConfigBlob } from "../image/types.js";
import type { RegistryCredentials } from "./auth.js";
import {
  RegistryClient,
  indexMediaTypes,
  isTransient,
  mediaTypes,
  type FetchedManifest,
  type RetryPolicy,
} from "./client.js";
import type { RegistryHosts } from "./hosts.js";
import { runLimited } from "./limit.js";
import {
  formatPlatform,
  hostPlatform,
  parsePlatform,
  platformMatches,
  selectManifest,
  type Platform,
  type PlatformDescriptor,
} from "./platform.js";
import { byteProgress, layerId, statusLine, type Emit } from "./progress.js";
import { VerifiedBlob } from "./verify.js";

export interface RegistryContext {
  hosts: RegistryHosts;
  store: () => ImageDistribution;
  log: Logger;
  /** Layers downloaded at once per pull (dockerd's --max-concurrent-downloads, default 3). */
  downloads?: number;
  /** Layers uploaded at once per push (dockerd's --max-concurrent-uploads, default 5). */
  uploads?: number;
  retry?: RetryPolicy;
}

export interface PullRequest {
  /** What the user asked for: "busybox", "127.0.0.1:5000/a/b:1", "a/b@sha256:...". */
  reference: string;
  /** "linux/arm64": choose this platform from a list/index (default: the host's). */
  platform?: string;
  credentials?: RegistryCredentials;
}

interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  urls?: string[];
}

interface ImageManifest {
  schemaVersion?: number;
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
}

const maxConfigBytes = 16 << 20;
const layerAttempts = 3;

const pullableLayerTypes = new Set<string>([
  mediaTypes.dockerLayerGzip,
  mediaTypes.ociLayerGzip,
  mediaTypes.ociLayer,
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar",
]);

function checkDescriptor(d: unknown, what: string): Descriptor {
  const desc = d as Descriptor | null;
  if (typeof desc !== "object" || desc === null || typeof desc.digest !== "string")
    throw internal(`the registry sent a manifest whose ${what} has no digest`);
  validateDigest(desc.digest, `${what} digest`);
  if (typeof desc.size !== "number" || !Number.isSafeInteger(desc.size) || desc.size < 0)
    throw internal(`the registry sent a manifest whose ${what} has no valid size`);
  return desc;
}

function parseJson<T>(raw: Buffer, what: string): T {
  try {
    return JSON.parse(raw.toString("utf8")) as T;
  } catch {
    throw internal(`the registry sent ${what} that is not valid JSON`);
  }
}

/** A pull whose manifest and config are resolved; run() transfers the layers and commits. */
export class PullJob {
  private constructor(
    private readonly ctx: RegistryContext,
    private readonly client: RegistryClient,
    private readonly ref: Reference,
    /** The digest of what the reference resolved to (an index for multi-platform images). */
    readonly digest: string,
    private readonly manifest: FetchedManifest,
    private readonly layers: Descriptor[],
    private readonly configRaw: Buffer,
    private readonly config: ImageConfigBlob,
  ) {}

  static async prepare(ctx: RegistryContext, req: PullRequest, signal?: AbortSignal): Promise<PullJob> {
    const ref = withDefaultTag(parseReference(req.reference));
    const wanted: Platform | undefined = req.platform ? parsePlatform(req.platform) : undefined;
    const client = new RegistryClient(ctx.hosts, ref.domain, req.credentials, ctx.log, ctx.retry);
    const top = await client.getManifest(ref.path, ref.digest ?? (ref.tag as string), signal);
    let manifest = top;
    let fromIndex = false;
    if (indexMediaTypes.has(top.mediaType)) {
      const index = parseJson<{ manifests?: PlatformDescriptor[] }>(top.raw, "an image index");
      if (!Array.isArray(index.manifests))
        throw internal(`the image index of ${familiarString(ref)} lists no manifests`);
      const pick = selectManifest(index.manifests, wanted ?? hostPlatform());
      validateDigest(pick.digest, "manifest digest in the image index");
      manifest = await client.getManifest(ref.path, pick.digest, signal);
      fromIndex = true;
      if (indexMediaTypes.has(manifest.mediaType))
        throw invalid(`${familiarString(ref)}: nested image indexes are not supported`);
    }
    if (
      manifest.mediaType === mediaTypes.dockerSchema1 ||
      manifest.mediaType === mediaTypes.dockerSchema1Signed
    ) {
      throw invalid(
        `${familiarString(ref)} is a Docker schema 1 image, which shoal does not support; push it again with a current tool`,
      );
    }
    if (manifest.mediaType !== mediaTypes.dockerManifest && manifest.mediaType !== mediaTypes.ociManifest)
      throw invalid(`${familiarString(ref)} has a manifest of unsupported type "${manifest.mediaType}"`);
    const m = parseJson<ImageManifest>(manifest.raw, "a manifest");
    const configDesc = checkDescriptor(m.config, "config");
    if (!Array.isArray(m.layers)) throw internal(`the manifest of ${familiarString(ref)} has no layer list`);
    const layers = m.layers.map((l, i) => checkDescriptor(l, `layer ${i + 1}`));
    for (const l of layers) {
      if (l.mediaType !== undefined && !pullableLayerTypes.has(l.mediaType)) {
        throw invalid(
          `${familiarString(ref)} has a layer of type "${l.mediaType}", which shoal cannot unpack (gzip and plain tar layers only)`,
        );
      }
    }
    const configRaw = await client.fetchSmallBlob(ref.path, configDesc.digest, maxConfigBytes, signal);
    let config: ImageConfigBlob;
    try {
      config = parseConfig(configRaw, configDesc.digest);
    } catch (e) {
      if (isShoalError(e))
        throw new ShoalError(
          e.kind,
          e.message.replace(/^invalid image archive:/, `invalid image ${familiarString(ref)}:`),
        );
      throw e;
    }
    if (config.rootfs.diff_ids.length !== layers.length) {
      throw invalid(
        `invalid image ${familiarString(ref)}: its manifest has ${layers.length} layers but its config lists ${config.rootfs.diff_ids.length}`,
      );
    }
    const actual: Platform = { os: config.os, architecture: config.architecture, variant: config.variant };
    if (wanted && !fromIndex && !platformMatches(wanted, actual)) {
      throw invalid(
        `image with reference ${familiarString(ref)} was found but does not match the specified platform: wanted ${formatPlatform(wanted)}, actual: ${formatPlatform(actual)}`,
      );
    }
    return new PullJob(ctx, client, ref, top.digest, manifest, layers, configRaw, config);
  }

  /** The name the pulled image is known by ("busybox:latest" or "a/b@sha256:..."). */
  get name(): string {
    return familiarString(this.ref);
  }

  /** Transfer, verify and unpack the layers, then commit. Progress goes to emit. */
  async run(emit: Emit, signal?: AbortSignal): Promise<void> {
    const { ref, config } = this;
    const store = this.ctx.store();
    const repository = fullName(ref);
    emit({ status: `Pulling from ${ref.path}`, id: ref.tag ?? ref.digest });
    const diffIds = config.rootfs.diff_ids;
    const release = store.hold(diffIds);
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    signal?.addEventListener("abort", onAbort);
    const prepared: PreparedLayer[] = [];
    try {
      const todo: Array<{ desc: Descriptor; diffId: string; id: string }> = [];
      const seen = new Set<string>();
      for (const [i, desc] of this.layers.entries()) {
        const diffId = diffIds[i];
        const id = layerId(desc.digest);
        if (seen.has(diffId)) continue;
        seen.add(diffId);
        if (store.hasLayer(diffId)) {
          statusLine(emit, id, "Already exists");
          continue;
        }
        statusLine(emit, id, "Pulling fs layer");
        todo.push({ desc, diffId, id });
      }
      const limit = this.ctx.downloads ?? 3;
      for (const t of todo.slice(limit)) statusLine(emit, t.id, "Waiting");
      const settled = await runLimited(
        todo,
        limit,
        async (t) => {
          const p = await this.fetchLayer(t, repository, emit, controller.signal);
          prepared.push(p);
          return p;
        },
        () => controller.abort(),
      );
      if (settled.failed) throw settled.error;
      const sources = this.layers.map((desc, i) => ({
        diffId: diffIds[i],
        blob: {
          digest: desc.digest,
          size: desc.size,
          mediaType: desc.mediaType ?? mediaTypes.dockerLayerGzip,
        },
        repository,
      }));
      const refs = [`${familiarName(ref)}@${this.digest}`];
      if (ref.tag !== undefined && ref.digest === undefined) refs.unshift(familiarString(ref));
      const { image, previous } = await store.commitPulled({
        configRaw: this.configRaw,
        config,
        prepared: prepared.splice(0),
        sources,
        refs,
        manifest: {
          digest: this.manifest.digest,
          mediaType: this.manifest.mediaType,
          repository,
          raw: this.manifest.raw,
        },
      });
      this.ctx.log.info({ image: image.id, ref: familiarString(ref), digest: this.digest }, "image pulled");
      store.event("pull", familiarString(ref), familiarName(ref));
      emit({ status: `Digest: ${this.digest}` });
      const upToDate = todo.length === 0 && previous[0] === image.id;
      emit({
        status: `Status: ${upToDate ? "Image is up to date" : "Downloaded newer image"} for ${familiarString(ref)}`,
      });
    } finally {
      signal?.removeEventListener("abort", onAbort);
      for (const p of prepared) await store.discardLayer(p).catch(() => undefined);
      release();
    }
  }

  /** One layer: download, keep, hash and unpack at once; retried on network errors. */
  private async fetchLayer(
    t: { desc: Descriptor; diffId: string; id: string },
    repository: string,
    emit: Emit,
    signal: AbortSignal,
  ): Promise<PreparedLayer> {
    const store = this.ctx.store();
    const { desc, diffId, id } = t;
    const what = `layer ${desc.digest}`;
    for (let attempt = 1; ; attempt++) {
      const keep = await store.tempPath("blob");
      let blob: VerifiedBlob | undefined;
      try {
        const res = await this.client.getBlob(this.ref.path, desc.digest, signal);
        const progress = byteProgress(emit, id, "Downloading", desc.size);
        progress(0, true);
        blob = new VerifiedBlob(res.body, desc.digest, desc.size, what, { keepTo: keep, onBytes: progress });
        let p: PreparedLayer;
        try {
          p = await store.prepareLayer(blob.chunks(), what, diffId);
        } catch (e) {
          // Corrupt bytes usually break the gzip or tar first: report the digest if that is the cause.
          if (blob.failure === undefined) throw (await blob.diagnose()) ?? e;
          throw e;
        }
        try {
          await blob.finish();
          statusLine(emit, id, "Verifying Checksum");
          statusLine(emit, id, "Download complete");
          const kept: LayerBlob = {
            digest: desc.digest,
            size: desc.size,
            mediaType: desc.mediaType ?? mediaTypes.dockerLayerGzip,
          };
          await store.attachBlob(p, keep, kept, repository);
        } catch (e) {
          await store.discardLayer(p);
          throw e;
        }
        statusLine(emit, id, "Pull complete");
        return p;
      } catch (e) {
        await blob?.abort();
        await rm(keep, { force: true });
        const network = blob?.failure ?? e;
        const transient = isTransient(network) || isTransient((network as { cause?: unknown }).cause);
        if (!signal.aborted && attempt < layerAttempts && transient) {
          const wait = attempt;
          this.ctx.log.debug(
            { layer: desc.digest, err: messageOf(network), attempt },
            "layer download retry",
          );
          statusLine(emit, id, `Retrying in ${wait} second${wait > 1 ? "s" : ""}`);
          await sleep(wait * 1000, undefined, { signal }).catch(() => undefined);
          if (!signal.aborted) continue;
        }
        throw e;
      }
    }
  }
}
