// The cluster's overlay networks as the Engine API's /networks routes see them: on a manager the
// daemon passes a delegate (manager/controlapi/networks.ts implements it over the cluster store),
// so `docker network create -d overlay`, ls, inspect and rm reach the cluster while bridge
// networks stay the local engine's. The shapes are plain data: the agent imports nothing of the
// manager's, and the manager matches this interface without importing it.
import type { CreateNetworkRequest } from "../engine/network/types.js";

/** A cluster network in Docker's shape (Scope "swarm", Driver "overlay"). */
export interface ClusterNetworkView {
  Name: string;
  Id: string;
  Scope: string;
  Driver: string;
  Labels: Record<string, string>;
  [key: string]: unknown;
}

export interface ClusterNetworks {
  /** undefined: not the cluster's to make (the driver is not overlay). */
  create(body: CreateNetworkRequest): Promise<{ Id: string; Warning?: string }> | undefined;
  list(): ClusterNetworkView[];
  /** By id, name or unique id prefix; undefined when the cluster has no such network. */
  inspect(ref: string): ClusterNetworkView | undefined;
  /** false: the cluster has no such network (it may be a local one). */
  remove(ref: string): Promise<boolean>;
}

/** What a node that is not a manager answers to `network create -d overlay` (Docker's words). */
export const NOT_A_MANAGER_FOR_NETWORKS =
  'This node is not a swarm manager. Worker nodes can\'t be used to create overlay networks. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';
