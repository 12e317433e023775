// A client for one registry (OCI distribution spec / Docker registry API v2), for one operation
// and one set of credentials. It pings /v2/ to pick HTTPS or (for insecure registries) HTTP and
// to learn the auth challenge, answers Bearer challenges with tokens (cached per scope) and
// Basic ones with the credentials, retries network errors, 5xx and 429 with backoff, and turns
// the registry's `{"errors": [...]}` answers into ShoalErrors that keep its message.
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { request, type Dispatcher } from "undici";
import {
  ShoalError,
  errnoCode,
  internal,
  invalid,
  isShoalError,
  messageOf,
  notFound,
  unauthorized,
  forbidden,
} from "../../../shared/errors.js";
import type { Logger } from "../../../shared/logging.js";
import {
  basicAuthorization,
  mergeScopes,
  parseChallenges,
  pickChallenge,
  repositoryScope,
  type Challenge,
  type RegistryCredentials,
} from "./auth.js";
import { apiHostOf, type RegistryHosts } from "./hosts.js";

export const mediaTypes = {
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerForeignLayerGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  dockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
} as const;

export const manifestAccept = [
  mediaTypes.dockerManifest,
  mediaTypes.dockerList,
  mediaTypes.ociManifest,
  mediaTypes.ociIndex,
].join(", ");

export const indexMediaTypes: ReadonlySet<string> = new Set([mediaTypes.dockerList, mediaTypes.ociIndex]);

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

const defaultRetry: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 8_000 };

export type RequestBody = Buffer | string | Readable | null;

export interface CallOptions {
  method: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** A path under the registry ("/v2/...") or an absolute URL (an upload location). */
  url: string;
  /** Token scopes the request needs ("repository:a/b:pull"). */
  scopes: string[];
  headers?: Record<string, string>;
  /** Makes the body; called again when the request is retried. */
  body?: () => RequestBody;
  signal?: AbortSignal;
  /** Retry network errors, 5xx and 429 (default true). */
  retry?: boolean;
}

export type RegistryResponse = Dispatcher.ResponseData;

export interface FetchedManifest {
  raw: Buffer;
  mediaType: string;
  digest: string;
}

interface Endpoint {
  base: string;
  scheme: "https" | "http";
  dispatcher: Dispatcher;
  challenge?: Challenge;
}

const maxManifestBytes = 4 << 20;
const maxErrorBytes = 64 << 10;

const transientCodes = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED",
]);

const certificateCodes = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** The error code of e or of its cause (undici wraps some socket errors). */
function codeOf(e: unknown): string | undefined {
  return errnoCode(e) ?? errnoCode((e as { cause?: unknown } | undefined)?.cause);
}

export function isTransient(e: unknown): boolean {
  const code = codeOf(e);
  return code !== undefined && transientCodes.has(code);
}

function isCertificateError(e: unknown): boolean {
  const code = codeOf(e);
  return code !== undefined && certificateCodes.has(code);
}

function sha256Hex(data: Buffer): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** Read a body up to cap bytes (an answer larger than that is refused). */
export async function readBody(res: RegistryResponse, cap: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    size += b.length;
    if (size > cap) {
      res.body.destroy();
      throw invalid(`${what} is larger than ${cap} bytes; refused`);
    }
    parts.push(b);
  }
  return Buffer.concat(parts);
}

const header = (res: RegistryResponse, name: string): string | undefined => {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/** Docker's rendering of a registry error code: MANIFEST_UNKNOWN → "manifest unknown". */
const codeText = (code: string): string => code.toLowerCase().replace(/_/g, " ");

/**
 * A ShoalError for a registry's error answer, with the registry's own message
 * ("manifest unknown: manifest unknown", "unauthorized: authentication required").
 */
async function registryError(res: RegistryResponse, context: string): Promise<ShoalError> {
  const text = (await readBody(res, maxErrorBytes, "error answer").catch(() => Buffer.alloc(0))).toString(
    "utf8",
  );
  let detail = "";
  try {
    const parsed = JSON.parse(text) as {
      errors?: Array<{ code?: string; message?: string }>;
      details?: string;
    };
    if (Array.isArray(parsed.errors) && parsed.errors.length > 0) {
      detail = parsed.errors
        .map((e) => [e.code ? codeText(e.code) : undefined, e.message].filter(Boolean).join(": "))
        .join("; ");
    } else if (typeof parsed.details === "string") {
      detail = parsed.details;
    }
  } catch {
    detail = text.trim().split("\n")[0]?.slice(0, 200) ?? "";
  }
  const status = res.statusCode;
  // HEAD answers have no body: say what the status means, in the registry's own words.
  if (detail === "" && status === 401) detail = "unauthorized: authentication required";
  if (detail === "" && status === 403) detail = "denied: requested access to the resource is denied";
  if (detail === "") detail = `the registry answered HTTP ${status}`;
  const message = context ? `${context}: ${detail}` : detail;
  if (status === 401) return unauthorized(message);
  if (status === 403) return forbidden(message);
  if (status === 404) return notFound(message);
  if (status === 400 || status === 405 || status === 413 || status === 416) return invalid(message);
  return internal(message);
}

export class RegistryClient {
  /** Host:port API requests go to ("registry-1.docker.io" for docker.io). */
  readonly host: string;
  private endpoint?: Promise<Endpoint>;
  private readonly tokens = new Map<string, { token: string; expires: number }>();

  constructor(
    private readonly hosts: RegistryHosts,
    /** The reference domain ("docker.io", "127.0.0.1:5000"). */
    readonly domain: string,
    private readonly creds: RegistryCredentials | undefined,
    private readonly log?: Logger,
    private readonly retryPolicy: RetryPolicy = defaultRetry,
  ) {
    this.host = apiHostOf(domain);
  }

  /** Pick the scheme and learn the auth challenge (GET /v2/); errors say what to fix. */
  ping(): Promise<void> {
    return this.connect().then(() => undefined);
  }

  private connect(): Promise<Endpoint> {
    this.endpoint ??= this.selectEndpoint();
    const p = this.endpoint;
    p.catch(() => {
      if (this.endpoint === p) this.endpoint = undefined;
    });
    return p;
  }

  private async selectEndpoint(): Promise<Endpoint> {
    const schemes: Array<"https" | "http"> = (await this.hosts.isInsecure(this.host))
      ? ["https", "http"]
      : ["https"];
    const failures: Array<{ scheme: string; error: unknown }> = [];
    for (const scheme of schemes) {
      const dispatcher = await this.hosts.dispatcher(this.host, scheme);
      const base = `${scheme}://${this.host}`;
      try {
        const res = await this.send(dispatcher, "GET", `${base}/v2/`, {}, undefined, undefined, {
          // Connection errors decide the fallback to HTTP: only 5xx/429 are retried here.
          retryNetwork: false,
          retry: true,
        });
        await res.body.dump();
        if (res.statusCode === 200 || res.statusCode === 401) {
          const challenge = pickChallenge(parseChallenges(res.headers["www-authenticate"]));
          this.log?.debug({ registry: this.host, scheme, challenge: challenge?.scheme }, "registry endpoint");
          return { base, scheme, dispatcher, challenge };
        }
        throw internal(`${base}/v2/ answered HTTP ${res.statusCode}; is this a registry?`);
      } catch (e) {
        failures.push({ scheme, error: e });
      }
    }
    throw this.unreachable(failures);
  }

  private unreachable(failures: Array<{ scheme: string; error: unknown }>): ShoalError {
    const https = failures.find((f) => f.scheme === "https")?.error;
    const http = failures.find((f) => f.scheme === "http")?.error;
    if (https !== undefined && isCertificateError(https)) {
      return internal(
        `cannot verify the TLS certificate of registry ${this.host} (${codeOf(https)}: ${messageOf(https)}); ` +
          `if the registry uses its own CA, put that CA in ${this.hosts.certsFolder(this.host)}/ca.crt` +
          (http !== undefined ? ` (plain HTTP failed too: ${messageOf(http)})` : ""),
      );
    }
    const parts = failures.map((f) => `${f.scheme}: ${describeNetworkError(f.error)}`);
    const hint =
      http === undefined && https !== undefined && !isShoalError(https)
        ? `; if it serves plain HTTP, mark it insecure (shoald --insecure-registry ${this.host})`
        : "";
    return internal(`cannot reach registry ${this.host}: ${parts.join("; ")}${hint}`);
  }

  /**
   * Check the credentials (a 401 carries the registry's message). Without credentials, only a
   * registry that allows nothing anonymously (Basic auth) fails: token servers may hand out
   * anonymous tokens. `scopes` are what the token must be asked for.
   */
  async checkAuth(scopes: string[] = []): Promise<void> {
    const ep = await this.connect();
    if (!ep.challenge) return; // the registry asks for nothing
    const hasCreds = Boolean(this.creds?.username || this.creds?.identityToken || this.creds?.registryToken);
    if (ep.challenge.scheme === "bearer") {
      // The token server judges the credentials.
      if (hasCreds) await this.token(ep.challenge, scopes);
      return;
    }
    const res = await this.call({ method: "GET", url: "/v2/", scopes: [] });
    if (res.statusCode === 200) {
      await res.body.dump();
      return;
    }
    throw await registryError(res, "");
  }

  /** One request with auth; the caller owns (and must consume) the response body. */
  async call(opts: CallOptions): Promise<RegistryResponse> {
    const ep = await this.connect();
    let scopes = mergeScopes(opts.scopes);
    const url = opts.url.startsWith("/") ? `${ep.base}${opts.url}` : opts.url;
    for (let authTry = 0; ; authTry++) {
      const authz = await this.authorization(ep, scopes);
      const headers: Record<string, string> = { "user-agent": "shoal", ...opts.headers };
      if (authz !== undefined) headers.authorization = authz;
      let res: RegistryResponse;
      try {
        res = await this.send(ep.dispatcher, opts.method, url, headers, opts.body, opts.signal, {
          retry: opts.retry ?? true,
          retryNetwork: opts.retry ?? true,
        });
      } catch (e) {
        if (isShoalError(e) || opts.signal?.aborted) throw e;
        throw internal(`error talking to registry ${this.host}: ${describeNetworkError(e)}`, e);
      }
      if (res.statusCode !== 401 || authTry > 0) return res;
      const ch = pickChallenge(parseChallenges(res.headers["www-authenticate"]));
      if (!ch) return res;
      if (ch.scheme === "bearer") {
        // A registry may challenge a resource with a scope of its own: ask for that too.
        ep.challenge = ch;
        scopes = mergeScopes([...scopes, ...(ch.params.scope ? [ch.params.scope] : [])]);
        this.tokens.delete(this.tokenKey(ch, scopes));
        await res.body.dump();
        continue;
      }
      if (ch.scheme === "basic" && authz === undefined && this.creds?.username !== undefined) {
        ep.challenge = ch;
        await res.body.dump();
        continue;
      }
      return res;
    }
  }

  private async authorization(ep: Endpoint, scopes: string[]): Promise<string | undefined> {
    if (this.creds?.registryToken) return `Bearer ${this.creds.registryToken}`;
    const ch = ep.challenge;
    if (!ch) return undefined;
    if (ch.scheme === "basic") {
      return this.creds?.username !== undefined
        ? basicAuthorization(this.creds.username, this.creds.password ?? "")
        : undefined;
    }
    if (ch.scheme === "bearer") return `Bearer ${await this.token(ch, scopes)}`;
    return undefined;
  }

  private tokenKey(ch: Challenge, scopes: string[]): string {
    return `${ch.params.realm ?? ""}|${ch.params.service ?? ""}|${mergeScopes(scopes).join(" ")}`;
  }

  /** A bearer token from the challenge's realm (distribution's token spec, or OAuth2 with a refresh token). */
  private async token(ch: Challenge, scopes: string[]): Promise<string> {
    const key = this.tokenKey(ch, scopes);
    const cached = this.tokens.get(key);
    if (cached && cached.expires > Date.now()) return cached.token;
    const realm = ch.params.realm;
    if (!realm) throw internal(`registry ${this.host} sent a Bearer challenge without a realm`);
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch {
      throw internal(`registry ${this.host} sent an invalid token realm "${realm}"`);
    }
    if (realmUrl.protocol !== "https:" && realmUrl.protocol !== "http:")
      throw internal(`registry ${this.host} sent a token realm that is not http(s): "${realm}"`);
    const dispatcher = await this.hosts.dispatcher(
      realmUrl.host,
      realmUrl.protocol === "https:" ? "https" : "http",
    );
    const merged = mergeScopes(scopes);
    let res: RegistryResponse;
    const headers: Record<string, string> = { "user-agent": "shoal" };
    try {
      if (this.creds?.identityToken) {
        const form = new URLSearchParams({
          grant_type: "refresh_token",
          refresh_token: this.creds.identityToken,
          client_id: "shoal",
          ...(ch.params.service ? { service: ch.params.service } : {}),
        });
        if (merged.length > 0) form.set("scope", merged.join(" "));
        headers["content-type"] = "application/x-www-form-urlencoded";
        const body = form.toString();
        res = await this.send(dispatcher, "POST", realmUrl.href, headers, () => body, undefined, {
          retry: true,
          retryNetwork: true,
        });
      } else {
        if (ch.params.service) realmUrl.searchParams.set("service", ch.params.service);
        for (const s of merged) realmUrl.searchParams.append("scope", s);
        if (this.creds?.username !== undefined) {
          realmUrl.searchParams.set("account", this.creds.username);
          headers.authorization = basicAuthorization(this.creds.username, this.creds.password ?? "");
        }
        res = await this.send(dispatcher, "GET", realmUrl.href, headers, undefined, undefined, {
          retry: true,
          retryNetwork: true,
        });
      }
    } catch (e) {
      if (isShoalError(e)) throw e;
      throw internal(`cannot get a token from ${realmUrl.origin}: ${describeNetworkError(e)}`, e);
    }
    if (res.statusCode !== 200) {
      const err = await registryError(res, `getting a token from ${realmUrl.origin} failed`);
      if (res.statusCode === 400 || res.statusCode === 403) throw unauthorized(err.message);
      throw err;
    }
    const body = await readBody(res, 1 << 20, "token answer");
    let parsed: { token?: string; access_token?: string; expires_in?: number };
    try {
      parsed = JSON.parse(body.toString("utf8")) as typeof parsed;
    } catch {
      throw internal(`the token server ${realmUrl.origin} answered something that is not JSON`);
    }
    const token = parsed.token ?? parsed.access_token;
    if (!token) throw internal(`the token server ${realmUrl.origin} answered without a token`);
    // Tokens live at least 60 s by the spec; keep a margin.
    const lifetime = Math.max(60, parsed.expires_in ?? 60) * 1000;
    this.tokens.set(key, { token, expires: Date.now() + lifetime - 10_000 });
    return token;
  }

  /** HTTP with redirects (GET/HEAD) and retries; no auth here. */
  private async send(
    dispatcher: Dispatcher,
    method: CallOptions["method"],
    url: string,
    headers: Record<string, string>,
    body: (() => RequestBody) | undefined,
    signal: AbortSignal | undefined,
    opts: { retry: boolean; retryNetwork: boolean },
  ): Promise<RegistryResponse> {
    const policy = this.retryPolicy;
    for (let attempt = 1; ; attempt++) {
      const backoff = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      try {
        let target = url;
        let disp = dispatcher;
        let hdrs = headers;
        for (let hop = 0; ; hop++) {
          const res = await request(target, {
            method,
            headers: hdrs,
            body: body?.() ?? undefined,
            dispatcher: disp,
            signal,
          });
          const location = header(res, "location");
          const redirect = [301, 302, 303, 307, 308].includes(res.statusCode) && location !== undefined;
          if (redirect && (method === "GET" || method === "HEAD")) {
            await res.body.dump();
            if (hop >= 5) throw internal(`registry ${this.host}: too many redirects for ${url}`);
            const next = new URL(location, target);
            if (next.host !== new URL(target).host) {
              // Blob storage elsewhere (a CDN, S3): never send the registry's credentials there.
              hdrs = Object.fromEntries(
                Object.entries(hdrs).filter(([k]) => k.toLowerCase() !== "authorization"),
              );
              disp = await this.hosts.dispatcher(next.host, next.protocol === "http:" ? "http" : "https");
            }
            target = next.href;
            continue;
          }
          if (opts.retry && attempt < policy.attempts && (res.statusCode >= 500 || res.statusCode === 429)) {
            const after = Number(header(res, "retry-after"));
            const wait = Number.isFinite(after) && after > 0 ? Math.min(after * 1000, 30_000) : backoff;
            this.log?.debug(
              { registry: this.host, url: target, status: res.statusCode, wait },
              "registry retry",
            );
            await res.body.dump();
            await sleep(wait, undefined, { signal });
            break;
          }
          return res;
        }
      } catch (e) {
        if (signal?.aborted || isShoalError(e)) throw e;
        if (opts.retryNetwork && attempt < policy.attempts && isTransient(e)) {
          this.log?.debug({ registry: this.host, url, err: messageOf(e), attempt }, "registry retry");
          await sleep(backoff, undefined, { signal });
          continue;
        }
        throw e;
      }
    }
  }

  // --- The distribution API -------------------------------------------------------------

  /** GET a manifest by tag or digest; its digest is checked against what was asked and announced. */
  async getManifest(path: string, reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
    const res = await this.call({
      method: "GET",
      url: `/v2/${path}/manifests/${reference}`,
      scopes: [repositoryScope(path, ["pull"])],
      headers: { accept: manifestAccept },
      signal,
    });
    if (res.statusCode !== 200) {
      const ref = reference.startsWith("sha256:")
        ? `${this.domain}/${path}@${reference}`
        : `${this.domain}/${path}:${reference}`;
      const err = await registryError(res, "");
      const context = res.statusCode === 404 ? `manifest for ${ref} not found` : `pulling ${ref} failed`;
      throw new ShoalError(err.kind, `${context}: ${err.message}`);
    }
    const raw = await readBody(res, maxManifestBytes, `the manifest of ${path}:${reference}`);
    const digest = sha256Hex(raw);
    if (reference.startsWith("sha256:") && digest !== reference)
      throw internal(
        `manifest verification failed for ${this.domain}/${path}@${reference}: the registry sent content that hashes to ${digest}`,
      );
    const announced = header(res, "docker-content-digest");
    if (announced?.startsWith("sha256:") && announced !== digest)
      throw internal(
        `manifest verification failed for ${this.domain}/${path}:${reference}: the registry says ${announced} but the content hashes to ${digest}`,
      );
    return { raw, digest, mediaType: manifestMediaType(raw, header(res, "content-type")) };
  }

  /** Every tag of a repository (GET /v2/<path>/tags/list, following the registry's Link pages). */
  async listTags(path: string, signal?: AbortSignal): Promise<string[]> {
    const tags: string[] = [];
    let url = `/v2/${path}/tags/list?n=1000`;
    for (let page = 0; page < 100; page++) {
      const res = await this.call({ method: "GET", url, scopes: [repositoryScope(path, ["pull"])], signal });
      if (res.statusCode !== 200) {
        const err = await registryError(res, "");
        const context =
          res.statusCode === 404
            ? `repository ${this.domain}/${path} not found`
            : `listing the tags of ${this.domain}/${path} failed`;
        throw new ShoalError(err.kind, `${context}: ${err.message}`);
      }
      const body = JSON.parse((await readBody(res, 4 << 20, `the tag list of ${path}`)).toString("utf8")) as {
        tags?: unknown;
      };
      if (Array.isArray(body.tags)) for (const t of body.tags) if (typeof t === "string") tags.push(t);
      // Link: </v2/<path>/tags/list?n=1000&last=x>; rel="next"
      const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(header(res, "link") ?? "")?.[1];
      if (!next) break;
      url = next;
    }
    return tags;
  }

  async headBlob(path: string, digest: string, signal?: AbortSignal): Promise<boolean> {
    const res = await this.call({
      method: "HEAD",
      url: `/v2/${path}/blobs/${digest}`,
      scopes: [repositoryScope(path, ["pull"])],
      signal,
    });
    await res.body.dump();
    if (res.statusCode === 200) return true;
    if (res.statusCode === 404) return false;
    throw await registryError(res, `checking blob ${digest} in ${this.domain}/${path}`);
  }

  /** GET a blob; the caller reads (and verifies) the body. */
  async getBlob(path: string, digest: string, signal?: AbortSignal): Promise<RegistryResponse> {
    const res = await this.call({
      method: "GET",
      url: `/v2/${path}/blobs/${digest}`,
      scopes: [repositoryScope(path, ["pull"])],
      signal,
    });
    if (res.statusCode !== 200)
      throw await registryError(res, `fetching blob ${digest} from ${this.domain}/${path}`);
    return res;
  }

  /** A small blob (an image config), read whole and checked against its digest. */
  async fetchSmallBlob(path: string, digest: string, cap: number, signal?: AbortSignal): Promise<Buffer> {
    const res = await this.getBlob(path, digest, signal);
    const data = await readBody(res, cap, `blob ${digest}`);
    const got = sha256Hex(data);
    if (got !== digest)
      throw internal(
        `blob verification failed for ${digest} from ${this.domain}/${path}: the content hashes to ${got}; refused`,
      );
    return data;
  }

  /**
   * Ask the registry to mount a blob from another repository. Returns true when mounted;
   * otherwise the upload the registry opened instead is cancelled.
   */
  async mountBlob(path: string, digest: string, from: string, signal?: AbortSignal): Promise<boolean> {
    const res = await this.call({
      method: "POST",
      url: `/v2/${path}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`,
      scopes: [repositoryScope(path, ["pull", "push"]), repositoryScope(from, ["pull"])],
      headers: { "content-length": "0" },
      signal,
      retry: true,
    });
    await res.body.dump();
    if (res.statusCode === 201) return true;
    if (res.statusCode === 202) {
      const location = header(res, "location");
      if (location) {
        const cancel = await this.call({
          method: "DELETE",
          url: location,
          scopes: [repositoryScope(path, ["pull", "push"])],
          signal,
        }).catch(() => undefined);
        await cancel?.body.dump();
      }
      return false;
    }
    return false;
  }

  /**
   * Upload a blob: POST opens an upload session, PUT ?digest= sends the content and closes it
   * (the spec's "monolithic upload in two steps"). `open` is called again for a retry.
   */
  async uploadBlob(
    path: string,
    digest: string,
    size: number,
    open: () => Readable,
    signal?: AbortSignal,
  ): Promise<void> {
    const scopes = [repositoryScope(path, ["pull", "push"])];
    for (let attempt = 1; ; attempt++) {
      const start = await this.call({
        method: "POST",
        url: `/v2/${path}/blobs/uploads/`,
        scopes,
        headers: { "content-length": "0" },
        signal,
      });
      await start.body.dump().catch(() => undefined);
      const location = header(start, "location");
      if (start.statusCode !== 202 || !location) {
        throw await registryError(start, `starting the upload of ${digest} to ${this.domain}/${path} failed`);
      }
      const ep = await this.connect();
      const put = new URL(location, ep.base);
      put.searchParams.set("digest", digest);
      let res: RegistryResponse;
      try {
        // Not retried inside call(): a half-sent body needs a new upload session.
        res = await this.call({
          method: "PUT",
          url: put.href,
          scopes,
          headers: { "content-type": "application/octet-stream", "content-length": String(size) },
          body: open,
          signal,
          retry: false,
        });
      } catch (e) {
        if (attempt < this.retryPolicy.attempts && !signal?.aborted && isTransient((e as Error).cause ?? e)) {
          await sleep(Math.min(this.retryPolicy.maxDelayMs, this.retryPolicy.baseDelayMs * 2 ** attempt));
          continue;
        }
        throw e;
      }
      if (res.statusCode === 201 || res.statusCode === 204) {
        await res.body.dump();
        return;
      }
      if ((res.statusCode >= 500 || res.statusCode === 429) && attempt < this.retryPolicy.attempts) {
        await res.body.dump();
        await sleep(Math.min(this.retryPolicy.maxDelayMs, this.retryPolicy.baseDelayMs * 2 ** attempt));
        continue;
      }
      throw await registryError(res, `uploading ${digest} to ${this.domain}/${path} failed`);
    }
  }

  /** PUT a manifest under a tag (or digest); returns the digest the registry stored it under. */
  async putManifest(
    path: string,
    reference: string,
    raw: Buffer,
    mediaType: string,
    signal?: AbortSignal,
  ): Promise<string> {
    const res = await this.call({
      method: "PUT",
      url: `/v2/${path}/manifests/${reference}`,
      scopes: [repositoryScope(path, ["pull", "push"])],
      headers: { "content-type": mediaType },
      body: () => raw,
      signal,
    });
    if (res.statusCode !== 201 && res.statusCode !== 200 && res.statusCode !== 202) {
      throw await registryError(res, `pushing the manifest of ${this.domain}/${path}:${reference} failed`);
    }
    await res.body.dump();
    const digest = sha256Hex(raw);
    const announced = header(res, "docker-content-digest");
    if (announced?.startsWith("sha256:") && announced !== digest)
      throw internal(`the registry stored the manifest as ${announced}, but it hashes to ${digest}`);
    return digest;
  }
}

/** The media type of a manifest: its own mediaType field, else the Content-Type, else its shape. */
function manifestMediaType(raw: Buffer, contentType: string | undefined): string {
  let parsed: {
    mediaType?: unknown;
    schemaVersion?: unknown;
    manifests?: unknown;
    config?: unknown;
    layers?: unknown;
  };
  try {
    parsed = JSON.parse(raw.toString("utf8")) as typeof parsed;
  } catch {
    throw internal("the registry sent a manifest that is not JSON");
  }
  if (typeof parsed.mediaType === "string" && parsed.mediaType !== "") return parsed.mediaType;
  const ct = contentType?.split(";")[0].trim();
  if (parsed.schemaVersion === 1) return mediaTypes.dockerSchema1;
  if (ct && ct !== "application/json" && ct !== "application/octet-stream" && ct !== "text/plain") return ct;
  if (Array.isArray(parsed.manifests)) return mediaTypes.ociIndex;
  if (parsed.config !== undefined && Array.isArray(parsed.layers)) return mediaTypes.ociManifest;
  throw internal("the registry sent a manifest of unknown type");
}

function describeNetworkError(e: unknown): string {
  const code = codeOf(e);
  const msg = messageOf(e);
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ERR_SSL_WRONG_VERSION_NUMBER" || /wrong version number/i.test(msg))
    return "the server does not speak TLS";
  if (code && !msg.includes(code)) return `${msg} (${code})`;
  return msg;
}
