// Any node's socket answers the cluster API: a worker sends cluster requests to a manager, and a
// follower manager sends writes to the leader (reads it answers from its own store). The request
// goes whole over the Node service's Forward call and the answer streams back as it comes, so
// progress and `logs -f` work through it too. The hook runs only for the routes api/cluster.ts
// registers; the router says, per request, whether to serve it here or where to send it.
import type { onRequestAsyncHookHandler } from "fastify";
import type { ClientReadableStream, ServiceError } from "@grpc/grpc-js";
import type { IncomingMessage } from "node:http";
import type * as pb from "../proto/gen/cluster.js";
import { messageOf } from "../shared/errors.js";
import type { Logger } from "../shared/logging.js";
import type { ForwardRouter } from "./deps.js";

/** Headers that mean something to the handler, not to the connection. */
const PASSED_HEADERS = ["content-type", "x-registry-auth", "user-agent", "accept"];

function readBody(raw: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    raw.on("data", (c: Buffer) => chunks.push(c));
    raw.on("end", () => resolve(Buffer.concat(chunks)));
    raw.on("error", reject);
  });
}

/** An onRequest hook that sends the request on when the router names a manager to answer it. */
export function forwardToManager(router: ForwardRouter, log: Logger): onRequestAsyncHookHandler {
  return async (request, reply) => {
    const path = request.url.split("?")[0];
    const addr = router.target(request.method, path);
    if (!addr) return;
    const body = await readBody(request.raw);
    const headers = PASSED_HEADERS.flatMap((name) => {
      const v = request.headers[name];
      return typeof v === "string" ? [{ name, value: v }] : [];
    });
    reply.hijack();
    const res = reply.raw;
    const stream: ClientReadableStream<pb.HttpResponseChunk> = router
      .client(addr)
      .forward({ method: request.method, url: request.url, headers, body });
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
      const writeOk = request.method !== "GET" && status >= 200 && status < 300;
      void (writeOk ? router.afterWrite() : Promise.resolve())
        .catch(() => undefined)
        .finally(() => res.end());
    });
    stream.on("error", (e: ServiceError) => {
      if (e.code === 1 /* CANCELLED: our client went away */) return;
      log.warn(
        { addr, url: request.url, err: e.details || messageOf(e) },
        "forwarding a cluster request failed",
      );
      if (!started) {
        res.writeHead(503, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            message: `the manager at ${addr} could not be reached: ${e.details || e.message}; check that a majority of managers is up`,
          }),
        );
      } else res.destroy();
    });
  };
}
