// What the cluster routes (api/routes/{swarm,nodes,services,tasks,service-logs}.ts) share: the
// control API while this node manages (503 with Docker's words otherwise) and an update's ?version=.
import { invalid, unavailable } from "../shared/errors.js";
import { qString, type Query } from "../shared/query.js";
import type { ControlApi } from "../manager/controlapi/control.js";
import type { SwarmHost } from "./deps.js";

export const NOT_A_MANAGER =
  'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';

/** dockerd's answer on a worker: it has no control API, neither its own nor through a manager. */
export const WORKER_NOT_A_MANAGER =
  "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.";

/** dockerd's answer on a node whose role is manager while its manager is not (yet) running. */
export const MANAGER_NOT_READY =
  "This node is not a swarm manager. Manager is being prepared or has trouble connecting to the cluster.";

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
