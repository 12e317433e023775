// /tasks: the cluster's tasks, from the control API (registered inside api/cluster.ts).
import type { FastifyPluginAsync } from "fastify";
import { qFilters, type Query } from "../../shared/query.js";
import { controlOf } from "../control.js";
import type { SwarmHost } from "../deps.js";

export const taskRoutes: FastifyPluginAsync<{ host: SwarmHost }> = async (app, { host }) => {
  app.get<{ Querystring: Query }>("/tasks", async (request) =>
    controlOf(host).listTasks(qFilters(request.query)),
  );
  app.get<{ Params: { id: string } }>("/tasks/:id", async (request) =>
    controlOf(host).inspectTask(request.params.id),
  );
};
