// The daemon's HTTP API: the Engine API (a Docker Engine API v1.44 subset) and the swarm API in
// one fastify application. Each resource's routes are a plugin in routes/*.ts; the cluster's sit
// in one scope (cluster.ts) whose hook forwards them to a manager. This file sets up what all of
// them share: version prefixes, body parsers, errors and the headers every answer carries.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { isShoalError, messageOf } from "../shared/errors.js";
import type { ClusterHost, EngineApiDeps } from "./deps.js";
import { clusterRoutes } from "./cluster.js";
import { systemRoutes } from "./routes/system.js";
import { containerRoutes } from "./routes/containers.js";
import { containerResourceRoutes } from "./routes/container-resources.js";
import { containerAttachRoutes } from "./routes/container-attach.js";
import { execRoutes } from "./routes/exec.js";
import { unimplementedMessage } from "./unimplemented.js";
import { imageRoutes } from "./routes/images.js";
import { registryRoutes } from "./routes/registry.js";
import { buildRoutes } from "./routes/build.js";
import { volumeRoutes } from "./routes/volumes.js";
import { networkRoutes } from "./routes/networks.js";
import { swarmMembershipRoutes } from "./routes/swarm.js";
import { eventRoutes } from "./routes/events.js";
import { EventLog } from "../agent/engine/events.js";
import { containerFileRoutes } from "./routes/container-files.js";
import { systemDfRoutes } from "./routes/system-df.js";

export const API_VERSION = "1.44";
export const MIN_API_VERSION = "1.24";

export interface ApiDeps extends EngineApiDeps {
  /** The daemon's Swarm: membership, the control API while it manages, where to forward. */
  swarm: ClusterHost;
}

function versionNumber(v: string): number {
  const [major, minor] = v.split(".").map(Number);
  return major * 1000 + minor;
}

/** Strip `/v1.NN`; a version outside what shoal speaks goes to a route that says so. */
export function rewriteVersionedUrl(url: string): string {
  const m = /^\/v(\d+\.\d+)(\/.*)?$/.exec(url);
  if (!m) return url;
  const v = versionNumber(m[1]);
  if (v > versionNumber(API_VERSION) || v < versionNumber(MIN_API_VERSION)) {
    return `/_unsupported_version/${m[1]}`;
  }
  return m[2] ?? "/";
}

export function buildApi(deps: ApiDeps): FastifyInstance {
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.log.child({ component: "engine-api" }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    rewriteUrl: (req) => rewriteVersionedUrl(req.url ?? "/"),
    bodyLimit: 16 * 1024 * 1024,
    // Docker ids and image references carry ':' and '/', which must reach handlers untouched.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1024 },
  });

  // The docker CLI sends `Content-Type: application/json` with empty bodies (start, stop, ...).
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === "") return done(null, {});
    try {
      done(null, JSON.parse(text));
    } catch {
      done(Object.assign(new Error("invalid JSON in request body"), { statusCode: 400 }), undefined);
    }
  });
  // Archives (load, import, build contexts) stay streams; handlers read request.body as a Readable.
  app.addContentTypeParser("*", (_req, payload, done) => done(null, payload));
  // text/plain keeps fastify's own parser here; see api/stream/raw-tar-body.ts for import and cp.

  app.setErrorHandler((error, request, reply) => {
    if (isShoalError(error)) {
      if (error.status >= 500) request.log.error({ err: error }, "request failed");
      if (error.status === 304) return reply.code(304).send();
      return reply.code(error.status).send({ message: error.message });
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (status && status < 500) return reply.code(status).send({ message: messageOf(error) });
    request.log.error({ err: error, url: request.url }, "request failed");
    return reply.code(500).send({ message: messageOf(error) });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ message: unimplementedMessage(request.method, request.url) });
  });
  app.addHook("onSend", async (_request, reply, payload) => {
    reply.header("Api-Version", API_VERSION);
    reply.header("Server", `shoal/${deps.info.version} (linux)`);
    // dockerd sends "application/json" without a charset; the docker CLI reads an error's
    // {"message"} only when the type is exactly that (else it prints the raw body).
    if (reply.getHeader("content-type") === "application/json; charset=utf-8") {
      reply.header("Content-Type", "application/json");
    }
    return payload;
  });

  app.all("/_unsupported_version/:version", async (request, reply) => {
    const { version } = request.params as { version: string };
    const tooNew = versionNumber(version) > versionNumber(API_VERSION);
    const message = tooNew
      ? `client version ${version} is too new. Maximum supported API version is ${API_VERSION}`
      : `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`;
    return reply.code(400).send({ message });
  });

  app.register(systemRoutes, deps);
  app.register(containerRoutes, deps);
  app.register(containerResourceRoutes, deps);
  app.register(containerAttachRoutes, deps);
  app.register(execRoutes, deps);
  app.register(containerFileRoutes, deps);
  app.register(systemDfRoutes, deps);
  app.register(imageRoutes, deps);
  app.register(registryRoutes, deps);
  app.register(buildRoutes, deps);
  app.register(volumeRoutes, deps);
  app.register(networkRoutes, deps);
  app.register(eventRoutes, { events: deps.events ?? new EventLog() });
  app.register(swarmMembershipRoutes, { host: deps.swarm });
  app.register(clusterRoutes, {
    host: deps.swarm,
    engine: deps.containers,
    log: deps.log.child({ component: "forward" }),
  });
  return app;
}
