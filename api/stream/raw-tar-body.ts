// The docker CLI labels the raw tar it sends for `docker import` and `docker cp` text/plain.
// fastify's own text/plain parser would make a string of it; the plugins of those routes call
// this so the body stays a stream there. Elsewhere text/plain keeps fastify's parser: attach
// (which the CLI also labels text/plain) needs its empty body read before the hijack.
import type { FastifyInstance } from "fastify";

export function textPlainAsStream(app: FastifyInstance): void {
  app.removeContentTypeParser("text/plain");
  app.addContentTypeParser("text/plain", (_req, payload, done) => done(null, payload));
}
