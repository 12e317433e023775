// The cluster routes in one encapsulated scope: GET /swarm and /swarm/update, /nodes, /services
// (with their logs) and /tasks. Its onRequest hook hands each request to the router first, which
// sends it to a manager when this node cannot answer it (api/forward.ts); every route registered
// here is a cluster route, so the hook needs no list of paths. /swarm/init, join and leave stay
// outside (api/routes/swarm.ts's membership routes): every node answers those for itself.
import type { FastifyPluginAsync } from "fastify";
import type { Logger } from "../shared/logging.js";
import type { ContainerEngineApi } from "../agent/engine/container/api.js";
import type { ClusterHost } from "./deps.js";
import { forwardToManager } from "./forward.js";
import { linearizableRead } from "./linearizable-read.js";
import { swarmRoutes } from "./routes/swarm.js";
import { nodeRoutes } from "./routes/nodes.js";
import { serviceRoutes } from "./routes/services.js";
import { serviceLogRoutes } from "./routes/service-logs.js";
import { taskRoutes } from "./routes/tasks.js";

export interface ClusterRoutesOptions {
  host: ClusterHost;
  /** This node's engine, for the logs of the service tasks that run here. */
  engine: ContainerEngineApi;
  /** For forwarding failures. */
  log: Logger;
}

export const clusterRoutes: FastifyPluginAsync<ClusterRoutesOptions> = async (app, { host, engine, log }) => {
  app.addHook("onRequest", forwardToManager(host, log));
  app.addHook("onRequest", linearizableRead(host));
  await app.register(swarmRoutes, { host });
  await app.register(nodeRoutes, { host });
  await app.register(serviceRoutes, { host });
  await app.register(serviceLogRoutes, { host, engine });
  await app.register(taskRoutes, { host });
};
