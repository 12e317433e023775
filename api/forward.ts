// A follower manager sends cluster writes to the leader (it answers reads from its own store); a
// worker sends nothing anywhere: its router refuses the cluster routes with Docker's words. The
// request goes whole over the Node service's Forward call and the answer streams back as it
// comes. The hook runs only for the routes api/cluster.ts registers; the router says, per
// request, whether to serve it here, send it to the leader, or refuse it.
//
// Every forwarded call answers in bounded time: the connection must open within a connect
// deadline (else nothing was sent: "not applied"), and a call that is not a stream must finish
// within a call deadline (else the leader may or may not have applied it: "outcome unknown").
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from "fastify";
import * as grpc from "@grpc/grpc-js";
import type { IncomingMessage, ServerResponse } from "node:http";
import type * as pb from "../proto/gen/cluster.js";
import { messageOf } from "../shared/errors.js";
import type { Logger } from "../shared/logging.js";
import type { ForwardRouter } from "./deps.js";
import { waitForReady } from "./logs/remote.js";

/** Headers that mean something to the handler, not to the connection. */
const PASSED_HEADERS = ["content-type", "x-registry-auth", "user-agent", "accept"];

export interface ForwardLimits {
  /** How long the connection to the leader may take to open. */
  connectMs: number;
  /** How long a call that is not a stream may take, from being sent to its last byte. */
  callMs: number;
  /** The largest request body sent on. The node port takes messages of at most 4 MiB. */
  bodyBytes: number;
}

export const FORWARD_LIMITS: ForwardLimits = {
  connectMs: 5_000,
  callMs: 20_000,
  // 64 KiB of the 4 MiB message are left for the request line and headers.
  bodyBytes: 4 * 1024 * 1024 - 64 * 1024,
};

/** Paths whose answer is a stream with no natural end (a follow, an event feed, an attach). */
const STREAM_PATH = /\/(?:logs|events|attach|stats)$/;
const STREAM_QUERY = ["follow", "stream"];

/** Whether a request's answer may stream for as long as the client wants (no call deadline). */
export function isStreaming(method: string, url: string): boolean {
  const [path, query = ""] = url.split("?", 2);
  if (method === "GET" && STREAM_PATH.test(path)) return true;
  const q = new URLSearchParams(query);
  return STREAM_QUERY.some((k) => {
    const v = q.get(k);
    return v !== null && v !== "0" && v !== "false";
  });
}

/** The command that shows whether a write whose answer was lost took effect. */
function checkCommand(path: string): string {
  const kind = /^\/(swarm|nodes|services|tasks|secrets|configs)\b/.exec(path)?.[1];
  switch (kind) {
    case "swarm":
      return "`docker swarm join-token` or `docker info`";
    case "nodes":
      return "`docker node ls` or `docker node inspect`";
    case "tasks":
      return "`docker service ps`";
    case undefined:
      return "a list or inspect of the object";
    default:
      return `\`docker ${kind.slice(0, -1)} ls\` or \`docker ${kind.slice(0, -1)} inspect\``;
  }
}

type BodyRead = { ok: true; body: Buffer } | { ok: false; bytes: number };

/** The request body, or how far it got once it passed `limit` (the rest is not read). */
function readBody(raw: IncomingMessage, limit: number): Promise<BodyRead> {
  const declared = Number(raw.headers["content-length"] ?? 0);
  if (declared > limit) return Promise.resolve({ ok: false, bytes: declared });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (r: BodyRead) => {
      raw.off("data", onData);
      raw.off("end", onEnd);
      raw.off("error", reject);
      resolve(r);
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) done({ ok: false, bytes: size });
      else chunks.push(c);
    };
    const onEnd = () => done({ ok: true, body: Buffer.concat(chunks) });
    raw.on("data", onData);
    raw.on("end", onEnd);
    raw.on("error", reject);
  });
}

/** Refusals by the leader itself: the request was looked at and not applied. */
const REFUSED_CODES = new Set<grpc.status>([
  grpc.status.INVALID_ARGUMENT,
  grpc.status.PERMISSION_DENIED,
  grpc.status.UNAUTHENTICATED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.UNIMPLEMENTED,
]);

function sendError(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ message }));
}

/** An onRequest hook that sends the request on when the router names the leader to answer it. */
export function forwardToManager(
  router: ForwardRouter,
  log: Logger,
  limits: ForwardLimits = FORWARD_LIMITS,
): onRequestAsyncHookHandler {
  return async (request, reply) => {
    const path = request.url.split("?")[0];
    const route = router.route(request.method, path);
    if (route.serve === "here") return;
    if (route.serve === "refused") return reply.code(503).send({ message: route.message });
    const read = await readBody(request.raw, limits.bodyBytes);
    if (!read.ok)
      return reply
        .code(413)
        .header("connection", "close")
        .send({
          message: `a request sent on to the leader may carry at most ${limits.bodyBytes} bytes of body (4 MiB less 64 KiB for its headers); this one has ${read.bytes}: make it smaller or send it to the leader at ${route.addr} directly`,
        });
    await forward(request, reply, router, route.addr, read.body, limits, log);
  };
}

async function forward(
  request: FastifyRequest,
  reply: FastifyReply,
  router: ForwardRouter,
  addr: string,
  body: Buffer,
  limits: ForwardLimits,
  log: Logger,
): Promise<void> {
  const write = request.method !== "GET" && request.method !== "HEAD";
  const path = request.url.split("?")[0];
  const client = router.client(addr);
  reply.hijack();
  const res = reply.raw;
  try {
    await waitForReady(client, limits.connectMs);
  } catch (e) {
    log.warn(
      { addr, url: request.url, err: messageOf(e) },
      "the leader could not be reached to forward a request",
    );
    sendError(
      res,
      503,
      `${write ? "not applied: " : ""}the leader at ${addr} could not be reached within ${limits.connectMs / 1000} s (${messageOf(e)}); no leader reachable: check that a majority of managers is up, then retry`,
    );
    return;
  }
  if (res.destroyed) return;
  const headers = PASSED_HEADERS.flatMap((name) => {
    const v = request.headers[name];
    return typeof v === "string" ? [{ name, value: v }] : [];
  });
  const streaming = isStreaming(request.method, request.url);
  const stream: grpc.ClientReadableStream<pb.HttpResponseChunk> = client.forward(
    { method: request.method, url: request.url, headers, body },
    streaming ? {} : { deadline: Date.now() + limits.callMs },
  );
  let started = false;
  let status = 0;
  // The response's close, not the request's: the request closes as soon as its body is read.
  res.on("close", () => {
    if (!res.writableEnded) stream.cancel();
  });
  stream.on("data", (chunk: pb.HttpResponseChunk) => {
    if (!started) {
      started = true;
      status = chunk.status;
      const out: Record<string, string[]> = {};
      for (const h of chunk.headers) {
        if (h.name === "connection" || h.name === "keep-alive" || h.name === "transfer-encoding") continue;
        (out[h.name] ??= []).push(h.value);
      }
      res.writeHead(chunk.status, out);
      res.flushHeaders();
    } else if (chunk.body.length > 0) res.write(chunk.body);
  });
  stream.on("end", () => {
    const writeOk = write && status >= 200 && status < 300;
    void (writeOk ? router.afterWrite() : Promise.resolve()).catch(() => undefined).finally(() => res.end());
  });
  stream.on("error", (e: grpc.ServiceError) => {
    if (e.code === grpc.status.CANCELLED && res.destroyed) return; // our client went away
    const why = e.details || e.message;
    log.warn({ addr, url: request.url, code: e.code, err: why }, "forwarding a cluster request failed");
    if (started) {
      res.destroy();
      return;
    }
    if (REFUSED_CODES.has(e.code)) {
      sendError(res, 503, `${write ? "not applied: " : ""}the leader at ${addr} refused the request: ${why}`);
    } else if (!write) {
      sendError(
        res,
        503,
        `the leader at ${addr} did not answer (${why}); retry, or check that a majority of managers is up`,
      );
    } else {
      const late = e.code === grpc.status.DEADLINE_EXCEEDED;
      sendError(
        res,
        503,
        `outcome unknown: the leader at ${addr} ${late ? `did not answer in time (${limits.callMs / 1000} s)` : `did not answer (${why})`}; the change may or may not have been made: check with ${checkCommand(path)} before retrying`,
      );
    }
  });
}
