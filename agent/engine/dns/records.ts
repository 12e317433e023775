// The names the daemon's DNS server knows: one endpoint per (container, network). Pure data, no
// I/O, so network/container-dns.ts can update it synchronously as containers connect and disconnect,
// and the server reads a consistent view for every query.
//
// A query is scoped by who asks: the source address identifies one endpoint, hence one
// container, and that container sees the names on every network it is on (like Docker's
// per-sandbox resolver), not only the network the query arrived from.
import { isIPv4 } from "node:net";
import { EMPTY_CLUSTER_NAMES, type ClusterNames } from "./cluster.js";

export interface DnsEndpoint {
  containerId: string;
  networkId: string;
  ip: string;
  /** Container name, aliases, short id...: every name that resolves to `ip` on this network. */
  names: string[];
}

/** DNS names compare case-insensitively, and "web." is the same name as "web". */
export function normalizeName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}

function endpointKey(containerId: string, networkId: string): string {
  return `${containerId}\u0000${networkId}`;
}

function ipv4Number(ip: string): number {
  return ip.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
}

export class DnsRecords {
  // Insertion order matters: reverse() answers with the endpoint set first.
  private readonly byKey = new Map<string, DnsEndpoint>();
  private searchDomains: string[] = [];
  /** --link aliases per linking container: alias → the linked container's name (network/link-aliases.ts). */
  private readonly links = new Map<string, Map<string, string>>();
  /** The cluster's names per overlay network (dns/cluster.ts), replaced whole on every apply. */
  private cluster: ClusterNames = EMPTY_CLUSTER_NAMES;

  /**
   * Replace the cluster's records. A name the cluster knows on one of the asker's networks is
   * answered from the cluster alone (a service name wins over a container alias of that name).
   */
  setCluster(names: ClusterNames): void {
    this.cluster = names;
  }

  /**
   * The search domains containers inherit from the host. Some resolvers (busybox's nslookup)
   * only ever ask "web.corp.example" for "web"; the host's DNS knows no container, so such a
   * name is answered as the container name it was made from.
   */
  setSearchDomains(domains: string[]): void {
    this.searchDomains = domains.map(normalizeName).filter((d) => d !== "");
  }

  /** The name itself, then the name with each search domain taken off its end. */
  private candidates(qname: string): string[] {
    const name = normalizeName(qname);
    const out = [name];
    for (const d of this.searchDomains) {
      if (name.endsWith(`.${d}`)) out.push(name.slice(0, -d.length - 1));
    }
    return out;
  }

  setEndpoint(e: DnsEndpoint): void {
    const names = [...new Set(e.names.map(normalizeName).filter((n) => n !== ""))];
    const key = endpointKey(e.containerId, e.networkId);
    // Delete first so a replaced endpoint moves to the end, as a fresh connect would.
    this.byKey.delete(key);
    this.byKey.set(key, { containerId: e.containerId, networkId: e.networkId, ip: e.ip, names });
  }

  removeEndpoint(containerId: string, networkId: string): void {
    this.byKey.delete(endpointKey(containerId, networkId));
  }

  removeContainer(containerId: string): void {
    for (const [key, e] of this.byKey) if (e.containerId === containerId) this.byKey.delete(key);
    this.links.delete(containerId);
  }

  /** A container's --link aliases; only that container resolves them. */
  setLinks(containerId: string, aliases: Map<string, string>): void {
    const normalized = new Map([...aliases].map(([a, n]) => [normalizeName(a), normalizeName(n)]));
    if (normalized.size > 0) this.links.set(containerId, normalized);
    else this.links.delete(containerId);
  }

  /** The container name a link alias of the asker stands for, if `name` is one. */
  private linkTarget(clientIp: string, name: string): string | undefined {
    for (const e of this.byKey.values()) {
      if (e.ip !== clientIp) continue;
      const target = this.links.get(e.containerId)?.get(name);
      if (target !== undefined) return target;
    }
    return undefined;
  }

  /** Copies, so callers cannot change the records behind the server's back. */
  endpoints(): DnsEndpoint[] {
    return [...this.byKey.values()].map((e) => ({ ...e, names: [...e.names] }));
  }

  /**
   * The IPv4 addresses `qname` has for the container at `clientIp` (sorted, unique), or
   * undefined when no endpoint it can see has that name: the caller then forwards the query.
   */
  lookup(clientIp: string, qname: string): string[] | undefined {
    const networks = this.networksOf(clientIp);
    const visible = this.visibleOn(networks);
    for (const candidate of this.candidates(qname)) {
      const name = this.linkTarget(clientIp, candidate) ?? candidate;
      const fromCluster = this.clusterLookup(networks, name);
      if (fromCluster !== undefined) return fromCluster;
      const ips = new Set<string>();
      for (const e of visible) {
        if (isIPv4(e.ip) && e.names.includes(name)) ips.add(e.ip);
      }
      if (ips.size > 0) return [...ips].sort((a, b) => ipv4Number(a) - ipv4Number(b));
    }
    return undefined;
  }

  /**
   * Whether `qname` is a container name the client can see, whatever its addresses: the server
   * then answers other record types (AAAA...) with an empty NOERROR instead of forwarding, so
   * resolvers neither wait on the host's DNS nor get a stranger's address for a local name.
   */
  isLocalName(clientIp: string, qname: string): boolean {
    const names = this.candidates(qname).map((n) => this.linkTarget(clientIp, n) ?? n);
    const networks = this.networksOf(clientIp);
    if (names.some((n) => this.clusterLookup(networks, n) !== undefined)) return true;
    return this.visibleOn(networks).some((e) => names.some((n) => e.names.includes(n)));
  }

  /** The first name of the endpoint holding `ip` on a network the client shares, for PTR. */
  reverse(clientIp: string, ip: string): string | undefined {
    const networks = this.networksOf(clientIp);
    for (const e of this.visibleOn(networks)) {
      if (e.ip === ip && e.names.length > 0) return e.names[0];
    }
    for (const net of networks) {
      const name = this.cluster.reverse.get(net)?.get(ip);
      if (name !== undefined) return name;
    }
    return undefined;
  }

  /** The cluster's addresses for `name` on the client's networks, undefined if none knows it. */
  private clusterLookup(networks: Set<string>, name: string): string[] | undefined {
    let found: Set<string> | undefined;
    for (const net of networks) {
      const ips = this.cluster.names.get(net)?.get(name);
      if (ips === undefined) continue;
      found ??= new Set();
      for (const ip of ips) found.add(ip);
    }
    return found === undefined ? undefined : [...found].sort((a, b) => ipv4Number(a) - ipv4Number(b));
  }

  /**
   * The networks of whoever asks from `clientIp`: those of the local container(s) owning it,
   * and those of a cluster task with that address. A stranger has none.
   */
  private networksOf(clientIp: string): Set<string> {
    const containers = new Set<string>();
    for (const e of this.byKey.values()) if (e.ip === clientIp) containers.add(e.containerId);
    const networks = new Set<string>(this.cluster.clientNetworks.get(clientIp) ?? []);
    for (const e of this.byKey.values()) if (containers.has(e.containerId)) networks.add(e.networkId);
    return networks;
  }

  /** The local endpoints on any of `networks`. */
  private visibleOn(networks: Set<string>): DnsEndpoint[] {
    if (networks.size === 0) return [];
    return [...this.byKey.values()].filter((e) => networks.has(e.networkId));
  }
}
