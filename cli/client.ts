// HTTP to the daemon's Engine API: JSON requests, streamed uploads and downloads, and the
// hijacked connection attach uses. Node's `http` with `socketPath` keeps start-up cheap.

import {
  request as httpRequest,
  type IncomingMessage,
  type ClientRequest,
  type OutgoingHttpHeaders,
} from "node:http";
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import { CliError, DaemonError } from "./errors.js";

export const API_VERSION = "1.44";
const DEFAULT_HOST = "unix:///run/shoal/shoal.sock";

type HostTarget =
  | { kind: "unix"; socketPath: string; display: string }
  | { kind: "tcp"; host: string; port: number; display: string };

/** -H/--host, then SHOAL_HOST, then DOCKER_HOST, then the default socket. */
export function resolveHost(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): HostTarget {
  const raw = flag || env.SHOAL_HOST || env.DOCKER_HOST || DEFAULT_HOST;
  return parseHost(raw);
}

export function parseHost(raw: string): HostTarget {
  if (raw.startsWith("unix://")) {
    const socketPath = raw.slice("unix://".length);
    if (!socketPath) throw new CliError(`invalid host "${raw}": the unix socket path is empty`, 125);
    return { kind: "unix", socketPath, display: raw };
  }
  if (raw.startsWith("/")) return { kind: "unix", socketPath: raw, display: `unix://${raw}` };
  const m = /^(?:tcp:\/\/)?(\[[^\]]+\]|[^:/]+)?(?::(\d+))?\/?$/.exec(raw);
  if (raw.startsWith("tcp://") && m) {
    const host = (m[1] ?? "127.0.0.1").replace(/^\[|\]$/g, "");
    const port = m[2] ? Number(m[2]) : 2375;
    return { kind: "tcp", host, port, display: `tcp://${m[1] ?? "127.0.0.1"}:${port}` };
  }
  throw new CliError(`invalid host "${raw}": use unix:///path/to/socket or tcp://host:port`, 125);
}

type QueryValue = string | number | boolean | undefined | null | readonly string[];
type Query = Record<string, QueryValue>;

export function buildQuery(query: Query | undefined): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) for (const v of value) params.append(key, v);
    else if (typeof value === "boolean") params.append(key, value ? "1" : "0");
    else params.append(key, String(value));
  }
  const s = params.toString();
  return s ? `?${s}` : "";
}

interface RequestOptions {
  query?: Query;
  /** A JSON value, or a stream to upload as the body. */
  body?: unknown;
  contentType?: string;
  headers?: OutgoingHttpHeaders;
  signal?: AbortSignal;
}

function isReadable(v: unknown): v is Readable {
  return typeof v === "object" && v !== null && typeof (v as Readable).pipe === "function";
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

async function toDaemonError(res: IncomingMessage): Promise<DaemonError> {
  const text = await readAll(res).catch(() => "");
  let message = text.trim();
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === "string") message = parsed.message;
  } catch {
    // Not JSON: a proxy or an old daemon; the text itself is the best message there is.
  }
  return new DaemonError(res.statusCode ?? 500, message || `HTTP ${res.statusCode ?? "error"}`);
}

export class ApiClient {
  readonly target: HostTarget;
  constructor(target: HostTarget) {
    this.target = target;
  }

  private connectError(e: unknown): Error {
    const code =
      typeof e === "object" && e !== null && "code" in e ? (e as { code: unknown }).code : undefined;
    if (code === "EACCES") {
      return new CliError(
        `permission denied while trying to connect to the shoal daemon socket at ${this.target.display}: run as root or as a member of the socket's group`,
      );
    }
    if (code === "ENOENT" || code === "ECONNREFUSED" || code === "ENOTSOCK") {
      return new CliError(
        `Cannot connect to the shoal daemon at ${this.target.display}. Is shoald running? (start it with: shoald, or systemctl start shoald)`,
      );
    }
    return e instanceof Error ? e : new Error(String(e));
  }

  private open(
    method: string,
    path: string,
    opts: RequestOptions,
    extraHeaders: OutgoingHttpHeaders = {},
  ): ClientRequest {
    const headers: OutgoingHttpHeaders = {
      "User-Agent": "shoal-cli",
      // Cluster reads are linearizable unless a possibly stale answer is asked for by name.
      ...(method === "GET" && process.env.SHOAL_STALE_READ === "1" ? { "X-Shoal-Stale-Read": "1" } : {}),
      ...opts.headers,
      ...extraHeaders,
    };
    const fullPath = `/v${API_VERSION}${path}${buildQuery(opts.query)}`;
    const base =
      this.target.kind === "unix"
        ? { socketPath: this.target.socketPath }
        : { host: this.target.host, port: this.target.port };
    return httpRequest({ ...base, method, path: fullPath, headers, signal: opts.signal });
  }

  private send(req: ClientRequest, opts: RequestOptions): void {
    const body = opts.body;
    if (body === undefined) {
      req.end();
    } else if (isReadable(body)) {
      body.on("error", (e) => req.destroy(e));
      body.pipe(req);
    } else {
      req.end(JSON.stringify(body));
    }
  }

  private headersFor(opts: RequestOptions): OutgoingHttpHeaders {
    if (opts.body === undefined) return { "Content-Length": 0 };
    if (isReadable(opts.body)) return { "Content-Type": opts.contentType ?? "application/x-tar" };
    return { "Content-Type": opts.contentType ?? "application/json" };
  }

  /** The raw response; statuses >= 400 become a DaemonError. The caller consumes the body. */
  stream(method: string, path: string, opts: RequestOptions = {}): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = this.open(method, path, opts, this.headersFor(opts));
      req.on("error", (e) => reject(this.connectError(e)));
      req.on("response", (res) => {
        if ((res.statusCode ?? 500) >= 400) toDaemonError(res).then(reject, reject);
        else resolve(res);
      });
      this.send(req, opts);
    });
  }

  /** A request whose answer is JSON (or empty, for 204). */
  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.stream(method, path, opts);
    const text = await readAll(res);
    if (!text.trim()) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(`the daemon sent a response that is not JSON: ${text.slice(0, 200)}`);
    }
  }

  /** A request whose body, if any, does not matter (start, stop, kill...). */
  async call(method: string, path: string, opts: RequestOptions = {}): Promise<void> {
    const res = await this.stream(method, path, opts);
    res.resume();
    await new Promise<void>((resolve) => res.on("end", resolve).on("close", resolve));
  }

  /**
   * Ask for the connection to be taken over (`Upgrade: tcp`), as Docker's attach and exec start
   * do: resolves with the raw socket on `101 UPGRADED`, or with the response when the daemon
   * answered an old-style `200` instead.
   */
  private upgrade(path: string, query: Query, body?: unknown): Promise<Socket | IncomingMessage> {
    const payload = body === undefined ? "" : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = this.open(
        "POST",
        path,
        { query },
        {
          Connection: "Upgrade",
          Upgrade: "tcp",
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
          "Content-Length": Buffer.byteLength(payload),
        },
      );
      req.on("error", (e) => reject(this.connectError(e)));
      req.on("upgrade", (_res: IncomingMessage, socket: Socket, head: Buffer) => {
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      req.on("response", (res) => {
        if ((res.statusCode ?? 500) >= 400) toDaemonError(res).then(reject, reject);
        else resolve(res);
      });
      req.end(payload);
    });
  }

  /** Hijack for attach: the raw socket, or an old-style `200` answer's body to stream. */
  hijack(path: string, query: Query): Promise<Readable & { destroy(): void }> {
    return this.upgrade(path, query);
  }

  /** The same with a JSON body (exec start): resolves with the connection itself, both ways. */
  async hijackJson(path: string, body: unknown): Promise<Socket> {
    const taken = await this.upgrade(path, {}, body);
    if (!isResponse(taken)) return taken;
    taken.resume();
    throw new CliError(`the daemon did not take the connection over (HTTP ${taken.statusCode})`);
  }
}

/** The daemon answered with a response instead of taking the connection over. */
function isResponse(taken: Socket | IncomingMessage): taken is IncomingMessage {
  return "statusCode" in taken;
}

export function clientFor(host: string | undefined): ApiClient {
  return new ApiClient(resolveHost(host));
}
