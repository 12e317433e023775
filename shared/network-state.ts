// What managers tell every agent about the cluster's overlay networks (issue 7): the networks
// (VXLAN id, subnet), where every endpoint lives (task addresses and the hosts that hold them,
// each node's own address on each network), and the services' virtual IPs and published ports.
// The leader computes it from the store (manager/allocator/state.ts), the dispatcher sends it
// with every change, and each agent applies it on its own host: VXLAN devices and bridges,
// forwarding and neighbour entries, DNS records, load-balancing and routing-mesh rules. Every
// host answers from its own copy, so DNS and load balancing keep working while managers fail over.
// Shared because manager and agent may not import each other.
//
// An agent trusts none of it blindly: addresses from it are written into `ip -batch`,
// `bridge -batch` and nft input on every host, so a node's self-reported address with a newline
// in it would run commands everywhere. checkNetworkState is the one gate a received state passes.
import { isIPv4 } from "node:net";

export interface OverlayNetwork {
  id: string;
  name: string;
  /** VXLAN network identifier (4096 and up, as swarmkit's allocator hands them out). */
  vni: number;
  /** CIDR, e.g. 10.0.1.0/24. */
  subnet: string;
  /** The routing mesh's network (made at cluster init). */
  ingress: boolean;
  /** Plain containers may join it (`--attachable`). */
  attachable: boolean;
}

/**
 * A node's own endpoint on a network it takes part in (swarmkit's "lb-" / ingress-sbox
 * endpoint): the gateway its local containers use, where its DNS answers, and the source
 * address routing-mesh traffic takes, so replies from another host come back to this one.
 */
export interface NodeEndpoint {
  networkId: string;
  nodeId: string;
  /** The node's underlay address (where VXLAN packets for it go). */
  hostAddr: string;
  /** Its address on the network, no prefix. */
  address: string;
}

/**
 * A task's endpoint on a network, or a plain container's on an attachable one (`docker run
 * --network`; then taskId is the attachment's id, serviceId is "" and containerId is set).
 * MAC addresses follow from the IP (02:42 + the 4 bytes).
 */
export interface TaskEndpoint {
  networkId: string;
  taskId: string;
  serviceId: string;
  nodeId: string;
  hostAddr: string;
  /** No prefix. */
  address: string;
  /** Names the task answers to on this network besides its service's: its task name, aliases. */
  names: string[];
  /** Only running tasks are load-balanced to and resolved by service name. */
  running: boolean;
  /** A plain container's attachment: the container's id on its node (which detaches unused ones). */
  containerId?: string;
}

export interface ServiceEndpoints {
  id: string;
  name: string;
  /** vip: the name resolves to a virtual IP per network; dnsrr: to every task address. */
  mode: "vip" | "dnsrr";
  vips: Array<{ networkId: string; address: string }>;
  /** Routing-mesh ports: published on every node, balanced over every running task. */
  ports: Array<{ protocol: "tcp" | "udp"; publishedPort: number; targetPort: number }>;
}

export interface NetworkState {
  /** Grows with every change; agents report the version they have applied in heartbeats. */
  version: number;
  networks: OverlayNetwork[];
  nodes: NodeEndpoint[];
  tasks: TaskEndpoint[];
  services: ServiceEndpoints[];
}

export const EMPTY_NETWORK_STATE: NetworkState = {
  version: 0,
  networks: [],
  nodes: [],
  tasks: [],
  services: [],
};

/** A state as received, with what was taken out of it and why (each reason names its node or object). */
export interface CheckedNetworkState {
  state: NetworkState;
  refused: string[];
}

type Fields = Record<string, unknown>;

function isObject(v: unknown): v is Fields {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Ids and names as the managers make them: no whitespace, no control characters, no quotes. */
function isToken(v: unknown): v is string {
  return typeof v === "string" && /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(v);
}

function isSubnet(v: unknown): v is string {
  if (typeof v !== "string") return false;
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(v);
  return m !== null && isIPv4(m[1]) && Number(m[2]) <= 32;
}

function isPort(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;
}

function show(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function checkNetwork(n: unknown): string | undefined {
  if (!isObject(n) || !isToken(n.id))
    return `network ${show(isObject(n) ? n.id : n)}: not a valid network id`;
  if (!isToken(n.name)) return `network ${n.id}: name ${show(n.name)} is not a valid name`;
  if (!Number.isInteger(n.vni) || (n.vni as number) < 1 || (n.vni as number) >= 2 ** 24)
    return `network ${n.id}: VXLAN id ${show(n.vni)} is not in 1-16777215`;
  if (!isSubnet(n.subnet)) return `network ${n.id}: subnet ${show(n.subnet)} is not an IPv4 CIDR`;
  if (typeof n.ingress !== "boolean" || typeof n.attachable !== "boolean")
    return `network ${n.id}: ingress and attachable must be booleans`;
  return undefined;
}

/** What is wrong with an endpoint, naming the node it claims to be on; undefined when nothing. */
function checkEndpoint(e: unknown, what: "node" | "task", networks: Set<string>): string | undefined {
  if (!isObject(e)) return `a ${what} endpoint that is not an object`;
  const node = isToken(e.nodeId) ? e.nodeId : show(e.nodeId);
  const who = what === "node" ? `node ${node}` : `task ${show(e.taskId)} on node ${node}`;
  if (!isToken(e.nodeId)) return `${who}: not a valid node id`;
  // "": the managers do not know it yet (hosts then write no entry for it).
  if (typeof e.hostAddr !== "string" || (e.hostAddr !== "" && !isIPv4(e.hostAddr)))
    return `${who}: underlay address ${show(e.hostAddr)} is not an IPv4 address`;
  if (typeof e.address !== "string" || !isIPv4(e.address))
    return `${who}: address ${show(e.address)} is not an IPv4 address`;
  if (!isToken(e.networkId) || !networks.has(e.networkId))
    return `${who}: network ${show(e.networkId)} is not in the state`;
  if (what === "task") {
    if (!isToken(e.taskId)) return `${who}: not a valid task id`;
    if (typeof e.serviceId !== "string" || (e.serviceId !== "" && !isToken(e.serviceId)))
      return `${who}: service id ${show(e.serviceId)} is not valid`;
    if (!Array.isArray(e.names) || !e.names.every((n) => typeof n === "string"))
      return `${who}: names must be strings`;
    if (typeof e.running !== "boolean") return `${who}: running must be a boolean`;
    if (e.containerId !== undefined && !isToken(e.containerId))
      return `${who}: container id ${show(e.containerId)} is not valid`;
  }
  return undefined;
}

function checkService(s: unknown, networks: Set<string>): string | undefined {
  if (!isObject(s) || !isToken(s.id)) return `service ${show(isObject(s) ? s.id : s)}: not a valid id`;
  if (typeof s.name !== "string") return `service ${s.id}: name must be a string`;
  if (s.mode !== "vip" && s.mode !== "dnsrr")
    return `service ${s.id}: mode ${show(s.mode)} is not vip or dnsrr`;
  for (const v of list(s.vips)) {
    if (!isObject(v) || typeof v.address !== "string" || !isIPv4(v.address))
      return `service ${s.id}: virtual IP ${show(isObject(v) ? v.address : v)} is not an IPv4 address`;
    if (!isToken(v.networkId) || !networks.has(v.networkId))
      return `service ${s.id}: virtual IP on network ${show(v.networkId)}, which is not in the state`;
  }
  for (const p of list(s.ports)) {
    if (
      !isObject(p) ||
      (p.protocol !== "tcp" && p.protocol !== "udp") ||
      !isPort(p.publishedPort) ||
      !isPort(p.targetPort)
    )
      return `service ${s.id}: published port ${show(p)} is not valid`;
  }
  if (!Array.isArray(s.vips) || !Array.isArray(s.ports))
    return `service ${s.id}: vips and ports must be lists`;
  return undefined;
}

/**
 * A network state as received from a manager (or read back from disk), checked entry by entry:
 * a network, endpoint or service with a value that is not what it must be (an address that is
 * not an IPv4 address, an id with spaces or newlines, a VNI out of range) is left out, and why is
 * said in `refused`, so that nothing of it ever reaches a command line or an nft rule. Throws
 * only when the whole thing is not a state (no version, or not an object).
 */
export function checkNetworkState(raw: unknown): CheckedNetworkState {
  if (!isObject(raw) || !Number.isSafeInteger(raw.version) || (raw.version as number) < 0)
    throw new Error("not a network state: an object with a version is expected");
  const refused: string[] = [];
  const keep = <T>(items: unknown[], check: (x: unknown) => string | undefined): T[] =>
    items.filter((x) => {
      const why = check(x);
      if (why !== undefined) refused.push(why);
      return why === undefined;
    }) as T[];
  const networks = keep<OverlayNetwork>(list(raw.networks), checkNetwork);
  const ids = new Set(networks.map((n) => n.id));
  const state: NetworkState = {
    version: raw.version as number,
    networks,
    nodes: keep<NodeEndpoint>(list(raw.nodes), (e) => checkEndpoint(e, "node", ids)),
    tasks: keep<TaskEndpoint>(list(raw.tasks), (e) => checkEndpoint(e, "task", ids)),
    services: keep<ServiceEndpoints>(list(raw.services), (s) => checkService(s, ids)),
  };
  return { state, refused };
}
