// The daemon's DNS server: UDP and TCP on each bridge gateway address, where every container's
// resolv.conf points. It lives in the daemon's event loop, so everything here is asynchronous
// and every handler catches its own errors: a bad packet or a dead upstream must cost one
// answer, never the daemon. Each address answers only its own network's subnet: a neighbour
// that can route to a gateway address gets nothing (no open resolver, no names of ours).
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, isIPv4, isIPv6, type Server, type Socket } from "node:net";
import type { DecodedPacket } from "dns-packet";
import { conflict, errnoCode, internal, messageOf } from "../../../shared/errors.js";
import type { Logger } from "../../../shared/logging.js";
import { contains, parseIp, parseSubnet, type Subnet } from "../network/cidr.js";
import { decide, relayOverUdp, servfail } from "./answer.js";
import type { DnsRecords } from "./records.js";
import type { DnsProtocol, UpstreamResolver } from "./upstream.js";

export interface DnsServerOptions {
  records: DnsRecords;
  upstream: UpstreamResolver;
  log: Logger;
  /** Seconds our own answers may be cached; Docker says 600. */
  ttl?: number;
  /** A TCP client quiet this long is dropped, so idle connections cannot pile up. */
  tcpIdleMs?: number;
  /** Forwarded queries in flight beyond this get SERVFAIL at once instead of another socket. */
  maxForwards?: number;
}

interface Listener {
  requestedPort: number;
  port: number;
  udp: UdpSocket;
  tcp: Server;
  connections: Set<Socket>;
  closed: boolean;
  /** Who may ask; undefined: anyone (a listener on loopback for tests). */
  clients: Subnet | undefined;
}

/** "::ffff:172.18.0.2" is the same client as "172.18.0.2". */
function clientAddress(address: string): string {
  return address.startsWith("::ffff:") && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

function bindError(address: string, port: number, protocol: DnsProtocol, e: unknown): Error {
  const code = errnoCode(e);
  const hint =
    code === "EADDRINUSE"
      ? ": another process already serves that port there"
      : code === "EADDRNOTAVAIL"
        ? ": the address is not assigned to any interface of this host"
        : code === "EACCES"
          ? ": a port below 1024 needs root or CAP_NET_BIND_SERVICE"
          : "";
  return internal(`cannot listen for DNS on ${address}:${port} (${protocol}): ${messageOf(e)}${hint}`, e);
}

function bindUdp(address: string, port: number): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: isIPv6(address) ? "udp6" : "udp4" });
    const onError = (e: Error): void => {
      socket.close();
      reject(e);
    };
    socket.once("error", onError);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off("error", onError);
      resolve(socket);
    });
  });
}

function bindTcp(address: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen({ host: address, port, exclusive: true }, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}

function closeTcp(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export class DnsServer {
  private readonly records: DnsRecords;
  private readonly upstream: UpstreamResolver;
  private readonly log: Logger;
  private readonly ttl: number;
  private readonly tcpIdleMs: number;
  private readonly maxForwards: number;
  private readonly listeners = new Map<string, Listener>();
  /** Binds in progress, so two listen() calls for one address share one bind. */
  private readonly binding = new Map<string, Promise<void>>();
  private forwards = 0;
  /** Queries and TCP connections dropped because they came from outside the listener's network. */
  refusedQueries = 0;

  constructor(opts: DnsServerOptions) {
    this.records = opts.records;
    this.upstream = opts.upstream;
    this.log = opts.log;
    this.ttl = opts.ttl ?? 600;
    this.tcpIdleMs = opts.tcpIdleMs ?? 10_000;
    this.maxForwards = opts.maxForwards ?? 1024;
  }

  /**
   * Serve DNS on `address`, UDP and TCP on the same port, to clients inside `clients` (a CIDR;
   * absent: anyone). Listening again on an address already served changes only who may ask;
   * asking for another port there is a conflict. Port 0 picks a free port (for tests): see portOf().
   */
  async listen(address: string, port = 53, clients?: string): Promise<void> {
    const allowed = clients === undefined ? undefined : parseSubnet(clients, "DNS client subnet");
    // A loop, not an if: after a failed bind, another waiter may have started binding again.
    for (let pending = this.binding.get(address); pending; pending = this.binding.get(address)) {
      await pending.catch(() => undefined);
    }
    const current = this.listeners.get(address);
    if (current) {
      if (port === current.requestedPort || port === current.port) {
        current.clients = allowed;
        return;
      }
      throw conflict(
        `DNS is already served on ${address}:${current.port}, cannot serve it on port ${port} too`,
      );
    }
    const bind = this.bind(address, port, allowed).then((l) => void this.listeners.set(address, l));
    this.binding.set(address, bind);
    try {
      await bind;
    } finally {
      this.binding.delete(address);
    }
  }

  async unlisten(address: string): Promise<void> {
    await this.binding.get(address)?.catch(() => undefined);
    const l = this.listeners.get(address);
    if (!l) return;
    this.listeners.delete(address);
    l.closed = true;
    for (const c of l.connections) c.destroy();
    l.udp.close();
    await closeTcp(l.tcp);
  }

  /** Stop serving everywhere. The upstream resolver belongs to the caller and stays open. */
  async close(): Promise<void> {
    await Promise.all([...this.binding.values()].map((p) => p.catch(() => undefined)));
    await Promise.all([...this.listeners.keys()].map((a) => this.unlisten(a)));
  }

  addresses(): string[] {
    return [...this.listeners.keys()];
  }

  /** The port DNS is served on at `address`, the one picked when listen() was given 0. */
  portOf(address: string): number | undefined {
    return this.listeners.get(address)?.port;
  }

  /** Whether `client` may ask at `l`; a refusal is counted and logged, and gets no answer. */
  private admits(l: Listener, client: string, protocol: DnsProtocol): boolean {
    if (!l.clients) return true;
    let ip: number | undefined;
    try {
      ip = parseIp(client);
    } catch {
      ip = undefined;
    }
    if (ip !== undefined && contains(l.clients, ip)) return true;
    this.refusedQueries++;
    this.log.debug(
      { client, protocol, refused: this.refusedQueries },
      "dns: dropped a query from outside the network",
    );
    return false;
  }

  private async bind(address: string, port: number, clients: Subnet | undefined): Promise<Listener> {
    // Port 0 gives UDP and TCP different ports; take UDP's and ask TCP for the same one,
    // trying again in the rare case TCP already has it in use.
    for (let attempt = 0; ; attempt++) {
      let udp: UdpSocket;
      try {
        udp = await bindUdp(address, port);
      } catch (e) {
        throw bindError(address, port, "udp", e);
      }
      const bound = udp.address().port;
      let tcp: Server;
      try {
        tcp = await bindTcp(address, bound);
      } catch (e) {
        udp.close();
        if (port === 0 && errnoCode(e) === "EADDRINUSE" && attempt < 20) continue;
        throw bindError(address, bound, "tcp", e);
      }
      const l: Listener = {
        requestedPort: port,
        port: bound,
        udp,
        tcp,
        connections: new Set(),
        closed: false,
        clients,
      };
      this.serveUdp(l);
      this.serveTcp(l);
      this.log.info({ address, port: bound }, "dns: listening");
      return l;
    }
  }

  private serveUdp(l: Listener): void {
    l.udp.on("error", (e) => this.log.warn({ err: messageOf(e) }, "dns: UDP socket error"));
    l.udp.on("message", (msg, rinfo) => {
      const client = clientAddress(rinfo.address);
      if (!this.admits(l, client, "udp")) return;
      this.respond(msg, client, "udp")
        .then((reply) => {
          if (!reply || l.closed) return;
          l.udp.send(reply, rinfo.port, rinfo.address, (e) => {
            if (e) this.log.debug({ client: rinfo.address, err: messageOf(e) }, "dns: cannot send an answer");
          });
        })
        .catch((e: unknown) => this.log.warn({ err: messageOf(e) }, "dns: UDP query failed"));
    });
  }

  private serveTcp(l: Listener): void {
    l.tcp.on("error", (e) => this.log.warn({ err: messageOf(e) }, "dns: TCP server error"));
    l.tcp.on("connection", (socket) => {
      try {
        this.serveConnection(l, socket);
      } catch (e) {
        this.log.warn({ err: messageOf(e) }, "dns: TCP connection failed");
        socket.destroy();
      }
    });
  }

  /** One TCP client: length-prefixed queries, possibly several in a row (RFC 7766). */
  private serveConnection(l: Listener, socket: Socket): void {
    if (l.closed) return void socket.destroy();
    const client = clientAddress(socket.remoteAddress ?? "");
    if (!this.admits(l, client, "tcp")) return void socket.destroy();
    l.connections.add(socket);
    socket.on("close", () => l.connections.delete(socket));
    socket.on("error", (e) => this.log.debug({ client, err: messageOf(e) }, "dns: TCP client error"));
    socket.setTimeout(this.tcpIdleMs, () => socket.destroy());
    let pending: Buffer = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const size = pending.readUInt16BE(0);
        // A zero-length message cannot be a query; nothing sane follows it either.
        if (size === 0) return void socket.destroy();
        if (pending.length < 2 + size) return;
        const msg = pending.subarray(2, 2 + size);
        pending = pending.subarray(2 + size);
        this.respond(Buffer.from(msg), client, "tcp")
          .then((reply) => {
            if (socket.destroyed) return;
            if (!reply) return void socket.destroy();
            const length = Buffer.alloc(2);
            length.writeUInt16BE(reply.length);
            socket.write(Buffer.concat([length, reply]));
          })
          .catch((e: unknown) => {
            this.log.warn({ client, err: messageOf(e) }, "dns: TCP query failed");
            socket.destroy();
          });
      }
    });
  }

  /** The answer to one query, or undefined when the query is not worth one (malformed). */
  private async respond(msg: Buffer, client: string, protocol: DnsProtocol): Promise<Buffer | undefined> {
    const d = decide(msg, client, this.records, this.ttl, protocol);
    if (d.kind === "malformed") {
      this.log.debug({ client, protocol, bytes: msg.length }, "dns: ignored a malformed query");
      return undefined;
    }
    if (d.kind === "local") {
      const { name, type } = d.question;
      this.log.debug({ client, protocol, name, type, answers: d.answers }, "dns: answered locally");
      return d.reply;
    }
    const reply = await this.forward(msg, d.query, protocol);
    const q = d.query.questions?.[0];
    this.log.debug(
      { client, protocol, name: q?.name, type: q?.type, result: reply ? "forwarded" : "servfail" },
      "dns: forwarded",
    );
    if (!reply) return servfail(d.query);
    return protocol === "udp" ? relayOverUdp(reply, d.query) : reply;
  }

  private async forward(
    msg: Buffer,
    query: DecodedPacket,
    protocol: DnsProtocol,
  ): Promise<Buffer | undefined> {
    if (this.forwards >= this.maxForwards) {
      this.log.debug({ id: query.id }, "dns: too many queries in flight, not forwarding");
      return undefined;
    }
    this.forwards++;
    try {
      return await this.upstream.forward(msg, protocol);
    } finally {
      this.forwards--;
    }
  }
}
