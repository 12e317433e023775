// What the cluster routes (api/routes/{swarm,nodes,services,tasks,service-logs}.ts) share: the
// control API while this node manages (503 with Docker's words otherwise) and an update's ?version=.
import { invalid, unavailable } from "../shared/errors.js";
import { qString, type Query } from "../shared/query.js";
import type { ControlApi } from "../manager/controlapi/control.js";
import type { SwarmHost } from "./deps.js";

export const NOT_A_MANAGER =
  'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';

/** The control API, or 503 NOT_A_MANAGER when this node does not manage the cluster. */
export function controlOf(host: SwarmHost): ControlApi {
  const c = host.control();
  if (!c) throw unavailable(NOT_A_MANAGER);
  return c;
}

/** The version an update was made from (`?version=N`), which it must name. */
export function updateVersion(q: Query): number {
  const v = qString(q, "version");
  if (v === undefined || !/^\d+$/.test(v))
    throw invalid("an update needs the version it was made from: pass ?version=N");
  return Number(v);
}
