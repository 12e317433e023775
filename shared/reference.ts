// Docker image references ("busybox", "localhost:5000/a/b:1", "name@sha256:..."). Engine, CLI and
// manager must agree on how a short name expands and how it prints back, so the grammar of
// distribution/reference lives here once, with errors that say which part is wrong.
import { invalid } from "./errors.js";

export interface Reference {
  /** Registry host, with port: "docker.io", "localhost:5000". */
  domain: string;
  /** Repository path inside the registry: "library/busybox", "a/b". */
  path: string;
  tag?: string;
  /** "sha256:<64 hex>" */
  digest?: string;
}

export const defaultDomain = "docker.io";
export const defaultTag = "latest";

const component = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const domainPart =
  /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$/;
const ipv6Domain = /^\[[0-9a-fA-F:]+\](?::[0-9]+)?$/;
const tagPattern = /^[\w][\w.-]{0,127}$/;
const sha256Digest = /^sha256:[0-9a-f]{64}$/;
const anyDigest = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const fullHexId = /^[0-9a-f]{64}$/;

function bad(ref: string, why: string): Error {
  return invalid(`invalid reference format "${ref}": ${why}`);
}

/** Check a digest string; only sha256 is supported, as by Docker. */
export function validateDigest(digest: string, what = "digest"): string {
  if (sha256Digest.test(digest)) return digest;
  if (anyDigest.test(digest))
    throw invalid(`unsupported ${what} algorithm in "${digest}": only sha256 is supported`);
  throw invalid(`invalid ${what} "${digest}": expected sha256:<64 lowercase hex digits>`);
}

/**
 * Parse and normalise a reference the way the docker CLI does: a missing registry becomes
 * docker.io, a single-component Docker Hub name gains "library/". No default tag is added.
 */
export function parseReference(ref: string): Reference {
  if (ref.length === 0) throw bad(ref, "the reference is empty; give a name such as busybox:latest");
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!anyDigest.test(digest))
      throw bad(ref, `"${digest}" is not a digest; expected sha256:<64 hex digits>`);
    if (!sha256Digest.test(digest))
      throw bad(ref, `unsupported digest "${digest}": only sha256 with lowercase hex is supported`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagPattern.test(tag)) {
      throw bad(
        ref,
        `tag "${tag}" is invalid: use up to 128 letters, digits, "_", "." or "-", not starting with "." or "-"`,
      );
    }
  }
  if (rest.length === 0) throw bad(ref, "the repository name is empty");
  if (rest.length > 255) throw bad(ref, "the repository name is longer than 255 characters");
  if (fullHexId.test(rest)) {
    throw bad(ref, "a repository name cannot be a 64-character hexadecimal string (that is an image id)");
  }

  let domain = defaultDomain;
  let path = rest;
  const firstSlash = rest.indexOf("/");
  if (firstSlash >= 0) {
    const first = rest.slice(0, firstSlash);
    if (
      first.includes(".") ||
      first.includes(":") ||
      first === "localhost" ||
      first.toLowerCase() !== first
    ) {
      domain = first;
      path = rest.slice(firstSlash + 1);
    }
  }
  if (domain === "index.docker.io") domain = defaultDomain;
  if (!domainPart.test(domain) && !ipv6Domain.test(domain))
    throw bad(ref, `registry "${domain}" is not a valid host name[:port]`);
  if (domain === defaultDomain && !path.includes("/")) path = `library/${path}`;
  for (const part of path.split("/")) {
    if (part.length === 0)
      throw bad(ref, 'the repository name has an empty path component (double or trailing "/")');
    if (part.toLowerCase() !== part) throw bad(ref, `repository name "${rest}" must be lowercase`);
    if (!component.test(part)) {
      throw bad(
        ref,
        `path component "${part}" may only contain lowercase letters, digits and single separators ".", "_", "__" or "-"`,
      );
    }
  }
  return { domain, path, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** Adds ":latest" when a reference has neither tag nor digest, as `docker pull busybox` does. */
export function withDefaultTag(r: Reference): Reference {
  return r.tag === undefined && r.digest === undefined ? { ...r, tag: defaultTag } : r;
}

/** "docker.io/library/busybox" */
export function fullName(r: Reference): string {
  return `${r.domain}/${r.path}`;
}

/** The short name people type: "busybox", "user/app", "localhost:5000/a/b". */
export function familiarName(r: Reference): string {
  if (r.domain !== defaultDomain) return fullName(r);
  return r.path.startsWith("library/") && r.path.split("/").length === 2
    ? r.path.slice("library/".length)
    : r.path;
}

/** "busybox:latest", "busybox@sha256:...", "busybox:1@sha256:..." */
export function familiarString(r: Reference): string {
  return `${familiarName(r)}${r.tag !== undefined ? `:${r.tag}` : ""}${r.digest !== undefined ? `@${r.digest}` : ""}`;
}

/** "docker.io/library/busybox:latest" — the form containerd and OCI annotations use. */
export function fullString(r: Reference): string {
  return `${fullName(r)}${r.tag !== undefined ? `:${r.tag}` : ""}${r.digest !== undefined ? `@${r.digest}` : ""}`;
}

/**
 * Parse a reference that must name a tag (for `tag`, `load`, `import`): adds ":latest" and
 * refuses digests, because a digest cannot be pointed at another image.
 */
export function parseTagReference(ref: string): Reference {
  const r = withDefaultTag(parseReference(ref));
  if (r.digest !== undefined)
    throw invalid(`invalid tag "${ref}": a tag cannot contain a digest; use name:tag`);
  return r;
}
