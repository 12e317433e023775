// Published ports (-p, -P) of the running containers: which host ports each holds, checked at
// create, chosen at start (a free ephemeral port for -p 80 and -P), and handed to the firewall
// (firewall.ts) as its port maps. A port is held only while its container runs.
import { conflict } from "../../../shared/errors.js";
import type { ContainerRecord, NetworkSettings } from "../container/types.js";
import type { FirewallPort } from "./firewall.js";
import {
  clash,
  ephemeralRange,
  portRequests,
  probeHostPort,
  type PortRequest,
  type PublishedPort,
} from "./ports.js";

type HeldPort = PublishedPort & { containerIp: string };

export class PublishedPorts {
  /** Ports in force per running container. */
  private readonly held = new Map<string, HeldPort[]>();

  /** `nameOf` names a container in a clash message ("web (0123456789ab)"). */
  constructor(private readonly nameOf: (containerId: string) => string) {}

  private active(exceptId: string): Array<{ id: string; port: PublishedPort }> {
    const out: Array<{ id: string; port: PublishedPort }> = [];
    for (const [id, list] of this.held) if (id !== exceptId) for (const port of list) out.push({ id, port });
    return out;
  }

  /** 409 when a fixed host port is already published by another running container. */
  checkFree(requests: PortRequest[], selfId: string): void {
    const active = this.active(selfId);
    for (const r of requests) {
      if (r.hostPorts[0] === 0 || r.hostPorts[0] !== r.hostPorts[1]) continue;
      const want = { protocol: r.protocol, hostIp: r.hostIp, hostPort: r.hostPorts[0] };
      const holder = active.find((a) => clash(a.port, want));
      if (holder) {
        throw conflict(
          `Bind for ${r.hostIp || "0.0.0.0"}:${want.hostPort}/${r.protocol} failed: port is already allocated to container ${this.nameOf(holder.id)}: stop it or pick another host port`,
        );
      }
    }
  }

  /** At start, once the container has its addresses: its host ports, into settings.Ports. */
  async allocate(rec: ContainerRecord, settings: NetworkSettings): Promise<void> {
    const requests = portRequests(
      rec.HostConfig.PortBindings,
      rec.Config.ExposedPorts,
      rec.HostConfig.PublishAllPorts === true,
    );
    settings.Ports = {};
    for (const key of Object.keys(rec.Config.ExposedPorts ?? {})) settings.Ports[key] = null;
    if (requests.length === 0) return;
    const target = Object.values(settings.Networks).find((e) => e.IPAddress !== "");
    if (!target) return;
    this.checkFree(requests, rec.Id);
    const taken: PublishedPort[] = this.active(rec.Id).map((a) => a.port);
    const mine: HeldPort[] = [];
    const [low, high] = await ephemeralRange();
    for (const r of requests) {
      const [first, last] = r.hostPorts[0] === 0 ? [low, high] : r.hostPorts;
      let chosen: number | undefined;
      let lastError: unknown;
      const span = last - first + 1;
      // Ephemeral ports start at a random point so parallel daemons rarely probe the same ones.
      const start = r.hostPorts[0] === 0 ? Math.floor(Math.random() * span) : 0;
      for (let i = 0; i < span && chosen === undefined; i++) {
        const port = first + ((start + i) % span);
        const want = { protocol: r.protocol, hostIp: r.hostIp, hostPort: port };
        if ([...taken, ...mine].some((t) => clash(t, want))) continue;
        try {
          await probeHostPort(r.protocol, r.hostIp, port);
          chosen = port;
        } catch (e) {
          lastError = e;
          if (span === 1) throw e;
        }
      }
      if (chosen === undefined) {
        throw lastError instanceof Error
          ? lastError
          : conflict(`no free host port in ${first}-${last}/${r.protocol}: pick another range`);
      }
      mine.push({
        protocol: r.protocol,
        hostIp: r.hostIp,
        hostPort: chosen,
        containerPort: r.containerPort,
        containerIp: target.IPAddress,
      });
    }
    this.held.set(rec.Id, mine);
    for (const p of mine) {
      const key = `${p.containerPort}/${p.protocol}`;
      const list = settings.Ports[key] ?? [];
      list.push({ HostIp: p.hostIp || "0.0.0.0", HostPort: String(p.hostPort) });
      settings.Ports[key] = list;
    }
  }

  /** Whether the container holds any host port. */
  holds(containerId: string): boolean {
    return (this.held.get(containerId)?.length ?? 0) > 0;
  }

  /** The container's run ended: its ports go. True when it held any. */
  drop(containerId: string): boolean {
    const had = this.holds(containerId);
    this.held.delete(containerId);
    return had;
  }

  /** The container left the network of address `ip`: the ports published to it go. True when any did. */
  dropAddress(containerId: string, ip: string): boolean {
    const list = this.held.get(containerId) ?? [];
    if (!list.some((p) => p.containerIp === ip)) return false;
    this.held.set(
      containerId,
      list.filter((p) => p.containerIp !== ip),
    );
    return true;
  }

  /** At daemon start: only the ports the still-running containers recorded. */
  clear(): void {
    this.held.clear();
  }

  /** A running container's ports as its record lists them (daemon start). */
  restore(rec: ContainerRecord): void {
    const target = Object.values(rec.NetworkSettings?.Networks ?? {}).find((e) => e.IPAddress !== "");
    const ports: HeldPort[] = [];
    for (const [key, list] of Object.entries(rec.NetworkSettings?.Ports ?? {})) {
      const [port, protocol] = key.split("/");
      for (const b of list ?? []) {
        if (!target) continue;
        ports.push({
          protocol: protocol === "udp" ? "udp" : "tcp",
          hostIp: b.HostIp === "0.0.0.0" ? "" : b.HostIp,
          hostPort: Number(b.HostPort),
          containerPort: Number(port),
          containerIp: target.IPAddress,
        });
      }
    }
    if (ports.length > 0) this.held.set(rec.Id, ports);
  }

  /** The ports in force, by the container that holds them. */
  byContainer(): Array<[string, FirewallPort[]]> {
    return [...this.held].map(([id, list]) => [id, list.map((p) => ({ ...p }))]);
  }

  /** Every port in force, as the firewall's port maps take them. */
  inForce(): FirewallPort[] {
    const ports: FirewallPort[] = [];
    for (const list of this.held.values()) {
      for (const p of list) {
        ports.push({
          protocol: p.protocol,
          hostIp: p.hostIp,
          hostPort: p.hostPort,
          containerIp: p.containerIp,
          containerPort: p.containerPort,
        });
      }
    }
    return ports;
  }
}
