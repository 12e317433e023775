// /services: create, list, inspect, update (scaling is an update) and remove, through the control
// API (registered inside api/cluster.ts). A service's logs are api/routes/service-logs.ts.
import type { FastifyPluginAsync } from "fastify";
import { qBool, qFilters, qString, type Query } from "../../shared/query.js";
import type { ServiceObject } from "../../manager/store/types.js";
import { controlOf, updateVersion } from "../control.js";
import type { SwarmHost } from "../deps.js";

type IdReq = { Params: { id: string }; Querystring: Query };

/**
 * `--with-registry-auth`: the docker CLI sends the user's credentials as X-Registry-Auth; they
 * travel in the task template so the node that runs a task can pull its image.
 */
function withRegistryAuth(
  body: unknown,
  headers: Record<string, string | string[] | undefined>,
): ServiceObject["Spec"] {
  const spec = (body ?? {}) as ServiceObject["Spec"];
  const h = headers["x-registry-auth"];
  const auth = Array.isArray(h) ? h[0] : h;
  if (!auth || typeof spec.TaskTemplate !== "object" || spec.TaskTemplate === null) return spec;
  const template = spec.TaskTemplate as { ContainerSpec?: Record<string, unknown> };
  template.ContainerSpec = { ...(template.ContainerSpec ?? {}), PullOptions: { RegistryAuth: auth } };
  return spec;
}

export const serviceRoutes: FastifyPluginAsync<{ host: SwarmHost }> = async (app, { host }) => {
  app.post("/services/create", async (request, reply) =>
    reply
      .code(201)
      .send(await controlOf(host).createService(withRegistryAuth(request.body, request.headers))),
  );
  app.get<{ Querystring: Query }>("/services", async (request) => {
    const c = controlOf(host);
    const withStatus = qBool(request.query, "status");
    return c
      .listServices(qFilters(request.query))
      .map((s) => (withStatus ? { ...s, ServiceStatus: c.serviceStatus(s.ID) } : s));
  });
  app.get<IdReq>("/services/:id", async (request) => controlOf(host).inspectService(request.params.id));
  app.post<IdReq>("/services/:id/update", async (request) =>
    controlOf(host).updateService(
      request.params.id,
      updateVersion(request.query),
      withRegistryAuth(request.body, request.headers),
      { rollback: qString(request.query, "rollback") },
    ),
  );
  app.delete<IdReq>("/services/:id", async (request, reply) => {
    await controlOf(host).removeService(request.params.id);
    return reply.code(200).send();
  });
};
