// Forwarding of the names the daemon does not know to the host's resolvers. The daemon forwards
// from the host's namespace, so even a loopback resolver (systemd-resolved at 127.0.0.53) works,
// which a container asking it directly could not reach.
//
// The query goes out byte for byte, id included, and the answer comes back the same way: the
// client matches it to its question and EDNS sizes stay between the client and the resolver.
import { createSocket } from "node:dgram";
import { connect, isIPv6 } from "node:net";
import { messageOf } from "../../../shared/errors.js";
import { silentLogger, type Logger } from "../../../shared/logging.js";

export interface UpstreamServer {
  address: string;
  port: number;
}

export type DnsProtocol = "udp" | "tcp";

export interface UpstreamOptions {
  /** How long one server gets to answer before the next is tried. */
  timeoutMs?: number;
  log?: Logger;
}

const HEADER_BYTES = 12;
const FLAG_QR = 0x8000;
const FLAG_TC = 0x0200;
const RCODE_SERVFAIL = 2;
const RCODE_REFUSED = 5;

function isAnswerTo(query: Buffer, answer: Buffer): boolean {
  return (
    answer.length >= HEADER_BYTES &&
    answer.readUInt16BE(0) === query.readUInt16BE(0) &&
    (answer.readUInt16BE(2) & FLAG_QR) !== 0
  );
}

function rcodeOf(answer: Buffer): number {
  return answer.readUInt16BE(2) & 0x0f;
}

export class UpstreamResolver {
  private readonly timeoutMs: number;
  private readonly log: Logger;
  /** Cancels for the exchanges in flight, so close() leaves no socket or timer behind. */
  private readonly inFlight = new Set<(e: Error) => void>();
  private closed = false;

  constructor(
    private readonly servers: () => UpstreamServer[] | Promise<UpstreamServer[]>,
    opts: UpstreamOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.log = opts.log ?? silentLogger();
  }

  /**
   * The answer of the first server that gives a usable one, undefined when none did. A UDP
   * answer cut short (TC) is asked again over TCP so the client gets it whole. SERVFAIL and
   * REFUSED move on to the next server, as Docker and glibc do; if every server says so the
   * last such answer is relayed.
   */
  async forward(query: Buffer, protocol: DnsProtocol): Promise<Buffer | undefined> {
    if (query.length < HEADER_BYTES || this.closed) return undefined;
    let servers: UpstreamServer[];
    try {
      servers = await this.servers();
    } catch (e) {
      this.log.warn({ err: messageOf(e) }, "dns: cannot list the upstream resolvers");
      return undefined;
    }
    let fallback: Buffer | undefined;
    for (const server of servers) {
      if (this.closed) break;
      const where = `${server.address}:${server.port}`;
      let answer: Buffer;
      try {
        answer = protocol === "udp" ? await this.viaUdp(query, server) : await this.viaTcp(query, server);
      } catch (e) {
        this.log.debug({ upstream: where, protocol, err: messageOf(e) }, "dns: upstream failed");
        continue;
      }
      if (protocol === "udp" && (answer.readUInt16BE(2) & FLAG_TC) !== 0) {
        try {
          answer = await this.viaTcp(query, server);
        } catch (e) {
          // The cut answer is still an answer: the client may retry over TCP itself.
          this.log.debug(
            { upstream: where, err: messageOf(e) },
            "dns: TCP retry of a truncated answer failed",
          );
        }
      }
      const rcode = rcodeOf(answer);
      if (rcode !== RCODE_SERVFAIL && rcode !== RCODE_REFUSED) return answer;
      fallback = answer;
    }
    return fallback;
  }

  /** Abort every exchange in flight; later forwards answer undefined at once. */
  close(): void {
    this.closed = true;
    for (const cancel of [...this.inFlight]) cancel(new Error("upstream resolver closed"));
  }

  private viaUdp(query: Buffer, server: UpstreamServer): Promise<Buffer> {
    return this.exchange((settle) => {
      const socket = createSocket(isIPv6(server.address) ? "udp6" : "udp4");
      socket.on("error", (e) => settle(e));
      // Answers from anyone else, or to another id, are ignored: a connected socket on a fresh
      // random port plus the id check is what keeps a spoofed answer out.
      socket.on("message", (msg) => {
        if (isAnswerTo(query, msg)) settle(undefined, msg);
      });
      // A connected socket also turns an ICMP "port unreachable" into an error at once, so a
      // dead server costs no timeout.
      let finished = false;
      socket.connect(server.port, server.address, (e?: Error) => {
        if (e) return settle(e);
        // The exchange may have timed out while connecting; a closed socket throws on send.
        if (finished) return;
        socket.send(query, (err) => {
          if (err) settle(err);
        });
      });
      return () => {
        finished = true;
        socket.removeAllListeners("message");
        socket.on("error", () => undefined);
        try {
          socket.close();
        } catch {
          // Already closed.
        }
      };
    });
  }

  private viaTcp(query: Buffer, server: UpstreamServer): Promise<Buffer> {
    return this.exchange((settle) => {
      const socket = connect({ host: server.address, port: server.port });
      const chunks: Buffer[] = [];
      let received = 0;
      socket.on("error", (e) => settle(e));
      socket.on("close", () => settle(new Error("connection closed before the answer")));
      socket.on("connect", () => {
        const length = Buffer.alloc(2);
        length.writeUInt16BE(query.length);
        socket.write(Buffer.concat([length, query]));
      });
      socket.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        received += chunk.length;
        if (received < 2) return;
        const all = Buffer.concat(chunks);
        const size = all.readUInt16BE(0);
        if (all.length < 2 + size) return;
        const answer = all.subarray(2, 2 + size);
        if (isAnswerTo(query, answer)) settle(undefined, Buffer.from(answer));
        else settle(new Error("answer does not match the query id"));
      });
      return () => {
        socket.removeAllListeners("data");
        socket.removeAllListeners("close");
        socket.on("error", () => undefined);
        socket.destroy();
      };
    });
  }

  /**
   * Run one request/answer exchange: `start` opens the socket and returns its cleanup; the
   * first of answer, error, timeout or close() settles, and the cleanup runs exactly once.
   */
  private exchange(
    start: (settle: (e: Error | undefined, answer?: Buffer) => void) => () => void,
  ): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      let done = false;
      let cleanup: (() => void) | undefined;
      const settle = (e: Error | undefined, answer?: Buffer): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.inFlight.delete(cancel);
        cleanup?.();
        if (answer !== undefined && e === undefined) resolve(answer);
        else reject(e ?? new Error("no answer"));
      };
      const cancel = (e: Error): void => settle(e);
      const timer = setTimeout(
        () => settle(new Error(`no answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      this.inFlight.add(cancel);
      try {
        cleanup = start(settle);
      } catch (e) {
        settle(e instanceof Error ? e : new Error(messageOf(e)));
      }
      // An error raised synchronously by start() settled before cleanup was known.
      if (done && cleanup) cleanup();
    });
  }
}
