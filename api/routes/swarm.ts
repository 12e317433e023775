// /swarm. init, join and leave are each node's own business, answered where they arrive;
// inspect and update are the cluster's, registered inside api/cluster.ts (forwarded to a manager).
import type { FastifyPluginAsync } from "fastify";
import { invalid, unavailable } from "../../shared/errors.js";
import { qBool, type Query } from "../../shared/query.js";
import { controlOf, NOT_A_MANAGER, updateVersion } from "../control.js";
import type { SwarmHost } from "../deps.js";

/**
 * `swarm init --autolock` asks for an unlock key that shoal cannot make yet: the Raft data key is
 * kept unwrapped (as swarmkit keeps it without autolock). Refused, not ignored.
 */
function refuseAutolock(body: unknown): void {
  const b = (body ?? {}) as {
    AutoLockManagers?: unknown;
    Spec?: { EncryptionConfig?: { AutoLockManagers?: unknown } };
  };
  if (b.AutoLockManagers === true || b.Spec?.EncryptionConfig?.AutoLockManagers === true)
    throw invalid(
      "--autolock is not supported by shoal yet (there is no swarm unlock): the Raft log is encrypted with a key kept on the manager; init without --autolock",
    );
}

export interface SwarmRoutesOptions {
  host: SwarmHost;
}

/** POST /swarm/init, /swarm/join, /swarm/leave: membership, which every node answers for itself. */
export const swarmMembershipRoutes: FastifyPluginAsync<SwarmRoutesOptions> = async (app, { host }) => {
  // The docker CLI reads the node id as a JSON string.
  app.post("/swarm/init", async (request, reply) => {
    refuseAutolock(request.body);
    const id = await host.init((request.body ?? {}) as Parameters<SwarmHost["init"]>[0]);
    return reply.type("application/json").send(JSON.stringify(id));
  });
  app.post("/swarm/join", async (request, reply) => {
    await host.join((request.body ?? {}) as Parameters<SwarmHost["join"]>[0]);
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
