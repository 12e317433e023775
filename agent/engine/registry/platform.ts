// Platforms ("linux/arm64/v8") and the choice of one manifest from a manifest list or OCI index,
// the way containerd's platforms.Only matcher chooses: same os and architecture, a compatible
// variant, attestation manifests never.
import { invalid, notFound } from "../../../shared/errors.js";
import { hostArchitecture } from "../image/manifest.js";

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface PlatformDescriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { os?: string; architecture?: string; variant?: string };
  annotations?: Record<string, string>;
}

const archAliases: Record<string, string> = {
  x86_64: "amd64",
  "x86-64": "amd64",
  aarch64: "arm64",
  armhf: "arm",
  armel: "arm",
  i386: "386",
  i686: "386",
};

/** Normalise as containerd does: aliases, arm64's default variant v8, arm's default v7. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  const architecture = archAliases[p.architecture.toLowerCase()] ?? p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  if (architecture === "arm64" && variant === "v8") variant = undefined;
  if (architecture === "arm" && variant === undefined) variant = "v7";
  if (architecture === "amd64" && variant === "v1") variant = undefined;
  return { os, architecture, ...(variant !== undefined ? { variant } : {}) };
}

/** "linux/arm64", "linux/arm/v7", "arm64" (os defaults to linux). */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split("/");
  if (parts.some((p) => p === "") || parts.length > 3 || text.trim() === "")
    throw invalid(`invalid platform "${text}": use os/arch[/variant], such as linux/arm64 or linux/arm/v7`);
  if (parts.length === 1) return normalizePlatform({ os: "linux", architecture: parts[0] });
  return normalizePlatform({ os: parts[0], architecture: parts[1], variant: parts[2] });
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

export function hostPlatform(): Platform {
  return normalizePlatform({ os: "linux", architecture: hostArchitecture() });
}

/** Whether an image of platform `have` satisfies a request for `want`. */
export function platformMatches(want: Platform, have: Platform): boolean {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture) return false;
  if (w.variant === undefined || h.variant === undefined) return true;
  return w.variant === h.variant;
}

function isAttestation(d: PlatformDescriptor): boolean {
  return (
    d.annotations?.["vnd.docker.reference.type"] === "attestation-manifest" ||
    (d.platform?.os === "unknown" && d.platform?.architecture === "unknown")
  );
}

/**
 * The manifest of an index for a platform. An exact variant match wins over a manifest without
 * variant; otherwise the first match in the index's order. 404 when none fits.
 */
export function selectManifest(manifests: PlatformDescriptor[], want: Platform): PlatformDescriptor {
  const w = normalizePlatform(want);
  const candidates = manifests.filter((d) => !isAttestation(d) && d.platform?.os && d.platform.architecture);
  const matching = candidates.filter((d) =>
    platformMatches(w, {
      os: d.platform?.os ?? "",
      architecture: d.platform?.architecture ?? "",
      variant: d.platform?.variant,
    }),
  );
  const exact = matching.find(
    (d) =>
      normalizePlatform({
        os: d.platform?.os ?? "",
        architecture: d.platform?.architecture ?? "",
        variant: d.platform?.variant,
      }).variant === w.variant,
  );
  const pick = exact ?? matching[0];
  if (!pick) {
    const have = candidates.map((d) => formatPlatform(d.platform as Platform)).join(", ");
    throw notFound(
      `no matching manifest for ${formatPlatform(w)} in the manifest list entries (it has ${have || "no platforms"})`,
    );
  }
  return pick;
}
