// Pull (`POST /images/create?fromImage=`), push (`POST /images/{name}/push`) and login
// (`POST /auth`). Pull and push resolve everything they can before answering, so an unknown
// tag is a 404 and wrong credentials a 401; once the 200 is out, errors travel in the stream as
// Docker's {"errorDetail": {"message"}, "error"} line. A client that hangs up cancels the transfer.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { forbidden, internal, invalid, isShoalError, messageOf } from "../../shared/errors.js";
import { decodeRegistryAuth, type AuthConfig } from "../../shared/registry-auth.js";
import { familiarString, parseReference } from "../../shared/reference.js";
import { credentialsOf, type RegistryService } from "../../agent/engine/registry/service.js";
import type { Emit } from "../../agent/engine/registry/progress.js";
import { jsonLinesResponse } from "../stream/json-lines.js";
import { qString, type Query } from "../../shared/query.js";
import type { EngineApiDeps } from "../deps.js";

/** POST /auth; pull and push are reached through the image routes. */
export type RegistryRoutesOptions = Pick<EngineApiDeps, "registry">;

function registryOf(deps: RegistryRoutesOptions): RegistryService {
  if (!deps.registry) throw internal("this daemon has no registry client configured");
  return deps.registry;
}

function authHeader(request: FastifyRequest): AuthConfig | undefined {
  const h = request.headers["x-registry-auth"];
  return decodeRegistryAuth(Array.isArray(h) ? h[0] : h);
}

/**
 * The docker CLI answers a 401 from pull or push by prompting for a username, and when stdin is
 * not a terminal it waits for one forever; dockerd never sends it a 401 there. So the docker CLI
 * gets the registry's refusal as a 403 (same message) and fails at once; everyone else gets 401.
 */
async function refusalFor<T>(request: FastifyRequest, prepare: () => Promise<T>): Promise<T> {
  try {
    return await prepare();
  } catch (e) {
    const ua = request.headers["user-agent"] ?? "";
    if (isShoalError(e) && e.kind === "unauthorized" && ua.startsWith("Docker-Client/"))
      throw forbidden(e.message);
    throw e;
  }
}

/** The reference `fromImage` and `tag` name together (a digest may come in either). */
export function pullReference(fromImage: string, tag: string | undefined): string {
  const r = parseReference(fromImage);
  if (!tag) return familiarString(r);
  const base = { domain: r.domain, path: r.path };
  if (tag.startsWith("sha256:")) return familiarString(parseReference(`${familiarString(base)}@${tag}`));
  return familiarString(parseReference(`${familiarString(base)}:${tag}`));
}

/** Stream a job's progress; the job runs until done, failed, or the client is gone. */
async function streamJob(
  request: FastifyRequest,
  reply: FastifyReply,
  run: (emit: Emit, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const controller = new AbortController();
  const out = jsonLinesResponse(reply);
  let finished = false;
  reply.raw.on("close", () => {
    if (!finished) controller.abort();
  });
  try {
    await run((m) => {
      if (!controller.signal.aborted) out.write(m);
    }, controller.signal);
  } catch (e) {
    const message = messageOf(e);
    if (!controller.signal.aborted) {
      request.log.warn({ err: message, url: request.url }, "registry transfer failed");
      out.write({ errorDetail: { message }, error: message });
    }
  } finally {
    finished = true;
    out.end();
  }
}

export async function pullImage(
  deps: RegistryRoutesOptions,
  request: FastifyRequest<{ Querystring: Query }>,
  reply: FastifyReply,
): Promise<void> {
  const q = request.query;
  const fromImage = qString(q, "fromImage");
  if (!fromImage) throw invalid("pull needs an image: pass ?fromImage=<name>");
  const reference = pullReference(fromImage, qString(q, "tag"));
  const named = parseReference(fromImage);
  // No tag anywhere is dockerd's "all tags" (docker pull -a); the CLI sends tag=latest otherwise.
  const allTags = !qString(q, "tag") && named.tag === undefined && named.digest === undefined;
  const pullRequest = {
    reference,
    platform: qString(q, "platform") || undefined,
    credentials: credentialsOf(authHeader(request)),
  };
  const registry = registryOf(deps);
  type Runnable = { run: (emit: Emit, signal: AbortSignal) => Promise<void> };
  const job = await refusalFor<Runnable>(request, () =>
    allTags ? registry.preparePullAll(pullRequest) : registry.preparePull(pullRequest),
  );
  await streamJob(request, reply, (emit, signal) => job.run(emit, signal));
}

export async function pushImage(
  deps: RegistryRoutesOptions,
  name: string,
  request: FastifyRequest<{ Querystring: Query }>,
  reply: FastifyReply,
): Promise<void> {
  const job = await refusalFor(request, () =>
    registryOf(deps).preparePush({
      name,
      tag: qString(request.query, "tag") || undefined,
      credentials: credentialsOf(authHeader(request)),
    }),
  );
  await streamJob(request, reply, (emit, signal) => job.run(emit, signal));
}

export const registryRoutes: FastifyPluginAsync<RegistryRoutesOptions> = async (app, deps) => {
  app.post("/auth", async (request) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    const str = (k: string): string | undefined =>
      typeof body[k] === "string" ? (body[k] as string) : undefined;
    return registryOf(deps).login({
      username: str("username"),
      password: str("password"),
      serveraddress: str("serveraddress"),
      identitytoken: str("identitytoken"),
    });
  });
};
