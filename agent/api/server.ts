// The Engine API: a Docker Engine API v1.44 subset over fastify. Routes live in routes/*;
// this file sets up what all of them share: version prefixes, body parsers and errors.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Logger } from "../../shared/logging.js";
import { isShoalError, messageOf } from "../../shared/errors.js";
import type { ContainerEngineApi } from "../engine/container/api.js";
import type { ImageStoreApi } from "../engine/image/api.js";
import { registerSystemRoutes, type DaemonInfo } from "./routes/system.js";
import { registerContainerRoutes } from "./routes/containers.js";
import { registerImageRoutes } from "./routes/images.js";
import { registerRegistryRoutes } from "./routes/registry.js";
import { registerBuildRoutes } from "./routes/build.js";
import type { Builder } from "../engine/builder/builder.js";
import type { RegistryService } from "../engine/registry/service.js";
import { registerVolumeRoutes } from "./routes/volumes.js";
import type { VolumeStoreApi } from "../engine/volume/types.js";
import { registerNetworkRoutes } from "./routes/networks.js";
import type { HostNetworks } from "../engine/network/host-networks.js";
import type { ClusterNetworks } from "./cluster-networks.js";

export const API_VERSION = "1.44";
export const MIN_API_VERSION = "1.24";

export interface EngineApiDeps {
  containers: ContainerEngineApi;
  images: ImageStoreApi;
  volumes: VolumeStoreApi;
  networks: HostNetworks;
  log: Logger;
  info: DaemonInfo;
  /** The Dockerfile builder (agent/engine/builder/), for POST /build. */
  builder?: Builder;
  /** Pull, push and login (agent/engine/registry/). */
  registry?: RegistryService;
  /** /info's Swarm section while this node is in a cluster (the daemon wires it). */
  swarmInfo?: () => Record<string, unknown> | undefined;
  /**
   * The cluster's overlay networks while this node is a manager (undefined otherwise): the
   * /networks routes show them beside the local ones and send overlay creates and their
   * removals there (the daemon wires it; roles change at run time, hence a function).
   */
  clusterNetworks?: () => ClusterNetworks | undefined;
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

export function buildEngineApi(deps: EngineApiDeps): FastifyInstance {
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
    reply.code(404).send({
      message: `page not found: ${request.method} ${request.url} is not part of the shoal Engine API`,
    });
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

  registerSystemRoutes(app, deps);
  registerContainerRoutes(app, deps);
  registerImageRoutes(app, deps);
  registerRegistryRoutes(app, deps);
  registerBuildRoutes(app, deps);
  registerVolumeRoutes(app, deps);
  registerNetworkRoutes(app, deps);
  return app;
}
