import { invalid } from "../../../shared/errors.js";
import { formatPlatform, normalizePlatform, parsePlatform, platformMatches } from "../registry/platform.js";
import type { ImageRecord } from "./types.js";

/**
 * `run/create --platform`: a local image of another platform is refused, not run (it would fail
 * with "exec format error" at best). A missing image is the caller's 404, so the CLI pulls it
 * for that platform.
 */
export function assertImagePlatform(image: ImageRecord, ref: string, wanted: string | undefined): void {
  if (!wanted) return;
  const want = parsePlatform(wanted);
  const have = normalizePlatform({
    os: image.config.os || "linux",
    architecture: image.config.architecture || "amd64",
    variant: image.config.variant,
  });
  if (!platformMatches(want, have))
    throw invalid(
      `image ${ref} is for platform ${formatPlatform(have)}, but --platform asked for ${formatPlatform(want)}: ` +
        `pull the ${formatPlatform(want)} variant of the image (docker pull --platform ${formatPlatform(want)} ${ref}) or leave --platform out`,
    );
}
