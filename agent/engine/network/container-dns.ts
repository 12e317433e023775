// What a container on a network is called and how it looks names up: its DNS names (served by
// the daemon on every network's gateway, dns/server.ts), and the /etc/hosts, /etc/resolv.conf and
// /etc/hostname it gets. Other names go to the host's resolvers, read from its resolv.conf.
import { hostname as hostHostname } from "node:os";
import { readFile } from "node:fs/promises";
import type { NetworkState } from "../../../shared/network-state.js";
import type { Logger } from "../../../shared/logging.js";
import type { ContainerRecord, EndpointSettings } from "../container/types.js";
import { DnsRecords } from "../dns/records.js";
import { clusterNames } from "../dns/cluster.js";
import { DnsServer } from "../dns/server.js";
import { UpstreamResolver, type UpstreamServer } from "../dns/upstream.js";
import { renderHostname, renderHosts, writeInPlace } from "../dns/etc-files.js";
import {
  containerResolvConf,
  readHostResolvConf,
  renderResolvConf,
  type ResolvConf,
} from "../dns/resolv-conf.js";
import type { NetworkTable } from "./networks.js";
import { linkAliases } from "./link-aliases.js";
import { DEFAULT_NETWORK, type EtcPaths } from "./types.js";

export class ContainerDns {
  private readonly records = new DnsRecords();
  private readonly server: DnsServer;
  private readonly upstream: UpstreamResolver;
  private upstreams: UpstreamServer[] = [];

  constructor(
    private readonly table: NetworkTable,
    private readonly opts: { resolvConfPath: string; dnsPort: number; log: Logger },
  ) {
    this.upstream = new UpstreamResolver(() => this.upstreams);
    this.server = new DnsServer({
      records: this.records,
      upstream: this.upstream,
      log: opts.log.child({ module: "dns" }),
    });
  }

  /** Serve DNS on a network's gateway address, to the containers of that network's subnet alone. */
  listen(address: string, subnet: string): Promise<void> {
    return this.server.listen(address, this.opts.dnsPort, subnet);
  }

  unlisten(address: string): Promise<void> {
    return this.server.unlisten(address);
  }

  /**
   * The host's resolv.conf, read at start and again at every container start (cheap, and a
   * changed file is picked up without a restart). Our own gateways never become upstreams:
   * that would make the daemon forward to itself.
   */
  async hostResolvConf(): Promise<ResolvConf> {
    const conf = await readHostResolvConf(this.opts.resolvConfPath);
    const gateways = new Set(this.table.bridges().map((n) => n.pool?.state.gateway));
    this.upstreams = conf.nameservers
      .filter((a) => !gateways.has(a))
      .map((address) => ({ address, port: 53 }));
    this.records.setSearchDomains(conf.search);
    return conf;
  }

  /** The cluster's names (services, tasks) from the newest network state applied. */
  setCluster(state: NetworkState): void {
    this.records.setCluster(clusterNames(state));
  }

  private namesOf(rec: ContainerRecord, ep: EndpointSettings): string[] {
    return [rec.Name, rec.Id.slice(0, 12), ...(ep.Aliases ?? [])];
  }

  /** DNS names on user-defined networks (the default bridge has none, as in Docker). */
  register(rec: ContainerRecord): void {
    this.records.removeContainer(rec.Id);
    this.records.setLinks(rec.Id, linkAliases(rec.HostConfig.Links));
    for (const [name, ep] of Object.entries(rec.NetworkSettings?.Networks ?? {})) {
      if (ep.IPAddress === "") continue;
      if (name === DEFAULT_NETWORK) {
        ep.DNSNames = null;
        continue;
      }
      ep.DNSNames = this.namesOf(rec, ep);
      this.records.setEndpoint({
        containerId: rec.Id,
        networkId: ep.NetworkID,
        ip: ep.IPAddress,
        names: ep.DNSNames,
      });
    }
  }

  forget(containerId: string): void {
    this.records.removeContainer(containerId);
  }

  async writeEtcFiles(rec: ContainerRecord, etc: EtcPaths): Promise<void> {
    const eps = Object.entries(rec.NetworkSettings?.Networks ?? {}).filter(([, e]) => e.IPAddress !== "");
    const hostname = rec.Config.Hostname || rec.Id.slice(0, 12);
    await writeInPlace(
      etc.hosts,
      renderHosts({
        hostname,
        domainname: rec.Config.Domainname,
        addresses: eps.map(([, e]) => e.IPAddress),
        extraHosts: rec.HostConfig.ExtraHosts ?? [],
        // --add-host name:host-gateway: the host as the container reaches it (Docker's default bridge gateway).
        hostGateway: this.table.find(DEFAULT_NETWORK)?.pool?.state.gateway ?? eps[0]?.[1].Gateway,
      }) + (rec.LinkHosts ?? []).map((l) => `${l}\n`).join(""),
    );
    await writeInPlace(etc.hostname, renderHostname(hostname));
    const host = await this.hostResolvConf();
    const first = eps[0];
    const userDns = rec.HostConfig.Dns ?? [];
    let conf;
    if (first && !(first[0] === DEFAULT_NETWORK && userDns.length > 0)) {
      const gateway = this.table.find(first[1].NetworkID)?.pool?.state.gateway ?? first[1].Gateway;
      conf = containerResolvConf(host, gateway, {
        search: rec.HostConfig.DnsSearch ?? undefined,
        options: rec.HostConfig.DnsOptions ?? undefined,
      });
    } else {
      conf = {
        nameservers: userDns.length > 0 ? userDns : host.nameservers,
        search: rec.HostConfig.DnsSearch?.length ? rec.HostConfig.DnsSearch : host.search,
        options: rec.HostConfig.DnsOptions?.length ? rec.HostConfig.DnsOptions : host.options,
      };
    }
    await writeInPlace(etc.resolvConf, renderResolvConf(conf));
  }

  /** --network host: the host's own files, as Docker gives them. */
  async writeHostModeFiles(rec: ContainerRecord, etc: EtcPaths): Promise<void> {
    const hosts = await readFile("/etc/hosts", "utf8").catch(() => "127.0.0.1\tlocalhost\n");
    const extra = renderHosts({ hostname: "", addresses: [], extraHosts: rec.HostConfig.ExtraHosts ?? [] })
      .split("\n")
      .slice(6)
      .join("\n");
    await writeInPlace(etc.hosts, hosts + extra);
    await writeInPlace(etc.hostname, renderHostname(hostHostname()));
    const resolv = await readFile(this.opts.resolvConfPath, "utf8").catch(() => "");
    await writeInPlace(etc.resolvConf, resolv);
  }

  async close(): Promise<void> {
    await this.server.close();
    this.upstream.close();
  }
}
