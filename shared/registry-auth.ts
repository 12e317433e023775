// Registry credentials as the docker CLI and dockerd pass them around: the `X-Registry-Auth`
// header (base64url JSON) and the keys of config.json's `auths`. CLI and engine both use these,
// so the encoding and the registry-name normalisation live here once.
import { invalid } from "./errors.js";
import { defaultDomain } from "./reference.js";

/** Docker's AuthConfig (field names as on the wire). */
export interface AuthConfig {
  username?: string;
  password?: string;
  /** base64("user:password"), as config.json stores it. */
  auth?: string;
  serveraddress?: string;
  /** An OAuth2 refresh token a registry handed out at login. */
  identitytoken?: string;
  /** A bearer token to use as is. */
  registrytoken?: string;
  email?: string;
}

/** The config.json key Docker uses for Docker Hub. */
export const dockerHubAuthKey = "https://index.docker.io/v1/";

const hubAliases = new Set([
  "docker.io",
  "index.docker.io",
  "registry-1.docker.io",
  "registry.hub.docker.com",
]);

/**
 * The registry host a server address names: "https://127.0.0.1:5000/v2/" → "127.0.0.1:5000",
 * "https://index.docker.io/v1/" → "docker.io" (a reference's domain).
 */
export function registryHostOf(serverAddress: string | undefined): string {
  let s = (serverAddress ?? "").trim();
  if (s === "") return defaultDomain;
  s = s.replace(/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//, "");
  s = s.split("/")[0];
  const lower = s.toLowerCase();
  return hubAliases.has(lower) ? defaultDomain : lower;
}

/** The config.json `auths` key for a registry host: Docker Hub keeps its historic URL. */
export function authKeyFor(host: string): string {
  return registryHostOf(host) === defaultDomain ? dockerHubAuthKey : registryHostOf(host);
}

/** `X-Registry-Auth` value: base64url of the JSON, as the docker CLI sends it. */
export function encodeRegistryAuth(a: AuthConfig): string {
  return Buffer.from(JSON.stringify(a)).toString("base64url");
}

/**
 * Decode an `X-Registry-Auth` header; undefined when there is none (anonymous). Accepts
 * base64url or standard base64, padded or not. A `auth` field is split into user and password.
 */
export function decodeRegistryAuth(header: string | undefined): AuthConfig | undefined {
  const text = (header ?? "").trim();
  if (text === "") return undefined;
  if (!/^[A-Za-z0-9+/_=-]+$/.test(text))
    throw invalid("invalid X-Registry-Auth header: it is not base64-encoded JSON");
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text.replace(/\+/g, "-").replace(/\//g, "_"), "base64url").toString());
  } catch {
    throw invalid("invalid X-Registry-Auth header: it is not base64-encoded JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw invalid("invalid X-Registry-Auth header: expected a JSON object");
  const a = parsed as Record<string, unknown>;
  const str = (k: string): string | undefined => (typeof a[k] === "string" && a[k] !== "" ? a[k] : undefined);
  const out: AuthConfig = {};
  for (const k of [
    "username",
    "password",
    "auth",
    "serveraddress",
    "identitytoken",
    "registrytoken",
    "email",
  ]) {
    const v = str(k);
    if (v !== undefined) (out as Record<string, string>)[k] = v;
  }
  if (out.auth !== undefined && out.username === undefined) {
    const [user, pass] = splitBasic(out.auth);
    out.username = user;
    out.password = pass;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** base64("user:password") → [user, password]. */
export function splitBasic(auth: string): [string, string] {
  const plain = Buffer.from(auth, "base64").toString("utf8");
  const i = plain.indexOf(":");
  if (i < 0) throw invalid("invalid auth value: expected base64 of user:password");
  return [plain.slice(0, i), plain.slice(i + 1)];
}
