// /networks: Docker's network API over the host's networks (agent/engine/network/host-networks.ts); connect and disconnect go through
// the container engine, which owns the container records they change.
import type { FastifyPluginAsync } from "fastify";
import type { EngineApiDeps } from "../deps.js";
import { conflict, forbidden, invalid, notFound } from "../../shared/errors.js";
import { qFilters, type Query } from "../../shared/query.js";
import type { NetworkRecord, CreateNetworkRequest } from "../../agent/engine/network/types.js";
import { PREDEFINED } from "../../agent/engine/network/types.js";
import type { AttachedContainer } from "../../agent/engine/network/types.js";
import type { EndpointSettings } from "../../agent/engine/container/types.js";

type IdParams = { Params: { id: string }; Querystring: Query };

/** What a node that is not a manager answers to `network create -d overlay` (Docker's words). */
export const NOT_A_MANAGER_FOR_NETWORKS =
  'This node is not a swarm manager. Worker nodes can\'t be used to create overlay networks. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';

/** A network as inspect shows it; `Containers` lists the running endpoints. */
export function toNetworkView(n: NetworkRecord, attached: AttachedContainer[]) {
  const { BridgeName: _b, Pool: _p, ...view } = n;
  return { ...view, ConfigFrom: { Network: "" }, Containers: containersView(attached) };
}

/** The running endpoints on a network, as inspect's `Containers` shows them. */
function containersView(attached: AttachedContainer[]): Record<string, object> {
  const containers: Record<string, object> = {};
  for (const c of attached) {
    if (c.endpoint.IPAddress === "") continue;
    containers[c.id] = {
      Name: c.name,
      EndpointID: c.endpoint.EndpointID,
      MacAddress: c.endpoint.MacAddress,
      IPv4Address: `${c.endpoint.IPAddress}/${c.endpoint.IPPrefixLen}`,
      IPv6Address: "",
    };
  }
  return containers;
}

function labelMatches(labels: Record<string, string>, filter: string): boolean {
  const eq = filter.indexOf("=");
  if (eq < 0) return filter in labels;
  return labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}

/** Docker's network filters: name (substring), id (prefix), label, driver, type custom|builtin, dangling. */
export function networkMatcher(
  filters: Record<string, string[]>,
  usedBy: (id: string) => number,
): (n: NetworkRecord) => boolean {
  const known = new Set(["name", "id", "label", "driver", "type", "dangling", "scope", "until"]);
  for (const key of Object.keys(filters))
    if (!known.has(key))
      throw invalid(`invalid filter '${key}': use name, id, label, driver, type or dangling`);
  return (n) =>
    (!filters.name || filters.name.some((v) => n.Name.includes(v))) &&
    (!filters.id || filters.id.some((v) => n.Id.startsWith(v))) &&
    (!filters.label || filters.label.every((l) => labelMatches(n.Labels, l))) &&
    (!filters.driver || filters.driver.includes(n.Driver)) &&
    (!filters.scope || filters.scope.includes(n.Scope)) &&
    (!filters.type || filters.type.some((t) => (t === "builtin") === PREDEFINED.has(n.Name))) &&
    (!filters.dangling ||
      filters.dangling.some(
        (d) => (d === "true" || d === "1") === (usedBy(n.Id) === 0 && !PREDEFINED.has(n.Name)),
      ));
}

export type NetworkRoutesOptions = Pick<EngineApiDeps, "networks" | "containers" | "clusterNetworks">;

export const networkRoutes: FastifyPluginAsync<NetworkRoutesOptions> = async (app, deps) => {
  const networks = deps.networks;
  const usedBy = (id: string) => networks.attached(id).length;

  // On a manager, the cluster's overlay networks (Scope "swarm") come first; a local network
  // the engine made for one of them (same id) is not shown twice.
  const cluster = () => deps.clusterNetworks?.();

  app.get<{ Querystring: Query }>("/networks", async (request) => {
    const match = networkMatcher(qFilters(request.query), usedBy);
    const c = cluster();
    const swarm = (c?.list() ?? []).filter((n) => match(n as unknown as NetworkRecord));
    const ids = new Set(swarm.map((n) => n.Id));
    return [
      ...swarm,
      ...networks
        .list()
        .filter((n) => !ids.has(n.Id))
        // A manager's store is the word on overlays: this host's copy of a removed one lingers
        // until its next network state is applied and its last task container is gone.
        .filter((n) => !(c && n.Driver === "overlay"))
        .filter(match)
        .map((n) => toNetworkView(n, networks.attached(n.Id))),
    ];
  });

  app.get<IdParams>("/networks/:id", async (request) => {
    const ref = request.params.id;
    const swarm = cluster()?.inspect(ref);
    // As Docker: a cluster network lists the containers this node has on it.
    if (swarm) return { ...swarm, Containers: containersView(networks.attached(swarm.Id)) };
    if (request.query.scope === "swarm") throw notFound(`network ${ref} not found`);
    const n = networks.get(ref);
    return toNetworkView(n, networks.attached(n.Id));
  });

  app.post("/networks/create", async (request, reply) => {
    const body = (request.body ?? {}) as CreateNetworkRequest;
    if (body.Driver === "overlay") {
      const c = cluster();
      if (!c) throw forbidden(NOT_A_MANAGER_FOR_NETWORKS);
      if (body.Name && networks.list().some((n) => n.Name === body.Name))
        throw conflict(`network with name ${body.Name} already exists`);
      const made = c.create(body);
      if (made) {
        const r = await made;
        return reply.code(201).send({ Id: r.Id, Warning: r.Warning ?? "" });
      }
    }
    if (body.Name && cluster()?.inspect(body.Name)?.Name === body.Name)
      throw conflict(`network with name ${body.Name} already exists`);
    return reply.code(201).send(await networks.create(body));
  });

  app.delete<IdParams>("/networks/:id", async (request, reply) => {
    const c = cluster();
    if (c?.inspect(request.params.id) && (await c.remove(request.params.id))) return reply.code(204).send();
    await networks.remove(request.params.id);
    return reply.code(204).send();
  });

  app.post<IdParams>("/networks/:id/connect", async (request, reply) => {
    const body = (request.body ?? {}) as { Container?: string; EndpointConfig?: Partial<EndpointSettings> };
    if (!body.Container) throw invalid("connect needs a container: name it in the Container field");
    await deps.containers.connectNetwork(body.Container, request.params.id, body.EndpointConfig);
    return reply.code(200).send();
  });

  app.post<IdParams>("/networks/:id/disconnect", async (request, reply) => {
    const body = (request.body ?? {}) as { Container?: string; Force?: boolean };
    if (!body.Container) throw invalid("disconnect needs a container: name it in the Container field");
    await deps.containers.disconnectNetwork(body.Container, request.params.id);
    return reply.code(200).send();
  });

  app.post<{ Querystring: Query }>("/networks/prune", async (request) => {
    const filters = qFilters(request.query);
    const { until: _u, ...rest } = filters;
    const match = networkMatcher(rest, usedBy);
    return { NetworksDeleted: await networks.prune(match) };
  });
};
