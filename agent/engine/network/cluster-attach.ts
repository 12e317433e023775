// Plain containers on the cluster's attachable overlay networks (`docker run --network app` on
// any node, as Docker Swarm allows): the engine asks the leader for an address at every start
// and gives it back at every stop (moby's AttachNetwork/DetachNetwork). The agent, which holds
// the node's cluster identity, implements this interface over the leader's ResourceAllocator
// (agent/cluster-attacher.ts); the engine only sees it while the node is in a cluster.

/** The label the worker puts on a service task's container: its overlay addresses come with it. */
export const TASK_LABEL = "com.docker.swarm.task.id";

export interface AttachRequest {
  /** The cluster network's id. */
  network: string;
  containerId: string;
  containerName: string;
  aliases: string[];
  /** A fixed address asked for with --ip, no prefix. */
  address?: string;
}

export interface Attachment {
  attachmentId: string;
  networkId: string;
  networkName: string;
  /** CIDR: "10.0.1.5/24". */
  address: string;
}

export interface ClusterAttacher {
  /**
   * Whether this node has a session with the cluster's leader, waiting up to `waitMs` for one
   * (a daemon that just started is still connecting).
   */
  connected(waitMs: number): Promise<boolean>;
  /** Ask the leader for an attachment; errors carry the status the user should see. */
  attach(req: AttachRequest): Promise<Attachment>;
  /** Give one back; an attachment the leader no longer has counts as given back. */
  detach(attachmentId: string): Promise<void>;
}

/** How long a start waits for the state naming its address to be applied on this host. */
export const ATTACH_WAIT_MS = 30_000;
/** How long a create waits for a session with the leader before refusing (503). */
export const CONNECT_WAIT_MS = 5_000;
