// A container's endpoints: which networks it joins (its NetworkMode and NetworkingConfig,
// checked at create), the address, MAC and interface it gets on each at start, the veths that
// wire them into its namespace, and the addresses given back when its run ends.
import { forbidden, invalid, notFound } from "../../../shared/errors.js";
import { newId } from "../../../shared/ids.js";
import type { ContainerRecord, EndpointSettings, NetworkSettings } from "../container/types.js";
import type { ClusterAttachments } from "./attachments.js";
import { notInCluster } from "./attachments.js";
import { contains, parseIp, parseSubnet } from "./cidr.js";
import { macForAddress, type VethPlan } from "./host-links.js";
import { checkMacAddress } from "./mac-address.js";
import type { Network, NetworkTable } from "./networks.js";
import { OVERLAY_MTU } from "./overlay/names.js";
import type { OverlayState } from "./overlay-state.js";
import { DEFAULT_NETWORK, VETH_PREFIX, type NetworkRecord } from "./types.js";

/** What an endpoint holds only while its container runs; cleared at every exit. */
function unwired(): Pick<
  EndpointSettings,
  "EndpointID" | "Gateway" | "IPAddress" | "IPPrefixLen" | "MacAddress" | "DNSNames"
> {
  return { EndpointID: "", Gateway: "", IPAddress: "", IPPrefixLen: 0, MacAddress: "", DNSNames: null };
}

export function emptyEndpoint(networkId: string, requested?: Partial<EndpointSettings>): EndpointSettings {
  return {
    IPAMConfig: requested?.IPAMConfig ?? null,
    Aliases: requested?.Aliases ?? null,
    NetworkID: networkId,
    ...unwired(),
    ...(requested?.MacAddress ? { DesiredMacAddress: requested.MacAddress.toLowerCase() } : {}),
  };
}

/** The network a NetworkMode names, Docker's way: "", "default" → bridge. */
export function primaryNetworkName(mode: string | undefined): string {
  return !mode || mode === "default" ? DEFAULT_NETWORK : mode;
}

export function containerModeTarget(mode: string | undefined): string | undefined {
  return mode?.startsWith("container:") ? mode.slice("container:".length) : undefined;
}

type WithInterface = EndpointSettings & { InterfaceName?: string };

export class ContainerEndpoints {
  constructor(
    private readonly table: NetworkTable,
    private readonly overlay: OverlayState,
    private readonly attachments: ClusterAttachments,
  ) {}

  /**
   * The endpoints a new container starts with: the networks it asked for (by NetworkMode and
   * NetworkingConfig), checked now so that a bad request creates nothing.
   */
  settingsFor(
    mode: string | undefined,
    endpoints: Record<string, Partial<EndpointSettings>> | null | undefined,
    task: boolean,
  ): NetworkSettings {
    const settings: NetworkSettings = { Networks: {}, Ports: {}, SandboxKey: "" };
    if (containerModeTarget(mode) !== undefined) {
      if (Object.keys(endpoints ?? {}).length > 0)
        throw invalid("conflicting options: a container in another container's network cannot join networks");
      return settings;
    }
    const primary = this.networkFor(this.defaultedMode(mode), task);
    const asked = endpoints ?? {};
    const requestOf = (n: NetworkRecord): Partial<EndpointSettings> | undefined =>
      asked[n.Name] ??
      asked[n.Id] ??
      (n.Name === DEFAULT_NETWORK ? asked.default : undefined) ??
      (mode ? asked[mode] : undefined);
    const chosen: NetworkRecord[] = [primary];
    for (const ref of Object.keys(asked)) {
      const n = this.networkFor(this.defaultedMode(ref), task);
      if (!chosen.some((c) => c.Id === n.Id)) chosen.push(n);
    }
    const joinable = (n: NetworkRecord): boolean => n.Driver === "bridge" || n.Driver === "overlay";
    if (chosen.length > 1 && chosen.some((n) => !joinable(n))) {
      throw invalid(
        `container cannot be connected to network "${chosen.find((n) => !joinable(n))?.Name}" and other networks`,
      );
    }
    for (const n of chosen) {
      const req = requestOf(n);
      this.checkRequest(n, req, task);
      settings.Networks[n.Name] = emptyEndpoint(n.Id, req);
    }
    return settings;
  }

  /**
   * The network a container names. A service task joins networks this host has (an overlay
   * shows up when the managers' state puts this node on it). A plain container may also name
   * a cluster overlay network this host does not take part in yet, if it is attachable: it
   * joins it at start (ClusterAttachments.attach).
   */
  networkFor(ref: string, task: boolean): NetworkRecord {
    if (task) return this.table.get(ref).record;
    const local = this.table.find(ref);
    if (local && local.record.Driver !== "overlay") return local.record;
    const net = this.overlay.clusterNetwork(ref);
    const inCluster = this.attachments.inCluster;
    if (!net && !local)
      throw notFound(
        inCluster
          ? `network ${ref} not found`
          : `network ${ref} not found: create it (docker network create ${ref}); a cluster's overlay network can be used only on a node that joined the cluster (docker swarm join)`,
      );
    const name = net?.name ?? local?.record.Name ?? ref;
    const ingress = net ? net.ingress : local?.record.Ingress === true;
    if (ingress)
      throw forbidden(
        `network ${name} is the routing mesh's network and is not manually attachable: publish a service's ports instead, or use an --attachable overlay network`,
      );
    if (net ? !net.attachable : !local?.record.Attachable)
      throw forbidden(
        `network ${name} is not manually attachable: recreate it with \`docker network create -d overlay --attachable ${name}\`, or run the container as a service (docker service create --network ${name})`,
      );
    if (!inCluster) throw notInCluster(name);
    if (local) return local.record;
    return {
      Name: net!.name,
      Id: net!.id,
      Created: "",
      Scope: "swarm",
      Driver: "overlay",
      EnableIPv6: false,
      IPAM: { Driver: "default", Options: null, Config: [{ Subnet: net!.subnet, Gateway: "" }] },
      Internal: false,
      Attachable: true,
      Ingress: false,
      ConfigOnly: false,
      Options: {},
      Labels: {},
    };
  }

  /** "" and "default" name the default bridge, or "none" when the daemon runs without one. */
  private defaultedMode(mode: string | undefined): string {
    const name = primaryNetworkName(mode);
    return name === DEFAULT_NETWORK && !mode?.startsWith(DEFAULT_NETWORK) && !this.table.find(DEFAULT_NETWORK)
      ? "none"
      : name;
  }

  checkRequest(n: NetworkRecord, req: Partial<EndpointSettings> | undefined, task: boolean): void {
    const userDefined = (n.Driver === "bridge" && n.Name !== DEFAULT_NETWORK) || n.Driver === "overlay";
    // The managers decide every address on an overlay network; a local pick could clash with a
    // task on another host. A task comes with its address; a plain container asks at start.
    if (n.Driver === "overlay" && task && !req?.IPAMConfig?.IPv4Address)
      throw invalid(
        `network ${n.Name} is a cluster overlay network: a container joins it with the address the managers assigned (IPAMConfig.IPv4Address)`,
      );
    if (n.Driver === "overlay" && !task) {
      // --ip on an attachable network: the managers give it if it is free (checked at start).
      const ip = req?.IPAMConfig?.IPv4Address;
      const subnet = n.IPAM.Config[0]?.Subnet;
      if (ip && subnet && !contains(parseSubnet(subnet), parseIp(ip, "--ip address")))
        throw invalid(
          `--ip ${ip} is not an address of network ${n.Name}'s subnet ${subnet}: choose one inside it`,
        );
      return;
    }
    if (req?.MacAddress) checkMacAddress(req.MacAddress, n.Name);
    if ((req?.Aliases?.length ?? 0) > 0 && !userDefined)
      throw invalid(
        `network-scoped alias is supported only for containers in user defined networks (not ${n.Name})`,
      );
    const ip = req?.IPAMConfig?.IPv4Address;
    if (ip) {
      if (!userDefined)
        throw invalid(`user specified IP address is supported on user defined networks only (not ${n.Name})`);
      const pool = this.table.get(n.Id).pool;
      if (!pool) throw invalid(`network ${n.Name} has no address pool`);
      // Throws 400 for an address outside the subnet; a held address is a clash at start.
      pool.allocate("probe", ip);
      pool.release(ip);
    }
  }

  /** At start: an address on each network (`given`: network id → the cluster's address). */
  allocate(rec: ContainerRecord, settings: NetworkSettings, given: Map<string, string> = new Map()): void {
    let index = 0;
    settings.HostInterfaces = {};
    for (const [name, ep] of Object.entries(settings.Networks)) {
      const n = this.table.find(ep.NetworkID) ?? this.table.find(name);
      if (!n) throw notFound(`network ${name} not found: it was removed; disconnect the container from it`);
      if (n.record.Name !== name) {
        // Renamed networks are not possible, but an id recorded under a stale key is fixed here.
        delete settings.Networks[name];
        settings.Networks[n.record.Name] = ep;
      }
      if (!n.pool) continue;
      this.allocateOn(rec.Id, n, ep, index++, settings, given.get(n.record.Id));
    }
  }

  allocateOn(
    containerId: string,
    n: Network,
    ep: EndpointSettings,
    index: number,
    settings: NetworkSettings,
    /** The address the cluster gave (attachable overlay networks). */
    given?: string,
  ): void {
    const pool = n.pool;
    if (!pool) return;
    const ip = pool.allocate(containerId, given ?? (ep.IPAMConfig?.IPv4Address || undefined));
    ep.NetworkID = n.record.Id;
    ep.EndpointID = newId();
    ep.IPAddress = ip;
    ep.IPPrefixLen = parseSubnet(pool.state.subnet).prefix;
    ep.Gateway = n.record.Internal ? "" : pool.state.gateway;
    ep.MacAddress = ep.DesiredMacAddress || macForAddress(ip);
    settings.HostInterfaces ??= {};
    settings.HostInterfaces[n.record.Name] = `${VETH_PREFIX}${ep.EndpointID.slice(0, 12)}`;
    (ep as WithInterface).InterfaceName = `eth${index}`;
  }

  /** The veths from the bridges into the container's namespace (`only`: one network's). */
  vethPlans(rec: ContainerRecord, only?: string): VethPlan[] {
    const settings = rec.NetworkSettings;
    if (!settings) return [];
    const plans: VethPlan[] = [];
    let defaultTaken = false;
    for (const [name, ep] of Object.entries(settings.Networks)) {
      if (ep.IPAddress === "") continue;
      const n = this.table.find(ep.NetworkID);
      const hostName = settings.HostInterfaces?.[name];
      if (!n?.record.BridgeName || !hostName) continue;
      const wantsDefault = !n.record.Internal && !defaultTaken;
      if (wantsDefault) defaultTaken = true;
      if (only !== undefined && name !== only) continue;
      plans.push({
        hostName,
        containerName: (ep as WithInterface).InterfaceName ?? "eth0",
        bridge: n.record.BridgeName,
        mac: ep.MacAddress,
        address: ep.IPAddress,
        prefix: ep.IPPrefixLen,
        defaultGateway: wantsDefault && only === undefined ? ep.Gateway : undefined,
        mtu: n.record.Driver === "overlay" ? OVERLAY_MTU : undefined,
      });
    }
    return plans;
  }

  /** Give the endpoint's address back to its network's pool, if the container holds it. True when it did. */
  releaseAddress(containerId: string, ep: EndpointSettings, n: Network | undefined): boolean {
    const pool = n?.pool;
    if (!pool || !ep.IPAddress || pool.state.allocated[ep.IPAddress] !== containerId) return false;
    pool.release(ep.IPAddress);
    return true;
  }

  /**
   * The run ended: every endpoint gives back its address and its attachment and keeps only
   * what it was created with. True when a pool changed (the table is then saved).
   */
  release(rec: ContainerRecord): boolean {
    const settings = rec.NetworkSettings;
    if (!settings) return false;
    let changed = false;
    for (const ep of Object.values(settings.Networks)) {
      // Docker detaches at every stop: the address goes back to the cluster (attaches again at start).
      if (ep.AttachmentID) {
        this.attachments.detach(ep.AttachmentID);
        delete ep.AttachmentID;
      }
      if (this.releaseAddress(rec.Id, ep, this.table.find(ep.NetworkID))) changed = true;
      Object.assign(ep, unwired());
    }
    for (const key of Object.keys(settings.Ports)) settings.Ports[key] = null;
    settings.HostInterfaces = {};
    settings.SandboxKey = "";
    return changed;
  }

  /**
   * Daemon start: addresses held by containers that no longer run go back, and each running
   * container's addresses are held again (a pool saved before it took them may miss them).
   */
  restore(running: ContainerRecord[]): void {
    const alive = new Set(running.map((r) => r.Id));
    for (const n of this.table.bridges()) {
      const pool = n.pool;
      if (!pool) continue;
      for (const { address, owner } of pool.inUse()) if (!alive.has(owner)) pool.release(address);
    }
    for (const rec of running) {
      for (const ep of Object.values(rec.NetworkSettings?.Networks ?? {})) {
        const pool = this.table.find(ep.NetworkID)?.pool;
        if (pool && ep.IPAddress && pool.state.allocated[ep.IPAddress] === undefined)
          pool.state.allocated[ep.IPAddress] = rec.Id;
      }
    }
  }
}
