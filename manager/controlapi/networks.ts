// The cluster's overlay networks through the Engine API's /networks routes on a manager
// (`docker network create -d overlay`, ls, inspect, rm): stored in the cluster, allocated at
// once (subnet, gateway, VXLAN id), shown in Docker's shape with Scope "swarm". The engine's
// routes call this as their ClusterNetworks delegate (api/deps.ts; the manager imports
// nothing of api/, so the shape is matched, not imported).
import type { IpamRequest } from "../../shared/engine-api.js";
import { conflict, invalid, isShoalError, notFound } from "../../shared/errors.js";
import { TERMINAL_STATES } from "../../shared/cluster.js";
import { findByRef, type ClusterStore } from "../store/store.js";
import type { NetworkObject, NetworkSpec } from "../store/types.js";
import {
  Allocations,
  endpointSpecOf,
  gatewayOf,
  isIngress,
  networksOfTemplate,
  subnetOf,
  usesIngress,
  withAllocationLock,
} from "../allocator/allocator.js";

const NAME_RULE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** POST /networks/create's body, as the docker CLI sends it (the fields read here). */
export interface NetworkCreateBody {
  Name?: string;
  Driver?: string;
  Scope?: string;
  Internal?: boolean;
  Attachable?: boolean;
  Ingress?: boolean;
  EnableIPv6?: boolean;
  ConfigOnly?: boolean;
  ConfigFrom?: { Network?: string } | null;
  Labels?: Record<string, string> | null;
  Options?: Record<string, string> | null;
  IPAM?: IpamRequest | null;
}

/** A network as `docker network inspect` shows it (a type, so it fits the engine's indexed view). */
export type ClusterNetworkView = {
  Name: string;
  Id: string;
  Created: string;
  Scope: "swarm";
  Driver: string;
  EnableIPv6: boolean;
  IPAM: {
    Driver: string;
    Options: Record<string, string> | null;
    Config: Array<{ Subnet: string; Gateway: string }>;
  };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: boolean;
  Containers: Record<string, unknown>;
  Options: Record<string, string>;
  Labels: Record<string, string>;
};

function networkView(n: NetworkObject): ClusterNetworkView {
  const subnet = subnetOf(n);
  return {
    Name: n.Spec.Name,
    Id: n.ID,
    Created: n.Meta.CreatedAt,
    Scope: "swarm",
    Driver: n.DriverState?.Name ?? n.Spec.DriverConfiguration?.Name ?? "overlay",
    EnableIPv6: false,
    IPAM: {
      Driver: n.IPAMOptions?.Driver.Name ?? "default",
      Options: null,
      Config: subnet ? [{ Subnet: subnet, Gateway: gatewayOf(n) ?? "" }] : [],
    },
    Internal: n.Spec.Internal === true,
    Attachable: n.Spec.Attachable === true,
    Ingress: isIngress(n),
    ConfigFrom: { Network: "" },
    ConfigOnly: false,
    Containers: {},
    Options: { ...(n.Spec.DriverConfiguration?.Options ?? {}), ...(n.DriverState?.Options ?? {}) },
    Labels: n.Spec.Labels ?? {},
  };
}

/** The network spec a create request asks for; what shoal cannot do is a 400 naming it. */
function networkSpecOf(body: NetworkCreateBody): NetworkSpec {
  const name = body.Name ?? "";
  if (name === "") throw invalid("a network needs a name: give one after the options");
  if (!NAME_RULE.test(name))
    throw invalid(
      `invalid network name "${name}": use letters, digits, '_', '.' and '-', starting with a letter or digit`,
    );
  if (body.EnableIPv6) throw invalid(`network ${name}: IPv6 overlay networks are not supported by shoal`);
  if (body.ConfigOnly || body.ConfigFrom?.Network)
    throw invalid(
      `network ${name}: config-only networks (--config-only, --config-from) are not supported by shoal`,
    );
  if (body.IPAM?.Driver && body.IPAM.Driver !== "default")
    throw invalid(
      `network ${name}: IPAM driver ${body.IPAM.Driver} is not supported: leave --ipam-driver out`,
    );
  const configs = (body.IPAM?.Config ?? []).filter((c) => c.Subnet || c.Gateway || c.IPRange);
  if (configs.length > 1) throw invalid(`network ${name}: an overlay network takes one --subnet`);
  if (configs[0]?.IPRange) throw invalid(`network ${name}: --ip-range is not supported for overlay networks`);
  if (configs[0]?.Gateway && !configs[0].Subnet) throw invalid(`network ${name}: --gateway needs --subnet`);
  if (body.Ingress && body.Attachable)
    throw invalid(`network ${name}: an ingress network cannot be attachable`);
  return {
    Name: name,
    Labels: body.Labels ?? {},
    DriverConfiguration: { Name: "overlay", ...(body.Options ? { Options: body.Options } : {}) },
    IPAMOptions: {
      Driver: { Name: "default" },
      Configs: configs.map((c) => ({ Subnet: c.Subnet, ...(c.Gateway ? { Gateway: c.Gateway } : {}) })),
    },
    Attachable: body.Attachable === true,
    Ingress: body.Ingress === true,
    Internal: body.Internal === true,
  };
}

/** The cluster's networks for the Engine API's /networks routes (the ClusterNetworks delegate). */
/** Which network state version each node has applied, as the leader heard in heartbeats. */
export interface NetworkConvergence {
  version: number;
  applied: ReadonlyMap<string, number>;
}

export class ClusterNetworksApi {
  constructor(
    private readonly store: ClusterStore,
    private readonly convergence?: () => NetworkConvergence | undefined,
  ) {}

  /**
   * shoal's addition to `network inspect`: every host that takes part in the network, the
   * network state version it has applied, and whether that is the newest (its DNS and load
   * balancing match the cluster's). Only the leader hears heartbeats; elsewhere it is absent.
   */
  private withConvergence(n: NetworkObject): ClusterNetworkView & { Convergence?: unknown } {
    const view = networkView(n);
    const c = this.convergence?.();
    if (!c || c.applied.size === 0) return view;
    const nodes = this.store.view((tx) => tx.list("nodes"));
    const members = nodes.filter((node) => (node.Attachments ?? []).some((a) => a.Network.ID === n.ID));
    return {
      ...view,
      Convergence: {
        Version: c.version,
        Hosts: members.map((node) => {
          const applied = c.applied.get(node.ID) ?? 0;
          return {
            NodeID: node.ID,
            Hostname: node.Description.Hostname,
            AppliedVersion: applied,
            Converged: applied >= c.version,
          };
        }),
      },
    };
  }

  /** Overlay networks are the cluster's; other drivers are the local engine's (undefined). */
  create(body: NetworkCreateBody): Promise<{ Id: string; Warning: string }> | undefined {
    if ((body.Driver ?? "bridge") !== "overlay") return undefined;
    return this.createOverlay(body);
  }

  private async createOverlay(body: NetworkCreateBody): Promise<{ Id: string; Warning: string }> {
    const spec = networkSpecOf(body);
    let id = "";
    const attempt = () =>
      withAllocationLock(this.store, () =>
        this.store.update((tx) => {
          const existing = tx.byName("networks", spec.Name);
          if (existing) throw conflict(`network with name ${spec.Name} already exists`);
          const a = Allocations.fromStore(tx);
          const ingress = a.ingress();
          if (spec.Ingress && ingress)
            throw conflict(
              `an ingress network (${ingress.Spec.Name}) is already present: remove it first to make another`,
            );
          id = tx.create("networks", a.newNetwork(spec)).ID;
          // Creates on two managers at once (a follower writes through Raft itself) must not both
          // take the same subnet or VXLAN id: both rewrite ingress at the version they read, so
          // the second batch is refused at apply and tried again with the first one's network seen.
          if (ingress) tx.update("networks", ingress);
        }),
      );
    try {
      await attempt();
    } catch (e) {
      if (!(isShoalError(e) && e.kind === "conflict" && e.message.startsWith("update out of sequence")))
        throw e;
      await attempt();
    }
    return { Id: id, Warning: "" };
  }

  list(): ClusterNetworkView[] {
    return this.store
      .view((tx) => tx.list("networks"))
      .sort((a, b) => a.Spec.Name.localeCompare(b.Spec.Name))
      .map(networkView);
  }

  inspect(ref: string): ClusterNetworkView | undefined {
    const n = this.store.view((tx) => findByRef(tx, "networks", ref));
    return n ? this.withConvergence(n) : undefined;
  }

  /**
   * `docker network rm`: false when the cluster has no such network (the local engine's, or a
   * 404). A network a service, a live task or a plain container (attachment) uses is a 409
   * naming them; so is ingress while a service publishes ports through the routing mesh.
   */
  async remove(ref: string): Promise<boolean> {
    const found = this.store.view((tx) => findByRef(tx, "networks", ref));
    if (!found) return false;
    await withAllocationLock(this.store, () =>
      this.store.update((tx) => {
        const n = tx.get("networks", found.ID);
        if (!n) throw notFound(`network ${ref} not found`);
        const users = tx
          .list("services")
          .filter((s) =>
            isIngress(n)
              ? usesIngress(endpointSpecOf(s.Spec))
              : networksOfTemplate(s.Spec.TaskTemplate).some((x) => x.Target === n.ID),
          )
          .map((s) => s.Spec.Name)
          .sort();
        if (users.length > 0)
          throw conflict(
            isIngress(n)
              ? `ingress network ${n.Spec.Name} cannot be removed because service${users.length > 1 ? "s" : ""} ${users.join(", ")} publish${users.length > 1 ? "" : "es"} ports through it: remove the services or their published ports first`
              : `network ${n.Spec.Name} is in use by service${users.length > 1 ? "s" : ""} ${users.join(", ")}: remove ${users.length > 1 ? "them" : "it"} or take the network out of ${users.length > 1 ? "them" : "it"} (service update --network-rm) first`,
          );
        const tasks = tx
          .list(
            "tasks",
            (t) =>
              !TERMINAL_STATES.has(t.Status.State) &&
              ((t.NetworksAttachments ?? []).some((a) => a.Network.ID === n.ID) ||
                networksOfTemplate(t.Spec).some((x) => x.Target === n.ID)),
          )
          .map((t) => `${t.ServiceName ?? t.ServiceID}.${t.Slot > 0 ? t.Slot : t.NodeID}.${t.ID}`)
          .sort();
        if (tasks.length > 0)
          throw conflict(
            `network ${n.Spec.Name} is in use by task${tasks.length > 1 ? "s" : ""} ${tasks.slice(0, 5).join(", ")}${tasks.length > 5 ? ", ..." : ""} that still run${tasks.length > 1 ? "" : "s"}: wait until ${tasks.length > 1 ? "they stop" : "it stops"} and retry`,
          );
        const containers = tx
          .list("attachments", (a) => a.Attachment.Network.ID === n.ID)
          .map((a) => {
            const node = tx.get("nodes", a.NodeID);
            return `${a.ContainerName} (on ${node?.Description.Hostname ?? a.NodeID})`;
          })
          .sort();
        if (containers.length > 0)
          throw conflict(
            `network ${n.Spec.Name} has active endpoints: container${containers.length > 1 ? "s" : ""} ${containers.slice(0, 5).join(", ")}${containers.length > 5 ? ", ..." : ""} ${containers.length > 1 ? "are" : "is"} attached: stop or remove ${containers.length > 1 ? "them" : "it"} (or docker network disconnect) first`,
          );
        tx.delete("networks", n.ID, n.Meta.Version.Index);
        // The nodes' own endpoints on it go with it.
        for (const node of tx.list("nodes", (x) =>
          (x.Attachments ?? []).some((a) => a.Network.ID === n.ID),
        )) {
          const rest = (node.Attachments ?? []).filter((a) => a.Network.ID !== n.ID);
          tx.update("nodes", { ...node, Attachments: rest.length > 0 ? rest : undefined });
        }
      }),
    );
    return true;
  }
}
