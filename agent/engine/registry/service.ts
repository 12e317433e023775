// The registry side of the engine: pull, push and login, with the daemon's registry settings
// (insecure registries, certs dir). Routes call prepare*() first, so that errors found before any
// transfer (unknown tag, wrong credentials, unreachable registry) are proper HTTP errors, then
// run() with a progress callback once the 200 is out.
import { unauthorized } from "../../../shared/errors.js";
import type { Logger } from "../../../shared/logging.js";
import { registryHostOf, type AuthConfig } from "../../../shared/registry-auth.js";
import type { ImageDistribution } from "../image/distribution.js";
import type { RegistryCredentials } from "./auth.js";
import { RegistryClient, type RetryPolicy } from "./client.js";
import { RegistryHosts, type RegistryHostsOptions } from "./hosts.js";
import { PullJob, type PullRequest, type RegistryContext } from "./pull.js";
import { PushJob, type PushRequest } from "./push.js";
import { preparePullAll, type PullAllJob } from "./pull-all.js";

export interface RegistryServiceOptions extends RegistryHostsOptions {
  /** Layers downloaded at once per pull (default 3) and uploaded at once per push (default 5). */
  downloads?: number;
  uploads?: number;
  retry?: RetryPolicy;
}

/** X-Registry-Auth's AuthConfig → what the client sends. */
export function credentialsOf(auth: AuthConfig | undefined): RegistryCredentials | undefined {
  if (!auth) return undefined;
  const c: RegistryCredentials = {};
  if (auth.username !== undefined) c.username = auth.username;
  if (auth.password !== undefined) c.password = auth.password;
  if (auth.identitytoken !== undefined) c.identityToken = auth.identitytoken;
  if (auth.registrytoken !== undefined) c.registryToken = auth.registrytoken;
  return Object.keys(c).length > 0 ? c : undefined;
}

export class RegistryService {
  readonly hosts: RegistryHosts;
  private readonly ctx: RegistryContext;

  constructor(store: () => ImageDistribution, options: RegistryServiceOptions, log: Logger) {
    this.hosts = new RegistryHosts(options);
    this.ctx = {
      hosts: this.hosts,
      store,
      log,
      downloads: options.downloads,
      uploads: options.uploads,
      retry: options.retry,
    };
  }

  preparePull(req: PullRequest, signal?: AbortSignal): Promise<PullJob> {
    return PullJob.prepare(this.ctx, req, signal);
  }

  /** `pull -a`: every tag of the repository `req.reference` names (pull-all.ts). */
  preparePullAll(req: PullRequest, signal?: AbortSignal): Promise<PullAllJob> {
    return preparePullAll(this.ctx, req, signal);
  }

  preparePush(req: PushRequest): Promise<PushJob> {
    return PushJob.prepare(this.ctx, req);
  }

  /** `POST /auth`: check credentials against the registry (401 with its message when wrong). */
  async login(auth: AuthConfig): Promise<{ Status: string; IdentityToken: string }> {
    const creds = credentialsOf(auth);
    if (!creds?.username && !creds?.identityToken)
      throw unauthorized("login needs a username and a password (or an identity token)");
    const host = registryHostOf(auth.serveraddress);
    const client = new RegistryClient(this.hosts, host, creds, this.ctx.log, this.ctx.retry);
    await client.checkAuth();
    this.ctx.log.info({ registry: host, user: creds.username }, "registry login checked");
    return { Status: "Login Succeeded", IdentityToken: "" };
  }

  close(): Promise<void> {
    return this.hosts.close();
  }
}
