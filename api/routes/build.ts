// `POST /build` (Docker's classic builder API: the context as a tar body, options in the query,
// JSON-lines output) and `POST /build/prune`. The context is unpacked and the Dockerfile checked
// before the answer starts, so a bad Dockerfile or an unknown base image is a 400/404 with
// {"message"}; once the 200 is out, a failing step arrives as Docker's {"errorDetail","error"}
// line. A client that hangs up cancels the build (its RUN container is killed and removed).
import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import type { Readable } from "node:stream";
import { internal, invalid, messageOf } from "../../shared/errors.js";
import { parseReference } from "../../shared/reference.js";
import { registryHostOf, type AuthConfig } from "../../shared/registry-auth.js";
import {
  BuildStepError,
  type Builder,
  type BuildOptions,
  type PullFn,
} from "../../agent/engine/builder/builder.js";
import { credentialsOf } from "../../agent/engine/registry/service.js";
import { jsonLinesResponse } from "../stream/json-lines.js";
import { qBool, qList, qString, type Query } from "../../shared/query.js";
import type { EngineApiDeps } from "../deps.js";

function jsonMap(raw: string | undefined, name: string, nullable: boolean): Record<string, string | null> {
  if (raw === undefined || raw === "") return {};
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw invalid(`invalid ${name} "${raw}": expected a JSON object such as {"KEY":"value"}`);
  }
  if (v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw invalid(`invalid ${name}: expected a JSON object`);
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x !== "string" && !(nullable && x === null))
      throw invalid(`invalid ${name}: the value of "${k}" must be a string`);
  }
  return v as Record<string, string | null>;
}

/** The docker CLI sends every known registry's credentials in X-Registry-Config (base64 JSON). */
function registryConfig(request: FastifyRequest): Record<string, AuthConfig> {
  const h = request.headers["x-registry-config"];
  const raw = Array.isArray(h) ? h[0] : h;
  if (!raw) return {};
  try {
    const v = JSON.parse(Buffer.from(raw, "base64").toString("utf8")) as unknown;
    return typeof v === "object" && v !== null ? (v as Record<string, AuthConfig>) : {};
  } catch {
    return {};
  }
}

export type BuildRoutesOptions = Pick<EngineApiDeps, "builder" | "registry">;

export const buildRoutes: FastifyPluginAsync<BuildRoutesOptions> = async (app, deps) => {
  const builderOf = (): Builder => {
    if (!deps.builder) throw internal("this daemon has no builder configured");
    return deps.builder;
  };

  app.post<{ Querystring: Query }>("/build", async (request, reply) => {
    const q = request.query;
    if (qString(q, "remote")) {
      throw invalid(
        "building from a remote context (a URL or git repository) is not supported: shoal has no network for builds; send the context as a tar",
      );
    }
    const body = request.body as Readable | undefined;
    if (!body || typeof (body as Partial<Readable>).pipe !== "function")
      throw invalid(
        "the build needs a context: send it as a tar (optionally compressed) in the request body",
      );
    const options: BuildOptions = {
      dockerfile: qString(q, "dockerfile") || undefined,
      tags: qList(q, "t").filter((t) => t !== ""),
      buildArgs: jsonMap(qString(q, "buildargs"), "buildargs", true),
      target: qString(q, "target") || undefined,
      noCache: qBool(q, "nocache"),
      labels: jsonMap(qString(q, "labels"), "labels", false) as Record<string, string>,
      quiet: qBool(q, "q"),
      rm: qBool(q, "rm", true),
    };
    const auths = registryConfig(request);
    const registry = deps.registry;
    const pull: PullFn | undefined = registry
      ? async (ref, emit, signal) => {
          const host = parseReference(ref).domain;
          const auth = Object.entries(auths).find(([k]) => registryHostOf(k) === host)?.[1];
          const job = await registry.preparePull(
            { reference: ref, credentials: credentialsOf(auth) },
            signal,
          );
          await job.run(emit, signal);
        }
      : undefined;
    const job = await builderOf().prepare(body, options, pull);
    const controller = new AbortController();
    let finished = false;
    const out = jsonLinesResponse(reply);
    reply.raw.on("close", () => {
      if (!finished) controller.abort();
    });
    try {
      await job.run((m) => {
        if (!controller.signal.aborted) out.write(m);
      }, controller.signal);
    } catch (e) {
      const message = messageOf(e);
      request.log.info({ build: job.id, err: message }, "build failed");
      if (!controller.signal.aborted) {
        const code = e instanceof BuildStepError ? e.code : undefined;
        out.write({ errorDetail: { message, ...(code !== undefined ? { code } : {}) }, error: message });
      }
    } finally {
      await job.cleanup();
      finished = true;
      out.end();
    }
  });

  app.post("/build/prune", async () => builderOf().pruneCache());
};
