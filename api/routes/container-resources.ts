// /containers/{id}: pause, unpause, update, stats and top (agent/engine/container/pause.ts,
// update.ts, stats.ts, top.ts do the work).
import type { FastifyPluginAsync } from "fastify";
import type { EngineApiDeps } from "../deps.js";
import { invalid } from "../../shared/errors.js";
import { qBool, qString, type Query } from "../../shared/query.js";
import { startStream } from "../stream/response.js";

type IdParams = { Params: { id: string }; Querystring: Query };

export type ContainerResourceRoutesOptions = Pick<EngineApiDeps, "containers">;

export const containerResourceRoutes: FastifyPluginAsync<ContainerResourceRoutesOptions> = async (
  app,
  deps,
) => {
  const engine = deps.containers;

  app.post<IdParams>("/containers/:id/pause", async (request, reply) => {
    await engine.pause(request.params.id);
    return reply.code(204).send();
  });

  app.post<IdParams>("/containers/:id/unpause", async (request, reply) => {
    await engine.unpause(request.params.id);
    return reply.code(204).send();
  });

  app.post<IdParams & { Body: unknown }>("/containers/:id/update", async (request) => {
    const body = request.body ?? {};
    if (typeof body !== "object" || Array.isArray(body))
      throw invalid("the update body must be a JSON object of the fields to change");
    return engine.update(request.params.id, body as Record<string, unknown>);
  });

  app.get<IdParams>("/containers/:id/top", async (request) =>
    engine.top(request.params.id, qString(request.query, "ps_args") ?? "-ef"),
  );

  app.get<IdParams>("/containers/:id/stats", async (request, reply) => {
    const stream = qBool(request.query, "stream", true);
    const oneShot = qBool(request.query, "one-shot");
    if (oneShot && stream)
      throw invalid("cannot have stream=true and one-shot=true: pass stream=false with one-shot");
    engine.get(request.params.id); // 404 before the headers go out
    const aborter = new AbortController();
    // The response's close: the client went away (the request's own close comes once its body is read).
    reply.raw.on("close", () => aborter.abort());
    const samples = engine.stats(request.params.id, { stream, oneShot, signal: aborter.signal });
    const res = startStream(reply, "application/json");
    try {
      for await (const sample of samples) {
        if (aborter.signal.aborted) break;
        res.write(JSON.stringify(sample) + "\n");
      }
    } catch (e) {
      if (!aborter.signal.aborted) request.log.warn({ err: e }, "stats stream ended with an error");
    }
    res.end();
  });
};
