// Networks in the Engine API's shape (what `docker network inspect` shows), plus what shoal
// keeps to run them: the Linux bridge and the address pool.
import type { IpamRequest } from "../../../shared/engine-api.js";
import type { EndpointSettings } from "../container/types.js";
import type { AddressPoolState } from "./address-pool.js";

export type NetworkDriver = "bridge" | "host" | "null" | "overlay";

export interface IpamConfig {
  Subnet: string;
  Gateway: string;
  IPRange?: string;
}

export interface NetworkRecord {
  Name: string;
  Id: string;
  Created: string;
  /** "swarm" for the cluster's overlay networks, which the managers own (overlay/). */
  Scope: "local" | "swarm";
  Driver: NetworkDriver;
  EnableIPv6: boolean;
  IPAM: { Driver: "default"; Options: Record<string, string> | null; Config: IpamConfig[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigOnly: boolean;
  Options: Record<string, string>;
  Labels: Record<string, string>;
  /** The Linux bridge of a bridge network, or of an overlay network on this host. */
  BridgeName?: string;
  /** Address allocation, persisted with the network so no address is handed out twice across restarts. */
  Pool?: AddressPoolState;
}

/** POST /networks/create's body (the fields shoal reads). */
export interface CreateNetworkRequest {
  Name: string;
  Driver?: string;
  Internal?: boolean;
  Attachable?: boolean;
  EnableIPv6?: boolean;
  CheckDuplicate?: boolean;
  Labels?: Record<string, string> | null;
  Options?: Record<string, string> | null;
  IPAM?: IpamRequest | null;
}

/** The predefined networks every daemon has, as in Docker. */
export const DEFAULT_NETWORK = "bridge";
export const PREDEFINED = new Set(["bridge", "host", "none"]);

/** Option that names a bridge network's Linux bridge (Docker's driver option). */
export const BRIDGE_NAME_OPTION = "com.docker.network.bridge.name";

/** Docker's option that shows an overlay network's VXLAN id in `network inspect`. */
export const VXLAN_ID_OPTION = "com.docker.network.driver.overlay.vxlanid_list";

/** Host-side veths and user bridges carry these prefixes; anything else is not ours. */
export const VETH_PREFIX = "shv";
export const BRIDGE_PREFIX = "shb-";

/** The files a container gets as /etc/hosts, /etc/resolv.conf and /etc/hostname. */
export interface EtcPaths {
  hosts: string;
  resolvConf: string;
  hostname: string;
}

/** What a network's inspect lists per container. */
export interface AttachedContainer {
  id: string;
  name: string;
  endpoint: EndpointSettings;
}

/** The containers on a network, as the container engine knows them (network/ never reads its store). */
export type ContainersOf = (networkId: string) => AttachedContainer[];
