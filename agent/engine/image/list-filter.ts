import { invalid } from "../../../shared/errors.js";
import type { ImageRecord } from "./types.js";

// The filters of GET /images/json as dockerd 25 applies them (daemon/images/image_list.go):
// `reference` keeps an image when one of its references matches and lists only the matching
// references (so `docker images busybox` shows no row for the same image's other tags);
// `before`/`since` compare creation times with a named image's; `until` with a timestamp.

const ACCEPTED = new Set(["dangling", "label", "before", "since", "reference", "until"]);

/** Go's path.Match for the reference patterns: `*` and `?` stop at "/", `[...]` classes. */
function globToRegExp(glob: string): RegExp {
  let out = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*") out += "[^/]*";
    else if (c === "?") out += "[^/]";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 1);
      if (end < 0) throw invalid(`invalid reference filter "${glob}": unclosed [`);
      const body = glob.slice(i + 1, end).replace(/\\/g, "\\\\");
      out += `[${body.startsWith("^") ? `^${body.slice(1)}` : body}]`;
      i = end;
    } else out += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${out}$`);
}

/** The name part of a familiar reference: "localhost:5000/app:1" → "localhost:5000/app". */
function familiarName(ref: string): string {
  const at = ref.indexOf("@");
  const noDigest = at < 0 ? ref : ref.slice(0, at);
  const colon = noDigest.lastIndexOf(":");
  return colon > noDigest.lastIndexOf("/") ? noDigest.slice(0, colon) : noDigest;
}

const createdOf = (i: ImageRecord): number => {
  const t = Date.parse(i.config.created ?? i.loadedAt);
  return Number.isFinite(t) ? t : 0;
};

/** Docker's timestamps: RFC 3339 (or a date), Unix seconds, or a duration back from now. */
function parseUntil(value: string): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const d = /^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)$/.exec(value);
  if (d) {
    const unit = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[d[2]] ?? 1;
    return Date.now() - Number(d[1]) * unit;
  }
  const t = Date.parse(value);
  if (!Number.isFinite(t))
    throw invalid(`invalid until filter "${value}": use a timestamp, Unix seconds or a duration such as 10m`);
  return t;
}

export interface ListedImage {
  image: ImageRecord;
  /** The references to show: all of them, or only those the reference filter matched. */
  repoTags: string[];
  repoDigests: string[];
}

/**
 * Apply before/since/until/reference/label to the images the caller already chose (dangling and
 * intermediate handling stay with it). `resolve` finds a named image (404 when there is none).
 */
export function filterImages(
  list: ImageRecord[],
  filters: Record<string, string[]>,
  resolve: (ref: string) => ImageRecord,
): ListedImage[] {
  for (const key of Object.keys(filters))
    if (!ACCEPTED.has(key)) throw invalid(`invalid filter '${key}': images take ${[...ACCEPTED].join(", ")}`);
  let before = Number.POSITIVE_INFINITY;
  let since = Number.NEGATIVE_INFINITY;
  for (const v of filters.before ?? []) before = Math.min(before, createdOf(resolve(v)));
  for (const v of filters.until ?? []) before = Math.min(before, parseUntil(v));
  for (const v of filters.since ?? []) since = Math.max(since, createdOf(resolve(v)));
  const patterns = (filters.reference ?? []).map(globToRegExp);
  const matches = (ref: string): boolean =>
    patterns.length === 0 || patterns.some((p) => p.test(ref) || p.test(familiarName(ref)));
  const out: ListedImage[] = [];
  for (const image of list) {
    const created = createdOf(image);
    if (!(created < before) || !(created > since)) continue;
    const repoTags = image.repoTags.filter(matches);
    const repoDigests = image.repoDigests.filter(matches);
    if (patterns.length > 0 && repoTags.length === 0 && repoDigests.length === 0) continue;
    out.push({ image, repoTags, repoDigests });
  }
  return out;
}
