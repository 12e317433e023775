// The CLI's config.json, in the docker CLI's format so either tool can read what the other
// wrote: `{"auths": {"<registry>": {"auth": base64("user:password"), "identitytoken": ...}}}`.
// It lives in $SHOAL_CONFIG, else $DOCKER_CONFIG, else ~/.shoal. Other keys are kept as they are.
// Credential helpers (credsStore, credHelpers) are not run: credentials are read from `auths`.

import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import {
  authKeyFor,
  encodeRegistryAuth,
  registryHostOf,
  splitBasic,
  type AuthConfig,
} from "../shared/registry-auth.js";
import { CliError } from "./errors.js";

interface AuthEntry {
  auth?: string;
  identitytoken?: string;
  username?: string;
  password?: string;
  [key: string]: unknown;
}

export interface ConfigFile {
  auths?: Record<string, AuthEntry>;
  [key: string]: unknown;
}

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.SHOAL_CONFIG || env.DOCKER_CONFIG || join(homedir(), ".shoal");
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), "config.json");
}

export async function readConfigFile(path = configPath()): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new CliError(`cannot read ${path}: ${(e as Error).message}`);
  }
  if (text.trim() === "") return {};
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
      throw new Error("not an object");
    return parsed as ConfigFile;
  } catch (e) {
    throw new CliError(`${path} is not valid JSON (${(e as Error).message}); fix or remove it`);
  }
}

/** Write the file whole (temp file and rename), readable by its owner only: it holds passwords. */
export async function writeConfigFile(config: ConfigFile, path = configPath()): Promise<void> {
  const dir = join(path, "..");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, `${JSON.stringify(config, null, "\t")}\n`, { mode: 0o600 });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new CliError(`cannot write ${path}: ${(e as Error).message}`);
  }
}

/** The `auths` key that names a registry host, matching "https://host/v1/"-style keys too. */
function keyFor(config: ConfigFile, host: string): string | undefined {
  const want = registryHostOf(host);
  return Object.keys(config.auths ?? {}).find((k) => registryHostOf(k) === want);
}

/** Credentials stored for a registry host, as X-Registry-Auth wants them; undefined when none. */
export function credentialsFor(config: ConfigFile, host: string): AuthConfig | undefined {
  const key = keyFor(config, host);
  if (key === undefined) return undefined;
  const entry = config.auths?.[key] ?? {};
  const out: AuthConfig = { serveraddress: key };
  if (typeof entry.auth === "string" && entry.auth !== "") {
    try {
      [out.username, out.password] = splitBasic(entry.auth);
    } catch {
      throw new CliError(
        `the credentials stored for ${key} in ${configPath()} are damaged; run shoal login again`,
      );
    }
  } else {
    if (typeof entry.username === "string") out.username = entry.username;
    if (typeof entry.password === "string") out.password = entry.password;
  }
  if (typeof entry.identitytoken === "string" && entry.identitytoken !== "")
    out.identitytoken = entry.identitytoken;
  if (out.username === undefined && out.identitytoken === undefined) return undefined;
  return out;
}

export function storeCredentials(
  config: ConfigFile,
  host: string,
  creds: { username: string; password: string; identitytoken?: string },
): ConfigFile {
  const auths = { ...(config.auths ?? {}) };
  const old = keyFor(config, host);
  if (old !== undefined) delete auths[old];
  const entry: AuthEntry = creds.identitytoken
    ? { auth: Buffer.from(`${creds.username}:`).toString("base64"), identitytoken: creds.identitytoken }
    : { auth: Buffer.from(`${creds.username}:${creds.password}`).toString("base64") };
  auths[authKeyFor(host)] = entry;
  return { ...config, auths };
}

/** Remove a registry's credentials; returns whether there were any. */
export function eraseCredentials(config: ConfigFile, host: string): { config: ConfigFile; removed: boolean } {
  const key = keyFor(config, host);
  if (key === undefined) return { config, removed: false };
  const auths = { ...(config.auths ?? {}) };
  delete auths[key];
  return { config: { ...config, auths }, removed: true };
}

/** The X-Registry-Auth header for a registry host, from config.json; {} when not logged in. */
export async function registryAuthHeader(host: string): Promise<Record<string, string>> {
  const creds = credentialsFor(await readConfigFile(), host);
  return creds ? { "X-Registry-Auth": encodeRegistryAuth(creds) } : {};
}
