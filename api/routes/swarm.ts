// The swarm part of the Engine API (/swarm, /nodes, /services, /tasks), served by every
// daemon's socket: a node that is not a manager answers 503 with Docker's words.
import type { FastifyInstance } from "fastify";
import { invalid, unavailable } from "../../shared/errors.js";
import { qBool, qFilters, qString, type Query } from "../../shared/query.js";
import type { ControlApi } from "./control.js";
import type { NodeObject, ServiceObject } from "../store/types.js";

type IdReq = { Params: { id: string }; Querystring: Query };

/** What the daemon offers the routes: the control API while this node manages, and membership. */
export interface SwarmHost {
  control(): ControlApi | undefined;
  init(request: { ListenAddr?: string; AdvertiseAddr?: string; ForceNewCluster?: boolean }): Promise<string>;
  /** POST /swarm/join: become a worker or manager of the cluster behind RemoteAddrs. */
  join(request: {
    ListenAddr?: string;
    AdvertiseAddr?: string;
    RemoteAddrs?: string[];
    JoinToken?: string;
  }): Promise<void>;
  leave(force: boolean): Promise<void>;
  /** GET /swarm's body. */
  inspect(): Record<string, unknown> | undefined;
}

export const NOT_A_MANAGER =
  'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';

function version(q: Query): number {
  const v = qString(q, "version");
  if (v === undefined || !/^\d+$/.test(v))
    throw invalid("an update needs the version it was made from: pass ?version=N");
  return Number(v);
}

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

export function registerSwarmRoutes(app: FastifyInstance, host: SwarmHost): void {
  const control = (): ControlApi => {
    const c = host.control();
    if (!c) throw unavailable(NOT_A_MANAGER);
    return c;
  };

  // The docker CLI reads the node id as a JSON string.
  app.post("/swarm/init", async (request, reply) => {
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
  app.get("/swarm", async () => {
    const body = host.inspect();
    if (!body) throw unavailable(NOT_A_MANAGER);
    return body;
  });
  // `docker swarm update`, and `docker swarm join-token --rotate` (the spec sent back as read).
  app.post<{ Querystring: Query }>("/swarm/update", async (request, reply) => {
    const q = request.query;
    await control().updateCluster(version(q), request.body, {
      rotateWorkerToken: qBool(q, "rotateWorkerToken"),
      rotateManagerToken: qBool(q, "rotateManagerToken"),
      rotateManagerUnlockKey: qBool(q, "rotateManagerUnlockKey"),
    });
    return reply.code(200).send();
  });

  app.post("/services/create", async (request, reply) =>
    reply.code(201).send(await control().createService(withRegistryAuth(request.body, request.headers))),
  );
  app.get<{ Querystring: Query }>("/services", async (request) => {
    const c = control();
    const withStatus = qBool(request.query, "status");
    return c
      .listServices(qFilters(request.query))
      .map((s) => (withStatus ? { ...s, ServiceStatus: c.serviceStatus(s.ID) } : s));
  });
  app.get<IdReq>("/services/:id", async (request) => control().inspectService(request.params.id));
  app.post<IdReq>("/services/:id/update", async (request) =>
    control().updateService(
      request.params.id,
      version(request.query),
      withRegistryAuth(request.body, request.headers),
      { rollback: qString(request.query, "rollback") },
    ),
  );
  app.delete<IdReq>("/services/:id", async (request, reply) => {
    await control().removeService(request.params.id);
    return reply.code(200).send();
  });

  app.get<{ Querystring: Query }>("/tasks", async (request) => control().listTasks(qFilters(request.query)));
  app.get<IdReq>("/tasks/:id", async (request) => control().inspectTask(request.params.id));

  app.get("/nodes", async () => control().listNodes());
  app.get<IdReq>("/nodes/:id", async (request) => control().inspectNode(request.params.id));
  app.post<IdReq>("/nodes/:id/update", async (request, reply) => {
    await control().updateNode(request.params.id, version(request.query), request.body as NodeObject["Spec"]);
    return reply.code(200).send();
  });
  app.delete<IdReq>("/nodes/:id", async (request, reply) => {
    await control().removeNode(request.params.id, qBool(request.query, "force"));
    return reply.code(200).send();
  });
}
