// The cluster object itself: made once at `swarm init`, and shown by GET /swarm and by /info's
// Swarm section on a manager.
import type { NodeDescription } from "../../proto/gen/cluster.js";
import { makeJoinToken } from "../ca/ca.js";
import type { ClusterStore } from "../store/store.js";
import type { ClusterObject } from "../store/types.js";
import type { Member } from "../manager.js";
import { view } from "./control.js";

/**
 * A new cluster's first objects: the cluster (its CA and join tokens) and the node that made
 * it, its first manager and leader.
 */
/** A new cluster's spec before what `swarm init` asks for is applied. */
export const DEFAULT_CLUSTER_SPEC: ClusterObject["Spec"] = {
  Name: "default",
  Orchestration: { TaskHistoryRetentionLimit: 5 },
  Dispatcher: { HeartbeatPeriod: 1e9 },
};

export async function createCluster(
  store: ClusterStore,
  o: {
    clusterId: string;
    nodeId: string;
    ca: { certPem: string; keyPem: string };
    description: NodeDescription;
    /** host:port the other nodes reach this manager at. */
    advertiseAddr: string;
    /** The spec asked for at init (checked by nextClusterSpec); default DEFAULT_CLUSTER_SPEC. */
    spec?: ClusterObject["Spec"];
  },
): Promise<void> {
  const d = o.description;
  await store.update((tx) => {
    tx.create("clusters", {
      ID: o.clusterId,
      Spec: structuredClone(o.spec ?? DEFAULT_CLUSTER_SPEC),
      JoinTokens: { Worker: makeJoinToken(o.ca.certPem), Manager: makeJoinToken(o.ca.certPem) },
      RootCA: { CACert: o.ca.certPem, CAKey: o.ca.keyPem },
    });
    tx.create("nodes", {
      ID: o.nodeId,
      Spec: { Role: "manager", Availability: "active" },
      Description: {
        Hostname: d.hostname,
        Platform: { Architecture: d.architecture, OS: d.os },
        Resources: { NanoCPUs: d.nanoCpus, MemoryBytes: d.memoryBytes },
      },
      Status: { State: "ready", Addr: d.addr },
      ManagerStatus: { Leader: true, Reachability: "reachable", Addr: o.advertiseAddr },
      ListenAddr: o.advertiseAddr,
    });
  });
}

/** GET /swarm's body. The CA key never leaves the managers' store. */
export function inspectSwarm(store: ClusterStore, clusterId: string): Record<string, unknown> | undefined {
  const cluster = store.view((tx) => tx.get("clusters", clusterId));
  if (!cluster) return undefined;
  const { RootCA, ...rest } = view(cluster);
  return {
    ...rest,
    JoinTokens: cluster.JoinTokens,
    TLSInfo: { TrustRoot: RootCA?.CACert ?? "", CertIssuerSubject: "", CertIssuerPublicKey: "" },
    RootRotationInProgress: false,
    DefaultAddrPool: [],
    SubnetSize: 24,
  };
}

/** What a manager adds to /info's Swarm section: the Raft members, the node counts, the cluster. */
export function swarmInfo(
  store: ClusterStore,
  members: Member[],
  clusterId: string,
): Record<string, unknown> {
  const nodes = store.view((tx) => tx.list("nodes"));
  return {
    RemoteManagers: members.map((x) => ({ NodeID: x.nodeId, Addr: x.addr })),
    Nodes: nodes.length,
    Managers: nodes.filter((n) => n.Spec.Role === "manager").length,
    Cluster: inspectSwarm(store, clusterId),
  };
}
