// Published ports as the host's own loopback reaches them (`-p 127.0.0.1:8080:80`, and
// `localhost:8080` for a port published on every address). nftables cannot do this part: a
// connection from 127.0.0.1 DNAT'ed to a container would leave on its bridge with a loopback
// source, which the kernel drops unless the bridge has route_localnet on, and route_localnet lets
// every container on that bridge reach what the host binds to localhost (CVE-2020-8558). So, as
// dockerd does with its default userland proxy, the daemon listens on the loopback address and
// relays each connection (TCP) or each client's datagrams (UDP) to the container. The relay runs
// in the daemon: while it restarts, loopback connections are refused and open ones are cut;
// connections from anywhere else never pass through it.
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, createServer, type Server, type Socket } from "node:net";
import { conflict, errnoCode, messageOf } from "../../../shared/errors.js";
import type { Logger } from "../../../shared/logging.js";

export interface LoopbackRoute {
  protocol: "tcp" | "udp";
  /** A 127.0.0.0/8 address. */
  listenIp: string;
  port: number;
  targetIp: string;
  targetPort: number;
}

export interface LoopbackFailure {
  route: LoopbackRoute;
  error: Error;
}

/** A UDP client quiet this long loses its relay socket (Docker's proxy waits 90 s). */
const UDP_IDLE_MS = 60_000;
/** UDP clients relayed at once per port; datagrams from more are dropped. */
const UDP_MAX_CLIENTS = 1024;

interface Relay {
  route: LoopbackRoute;
  close: () => Promise<void>;
}

function keyOf(r: LoopbackRoute): string {
  return `${r.protocol} ${r.listenIp}:${r.port}`;
}

function bindFailure(r: LoopbackRoute, e: unknown): Error {
  if (errnoCode(e) === "EADDRINUSE")
    return conflict(
      `Bind for ${r.listenIp}:${r.port}/${r.protocol} failed: port is already in use by another program on this host; pick another host port`,
    );
  return new Error(`cannot listen on ${r.listenIp}:${r.port}/${r.protocol}: ${messageOf(e)}`);
}

async function tcpRelay(route: LoopbackRoute, log: Logger): Promise<Relay> {
  const connections = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    // Read at connect time, so a route whose container moved takes effect for new connections.
    const upstream = connect({
      host: relay.route.targetIp,
      port: relay.route.targetPort,
      allowHalfOpen: true,
    });
    connections.add(client).add(upstream);
    const end = (e?: Error): void => {
      if (e) log.debug({ port: route.port, err: messageOf(e) }, "loopback proxy: connection failed");
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", () => connections.delete(client));
    upstream.on("error", end).on("close", () => connections.delete(upstream));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: route.listenIp, port: route.port, exclusive: true }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (e) =>
    log.warn({ port: route.port, err: messageOf(e) }, "loopback proxy: server error"),
  );
  const relay: Relay = {
    route,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of connections) c.destroy();
        server.close(() => resolve());
      }),
  };
  return relay;
}

async function udpRelay(route: LoopbackRoute, log: Logger): Promise<Relay> {
  const listener: UdpSocket = createSocket("udp4");
  const clients = new Map<string, { socket: UdpSocket; timer: NodeJS.Timeout }>();
  const forget = (key: string): void => {
    const c = clients.get(key);
    if (!c) return;
    clients.delete(key);
    clearTimeout(c.timer);
    c.socket.close();
  };
  listener.on("message", (msg, from) => {
    const key = `${from.address}:${from.port}`;
    let c = clients.get(key);
    if (!c) {
      if (clients.size >= UDP_MAX_CLIENTS) return;
      const socket = createSocket("udp4");
      socket.on("message", (reply) => listener.send(reply, from.port, from.address));
      socket.on("error", (e) => {
        log.debug({ port: route.port, err: messageOf(e) }, "loopback proxy: UDP relay error");
        forget(key);
      });
      c = { socket, timer: setTimeout(() => forget(key), UDP_IDLE_MS).unref() };
      clients.set(key, c);
    } else {
      c.timer.refresh();
    }
    c.socket.send(msg, relay.route.targetPort, relay.route.targetIp);
  });
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.bind({ address: route.listenIp, port: route.port, exclusive: true }, () => {
      listener.off("error", reject);
      resolve();
    });
  });
  listener.on("error", (e) => log.warn({ port: route.port, err: messageOf(e) }, "loopback proxy: UDP error"));
  const relay: Relay = {
    route,
    close: () =>
      new Promise<void>((resolve) => {
        for (const key of [...clients.keys()]) forget(key);
        listener.close(() => resolve());
      }),
  };
  return relay;
}

export class LoopbackProxy {
  private readonly relays = new Map<string, Relay>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly log: Logger) {}

  /**
   * Relay exactly `routes` (the first route for a listening address wins): new ones are
   * opened, gone ones closed with their connections, moved ones retargeted. Returns the routes
   * that could not be opened; the others are in force.
   */
  sync(routes: LoopbackRoute[]): Promise<LoopbackFailure[]> {
    const run = (): Promise<LoopbackFailure[]> => this.syncNow(routes);
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async syncNow(routes: LoopbackRoute[]): Promise<LoopbackFailure[]> {
    const wanted = new Map<string, LoopbackRoute>();
    for (const r of routes) if (!wanted.has(keyOf(r))) wanted.set(keyOf(r), r);
    for (const [key, relay] of [...this.relays]) {
      if (wanted.has(key)) continue;
      this.relays.delete(key);
      await relay.close();
    }
    const failures: LoopbackFailure[] = [];
    for (const [key, route] of wanted) {
      const relay = this.relays.get(key);
      if (relay) {
        relay.route = route;
        continue;
      }
      try {
        this.relays.set(key, await (route.protocol === "tcp" ? tcpRelay : udpRelay)(route, this.log));
      } catch (e) {
        failures.push({ route, error: bindFailure(route, e) });
      }
    }
    return failures;
  }

  close(): Promise<void> {
    return this.sync([]).then(() => undefined);
  }
}
