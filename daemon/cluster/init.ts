// `swarm init`: this daemon becomes a new cluster's first manager. The CA is made here, the
// node's own certificate signed by it, the Raft group bootstrapped with this member alone and the
// cluster's first objects written; the agent starts like on any other node.
import { randomInt } from "node:crypto";
import { unavailable } from "../../shared/errors.js";
import { withPort } from "../../shared/leader-call.js";
import { createRootCA, issueNodeCertificate } from "../../manager/ca/ca.js";
import { createCluster, DEFAULT_CLUSTER_SPEC } from "../../manager/controlapi/swarm.js";
import { nextClusterSpec } from "../../manager/controlapi/control.js";
import type { InitRequest } from "../../api/routes/swarm-requests.js";
import { newObjectId } from "../../manager/store/store.js";
import type { ClusterNode } from "./node.js";
import { nodeDescription } from "./node-description.js";
import type { SwarmState } from "./state.js";

export const ALREADY_IN_A_SWARM =
  'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.';

export async function initCluster(node: ClusterNode, request: InitRequest): Promise<string> {
  if (node.state) throw unavailable(ALREADY_IN_A_SWARM);
  // Checked before anything is made: a refused spec leaves no half-made cluster.
  const spec = nextClusterSpec(DEFAULT_CLUSTER_SPEC, request.Spec ?? {});
  const listenAddr = withPort(request.ListenAddr || "0.0.0.0:2377");
  const port = Number(listenAddr.split(":").pop());
  const advertiseAddr = request.AdvertiseAddr
    ? withPort(request.AdvertiseAddr, port)
    : listenAddr.startsWith("0.0.0.0")
      ? `127.0.0.1:${port}`
      : listenAddr;
  const state: SwarmState = {
    nodeId: newObjectId(),
    clusterId: newObjectId(),
    role: "manager",
    raftId: randomInt(1, 2 ** 31),
    listenAddr,
    advertiseAddr,
    managers: [],
  };
  try {
    const ca = await createRootCA();
    const own = await issueNodeCertificate(ca, {
      nodeId: state.nodeId,
      role: "manager",
      clusterId: state.clusterId,
    });
    await node.adoptIdentity({ caPem: ca.certPem, certPem: own.certPem, keyPem: own.keyPem });
    node.state = state;
    await node.startServer(state);
    const manager = await node.startManager(state, true);
    await createCluster(manager.store, {
      clusterId: state.clusterId,
      nodeId: state.nodeId,
      ca,
      description: nodeDescription(state.advertiseAddr),
      advertiseAddr: state.advertiseAddr,
      spec,
    });
    await node.startAgent(state);
    // Written last: a daemon that dies before this point starts outside any cluster.
    await node.saveState();
  } catch (e) {
    await node.teardown();
    throw e;
  }
  node.log.info(
    { node: state.nodeId, cluster: state.clusterId },
    "cluster initialised; this node is its manager",
  );
  return state.nodeId;
}
