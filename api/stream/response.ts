import type { FastifyReply } from "fastify";
import type { ServerResponse } from "node:http";

/**
 * Take the response over for a stream that may be slow to start (wait, logs): the 200 and its
 * type go out at once, since clients wait for the headers before they go on, then the caller
 * writes the body as it comes.
 */
export function startStream(reply: FastifyReply, contentType: string): ServerResponse {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { "Content-Type": contentType });
  res.flushHeaders();
  return res;
}
