// /nodes: the cluster's nodes, from the control API (registered inside api/cluster.ts).
import type { FastifyPluginAsync } from "fastify";
import { qBool, type Query } from "../../shared/query.js";
import type { NodeObject } from "../../manager/store/types.js";
import { controlOf, updateVersion } from "../control.js";
import type { SwarmHost } from "../deps.js";

type IdReq = { Params: { id: string }; Querystring: Query };

export const nodeRoutes: FastifyPluginAsync<{ host: SwarmHost }> = async (app, { host }) => {
  app.get("/nodes", async () => controlOf(host).listNodes());
  app.get<IdReq>("/nodes/:id", async (request) => controlOf(host).inspectNode(request.params.id));
  app.post<IdReq>("/nodes/:id/update", async (request, reply) => {
    await controlOf(host).updateNode(
      request.params.id,
      updateVersion(request.query),
      request.body as NodeObject["Spec"],
    );
    return reply.code(200).send();
  });
  app.delete<IdReq>("/nodes/:id", async (request, reply) => {
    await controlOf(host).removeNode(request.params.id, qBool(request.query, "force"));
    return reply.code(200).send();
  });
};
