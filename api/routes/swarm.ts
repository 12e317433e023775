// /swarm. init, join and leave are each node's own business, answered where they arrive;
// inspect and update are the cluster's, registered inside api/cluster.ts (forwarded to a manager).
import type { FastifyPluginAsync } from "fastify";
import { unavailable } from "../../shared/errors.js";
import { qBool, type Query } from "../../shared/query.js";
import { controlOf, NOT_A_MANAGER, updateVersion } from "../control.js";
import { checkInitRequest, checkJoinRequest } from "./swarm-requests.js";
import type { SwarmHost } from "../deps.js";

export interface SwarmRoutesOptions {
  host: SwarmHost;
}

/** POST /swarm/init, /swarm/join, /swarm/leave: membership, which every node answers for itself. */
export const swarmMembershipRoutes: FastifyPluginAsync<SwarmRoutesOptions> = async (app, { host }) => {
  // The docker CLI reads the node id as a JSON string.
  app.post("/swarm/init", async (request, reply) => {
    const id = await host.init(checkInitRequest(request.body));
    return reply.type("application/json").send(JSON.stringify(id));
  });
  app.post("/swarm/join", async (request, reply) => {
    await host.join(checkJoinRequest<Parameters<SwarmHost["join"]>[0]>(request.body));
    return reply.code(200).send();
  });
  app.post<{ Querystring: Query }>("/swarm/leave", async (request, reply) => {
    const force = qBool(request.query, "force");
    await host.leave(force);
    return reply.code(200).send();
  });
};

/** GET /swarm and POST /swarm/update: the cluster's object. */
export const swarmRoutes: FastifyPluginAsync<SwarmRoutesOptions> = async (app, { host }) => {
  app.get("/swarm", async () => {
    const body = host.inspect();
    if (!body) throw unavailable(NOT_A_MANAGER);
    return body;
  });
  // `docker swarm update`, and `docker swarm join-token --rotate` (the spec sent back as read).
  app.post<{ Querystring: Query }>("/swarm/update", async (request, reply) => {
    const q = request.query;
    await controlOf(host).updateCluster(updateVersion(q), request.body, {
      rotateWorkerToken: qBool(q, "rotateWorkerToken"),
      rotateManagerToken: qBool(q, "rotateManagerToken"),
      rotateManagerUnlockKey: qBool(q, "rotateManagerUnlockKey"),
    });
    return reply.code(200).send();
  });
};
