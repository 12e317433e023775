// Reads what a spooled archive says: a `docker save` manifest.json or an OCI image layout
// (index.json, possibly nested indexes), into one plan per image. Every reference inside the
// archive is checked here, before anything is unpacked or stored.
import { invalid } from "../../../shared/errors.js";
import {
  familiarName,
  familiarString,
  parseReference,
  parseTagReference,
  validateDigest,
} from "../../../shared/reference.js";
import type { Spool } from "./spool.js";
import type { ImageConfigBlob } from "./types.js";

export interface ImagePlan {
  configRaw: Buffer;
  configDigest: string;
  config: ImageConfigBlob;
  /** Spool names of the layer blobs, bottom first, with the diffID each must unpack to. */
  layers: Array<{ name: string; diffId: string }>;
  repoTags: string[];
  repoDigests: string[];
}

interface DockerManifestEntry {
  Config?: unknown;
  RepoTags?: unknown;
  Layers?: unknown;
}

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { os?: string; architecture?: string; variant?: string };
  annotations?: Record<string, string>;
}

const indexTypes = new Set([
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
]);

export function hostArchitecture(): string {
  const map: Record<string, string> = {
    x64: "amd64",
    arm64: "arm64",
    arm: "arm",
    ia32: "386",
    ppc64: "ppc64le",
    s390x: "s390x",
    riscv64: "riscv64",
  };
  return map[process.arch] ?? process.arch;
}

const blobName = (digest: string): string => `blobs/sha256/${validateDigest(digest).slice(7)}`;

/** Parse and check an image config: it must list one valid diffID per layer. */
export function parseConfig(raw: Buffer, where: string): ImageConfigBlob {
  let c: unknown;
  try {
    c = JSON.parse(raw.toString("utf8"));
  } catch {
    throw invalid(`invalid image archive: image config ${where} is not valid JSON`);
  }
  const cfg = c as Partial<ImageConfigBlob> | null;
  if (typeof cfg !== "object" || cfg === null || !cfg.rootfs || !Array.isArray(cfg.rootfs.diff_ids)) {
    throw invalid(`invalid image archive: image config ${where} has no rootfs.diff_ids`);
  }
  for (const d of cfg.rootfs.diff_ids) {
    if (typeof d !== "string")
      throw invalid(`invalid image archive: image config ${where} has a non-string diff_id`);
    validateDigest(d, `diff_id in image config ${where}`);
  }
  if (typeof cfg.os !== "string" || typeof cfg.architecture !== "string") {
    throw invalid(`invalid image archive: image config ${where} lacks "os" or "architecture"`);
  }
  return cfg as ImageConfigBlob;
}

function stringArray(v: unknown, what: string): string[] {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
    throw invalid(`invalid image archive: ${what} must be a list of strings`);
  return v as string[];
}

async function fromDockerManifest(spool: Spool): Promise<ImagePlan[]> {
  const entries = await spool.readJson<unknown>("manifest.json", "manifest");
  if (!Array.isArray(entries)) throw invalid("invalid image archive: manifest.json must be a list of images");
  const plans: ImagePlan[] = [];
  for (const e of entries as DockerManifestEntry[]) {
    if (typeof e?.Config !== "string")
      throw invalid("invalid image archive: an entry of manifest.json has no Config");
    const configName = e.Config;
    const layerNames = stringArray(e.Layers, "Layers in manifest.json");
    const repoTags = stringArray(e.RepoTags, "RepoTags in manifest.json").map((t) =>
      familiarString(parseTagReference(t)),
    );
    const file = spool.need(configName, "image config");
    const m = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(configName);
    if (m && file.digest !== `sha256:${m[1]}`)
      throw invalid(`invalid image archive: ${configName} does not match its digest`);
    const configRaw = await spool.readBuffer(configName, "image config");
    const config = parseConfig(configRaw, configName);
    if (config.rootfs.diff_ids.length !== layerNames.length) {
      throw invalid(
        `invalid image archive: image config ${configName} lists ${config.rootfs.diff_ids.length} layers but manifest.json gives ${layerNames.length}`,
      );
    }
    const layers = layerNames.map((name, i) => {
      spool.need(name, "layer");
      return { name, diffId: config.rootfs.diff_ids[i] };
    });
    plans.push({ configRaw, configDigest: file.digest, config, layers, repoTags, repoDigests: [] });
  }
  return plans;
}

function nameFromAnnotations(a: Record<string, string> | undefined): string | undefined {
  const full = a?.["io.containerd.image.name"];
  const ref = full ?? a?.["org.opencontainers.image.ref.name"];
  if (ref === undefined) return undefined;
  // A bare "latest" in ref.name is only a tag of an unknown repository: no name to give.
  if (full === undefined && !/[:/]/.test(ref)) return undefined;
  return familiarString(parseTagReference(ref));
}

function json<T>(buf: Buffer, what: string): T {
  try {
    return JSON.parse(buf.toString("utf8")) as T;
  } catch {
    throw invalid(`invalid image archive: ${what} is not valid JSON`);
  }
}

async function verifiedBlob(spool: Spool, d: Descriptor, what: string): Promise<Buffer> {
  const name = blobName(d.digest);
  const f = spool.need(name, what);
  if (f.digest !== d.digest)
    throw invalid(`invalid image archive: ${what} ${name} does not match its digest`);
  return spool.readBuffer(name, what);
}

async function resolveManifests(spool: Spool, d: Descriptor, depth: number): Promise<Descriptor> {
  if (depth > 4) throw invalid("invalid image archive: image indexes are nested too deeply");
  if (!indexTypes.has(d.mediaType ?? "")) return d;
  const index = json<{ manifests?: Descriptor[] }>(
    await verifiedBlob(spool, d, "image index"),
    `image index ${d.digest}`,
  );
  const all = (index.manifests ?? []).filter(
    (m) => m.annotations?.["vnd.docker.reference.type"] !== "attestation-manifest",
  );
  const arch = hostArchitecture();
  const match = all.filter((m) => m.platform?.os === "linux" && m.platform.architecture === arch);
  const pick = match[0] ?? (all.length === 1 ? all[0] : undefined);
  if (!pick) {
    const have = all.map((m) => `${m.platform?.os}/${m.platform?.architecture}`).join(", ");
    throw invalid(`invalid image archive: no linux/${arch} image in the index (it has ${have || "nothing"})`);
  }
  return resolveManifests(spool, pick, depth + 1);
}

async function fromOciLayout(spool: Spool): Promise<ImagePlan[]> {
  const index = await spool.readJson<{ manifests?: Descriptor[] }>("index.json", "OCI index");
  if (!Array.isArray(index.manifests) || index.manifests.length === 0)
    throw invalid("invalid image archive: index.json lists no manifests");
  const byConfig = new Map<string, ImagePlan>();
  for (const top of index.manifests) {
    const name = nameFromAnnotations(top.annotations);
    const d = await resolveManifests(spool, top, 0);
    const manifest = json<{ config?: Descriptor; layers?: Descriptor[] }>(
      await verifiedBlob(spool, d, "image manifest"),
      `manifest ${d.digest}`,
    );
    if (!manifest.config || !Array.isArray(manifest.layers))
      throw invalid(`invalid image archive: manifest ${d.digest} has no config or layers`);
    const configRaw = await verifiedBlob(spool, manifest.config, "image config");
    const config = parseConfig(configRaw, manifest.config.digest);
    if (config.rootfs.diff_ids.length !== manifest.layers.length) {
      throw invalid(
        `invalid image archive: manifest ${d.digest} has ${manifest.layers.length} layers but its config lists ${config.rootfs.diff_ids.length}`,
      );
    }
    const layers = manifest.layers.map((l, i) => {
      const blob = blobName(l.digest);
      if (spool.need(blob, "layer").digest !== l.digest)
        throw invalid(`invalid image archive: layer ${blob} does not match its digest`);
      return { name: blob, diffId: config.rootfs.diff_ids[i] };
    });
    const plan = byConfig.get(manifest.config.digest) ?? {
      configRaw,
      configDigest: manifest.config.digest,
      config,
      layers,
      repoTags: [],
      repoDigests: [],
    };
    if (name !== undefined) {
      if (!plan.repoTags.includes(name)) plan.repoTags.push(name);
      const digestRef = `${familiarName(parseReference(name))}@${d.digest}`;
      if (!plan.repoDigests.includes(digestRef)) plan.repoDigests.push(digestRef);
    }
    byConfig.set(manifest.config.digest, plan);
  }
  return [...byConfig.values()];
}

/** What the archive holds. Prefers manifest.json (Docker's own format) when both are present. */
export async function planArchive(spool: Spool): Promise<ImagePlan[]> {
  if (spool.has("manifest.json")) return fromDockerManifest(spool);
  if (spool.has("index.json")) return fromOciLayout(spool);
  throw invalid(
    "invalid image archive: neither manifest.json (docker save) nor index.json (OCI layout) found; is this an image archive?",
  );
}
