// The cluster's overlay state as agents need it (shared/network-state.ts), as a pure function of
// the store's objects: networks with their VXLAN id and subnet, each node's own endpoints, every
// placed live task's endpoints and plain containers' attachments, and the services' VIPs and
// routing-mesh ports. The dispatcher
// sends it to every agent; each applies it on its own host.
import { TERMINAL_STATES } from "../../shared/cluster.js";
import type {
  NetworkState,
  NodeEndpoint,
  OverlayNetwork,
  ServiceEndpoints,
  TaskEndpoint,
} from "../../shared/network-state.js";
import type { ReadTx } from "../store/store.js";
import type { TaskObject } from "../store/types.js";
import { endpointSpecOf, networksOfTemplate, portsOf, subnetOf, vniOf } from "./allocator.js";
import { attachmentNames } from "./attachments.js";

const bare = (address: string): string => address.split("/")[0];

/** `<service>.<slot>.<task id>`, or `<service>.<node id>.<task id>` for a global service's task. */
function taskName(t: TaskObject, serviceName: string): string {
  return `${serviceName}.${t.Slot > 0 ? t.Slot : t.NodeID}.${t.ID}`;
}

const byKey =
  <T>(key: (x: T) => string) =>
  (a: T, b: T): number =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;

export function networkState(tx: ReadTx, version: number): NetworkState {
  const networks: OverlayNetwork[] = [];
  for (const n of tx.list("networks")) {
    const vni = vniOf(n);
    const subnet = subnetOf(n);
    if (vni === undefined || !subnet) continue;
    networks.push({
      id: n.ID,
      name: n.Spec.Name,
      vni,
      subnet,
      ingress: n.Spec.Ingress === true,
      attachable: n.Spec.Attachable === true,
    });
  }
  const known = new Set(networks.map((n) => n.id));

  const nodeList = tx.list("nodes");
  const hostOf = new Map(nodeList.map((n) => [n.ID, n.Status.Addr]));
  const nodes: NodeEndpoint[] = [];
  for (const node of nodeList)
    for (const a of node.Attachments ?? []) {
      if (!known.has(a.Network.ID) || a.Addresses.length === 0) continue;
      nodes.push({
        networkId: a.Network.ID,
        nodeId: node.ID,
        hostAddr: node.Status.Addr,
        address: bare(a.Addresses[0]),
      });
    }

  const serviceList = tx.list("services");
  const serviceName = new Map(serviceList.map((s) => [s.ID, s.Spec.Name]));
  const tasks: TaskEndpoint[] = [];
  for (const t of tx.list("tasks")) {
    // An ended task's addresses may be someone else's already; an unplaced one lives nowhere yet.
    if (TERMINAL_STATES.has(t.Status.State) || t.NodeID === "" || !hostOf.has(t.NodeID)) continue;
    const name = taskName(t, serviceName.get(t.ServiceID) ?? t.ServiceName ?? t.ServiceID);
    const aliases = new Map(networksOfTemplate(t.Spec).map((n) => [n.Target, n.Aliases ?? []]));
    for (const a of t.NetworksAttachments ?? []) {
      if (!known.has(a.Network.ID) || a.Addresses.length === 0) continue;
      tasks.push({
        networkId: a.Network.ID,
        taskId: t.ID,
        serviceId: t.ServiceID,
        nodeId: t.NodeID,
        hostAddr: hostOf.get(t.NodeID) ?? "",
        address: bare(a.Addresses[0]),
        names: [name, ...(aliases.get(a.Network.ID) ?? a.Aliases ?? [])],
        running: t.Status.State === "running" && t.DesiredState === "running",
      });
    }
  }

  // Plain containers on attachable networks: endpoints like tasks (forwarding entries, DNS by
  // name and alias), of no service, always running while they exist.
  for (const a of tx.list("attachments")) {
    const net = a.Attachment.Network.ID;
    if (!known.has(net) || a.Attachment.Addresses.length === 0 || !hostOf.has(a.NodeID)) continue;
    tasks.push({
      networkId: net,
      taskId: a.ID,
      serviceId: "",
      nodeId: a.NodeID,
      hostAddr: hostOf.get(a.NodeID) ?? "",
      address: bare(a.Attachment.Addresses[0]),
      names: attachmentNames(a),
      running: true,
      containerId: a.ContainerID,
    });
  }

  const services: ServiceEndpoints[] = serviceList.map((s) => {
    const mode = endpointSpecOf(s.Spec).Mode === "dnsrr" ? "dnsrr" : "vip";
    const ports = (s.Endpoint?.Ports ?? portsOf(endpointSpecOf(s.Spec)))
      .filter((p) => p.PublishMode === "ingress" && p.PublishedPort > 0 && p.Protocol !== "sctp")
      .map((p) => ({
        protocol: p.Protocol as "tcp" | "udp",
        publishedPort: p.PublishedPort,
        targetPort: p.TargetPort,
      }));
    return {
      id: s.ID,
      name: s.Spec.Name,
      mode,
      vips:
        mode === "vip"
          ? (s.Endpoint?.VirtualIPs ?? [])
              .filter((v) => known.has(v.NetworkID))
              .map((v) => ({ networkId: v.NetworkID, address: bare(v.Addr) }))
          : [],
      ports,
    };
  });

  return {
    version,
    networks: networks.sort(byKey((n) => n.id)),
    nodes: nodes.sort(byKey((n) => `${n.networkId}/${n.nodeId}`)),
    tasks: tasks.sort(byKey((t) => `${t.networkId}/${t.taskId}`)),
    services: services.sort(byKey((s) => s.id)),
  };
}
