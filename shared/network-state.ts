// What managers tell every agent about the cluster's overlay networks (issue 7): the networks
// (VXLAN id, subnet), where every endpoint lives (task addresses and the hosts that hold them,
// each node's own address on each network), and the services' virtual IPs and published ports.
// The leader computes it from the store (manager/allocator/state.ts), the dispatcher sends it
// with every change, and each agent applies it on its own host: VXLAN devices and bridges,
// forwarding and neighbour entries, DNS records, load-balancing and routing-mesh rules. Every
// host answers from its own copy, so DNS and load balancing keep working while managers fail over.
// Shared because manager and agent may not import each other.

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
