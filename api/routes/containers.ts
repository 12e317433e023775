// /containers: create, inspect, list, start, stop, wait, remove, prune and logs (attach and
// resize: container-attach.ts).
import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import type { EngineApiDeps } from "../deps.js";
import type { CreateContainerRequest, WaitCondition } from "../../agent/engine/container/api.js";
import type { LogLine } from "../../agent/engine/container/types.js";
import { invalid, isShoalError, messageOf } from "../../shared/errors.js";
import { qBool, qFilters, qInt, qString, type Query } from "../../shared/query.js";
import { toContainerInspect, toContainerSummary } from "../views/container.js";
import { stdcopyFrame } from "../../shared/stdcopy.js";
import { startStream } from "../stream/response.js";
import { toDockerLogTime } from "../logs/time.js";
import { parseLogQuery, unixSeconds } from "../logs/query.js";
import { assertImagePlatform } from "../../agent/engine/image/platform-check.js";
import { assertLogsReadable } from "../../agent/engine/runtime/log-config.js";

type IdParams = { Params: { id: string }; Querystring: Query };

function frame(line: LogLine, tty: boolean, timestamps: boolean): Buffer {
  const data = timestamps
    ? Buffer.concat([Buffer.from(`${toDockerLogTime(line.time)} `), line.data])
    : line.data;
  return tty ? data : stdcopyFrame(line.stream, data);
}

export type ContainerRoutesOptions = Pick<EngineApiDeps, "containers" | "images">;

export const containerRoutes: FastifyPluginAsync<ContainerRoutesOptions> = async (app, deps) => {
  const engine = deps.containers;
  const currentImageId = (ref: string): string | undefined => {
    try {
      return deps.images.resolve(ref).id;
    } catch {
      return undefined;
    }
  };

  app.get<{ Querystring: Query }>("/containers/json", async (request) => {
    const q = request.query;
    const all = qBool(q, "all");
    let list = engine.list({ all, filters: qFilters(q), limit: qInt(q, "limit") });
    list = [...list].sort((a, b) => Date.parse(b.Created) - Date.parse(a.Created));
    const limit = qInt(q, "limit");
    if (limit !== undefined && limit > 0) list = list.slice(0, limit);
    const files = engine.files;
    if (qBool(q, "size") && files)
      return Promise.all(
        list.map(async (c) => ({ ...toContainerSummary(c, currentImageId), ...(await files.sizes(c.Id)) })),
      );
    return list.map((c) => toContainerSummary(c, currentImageId));
  });

  app.post<{ Querystring: Query; Body: Record<string, unknown> }>(
    "/containers/create",
    async (request, reply) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      const { HostConfig, NetworkingConfig, ...config } = body;
      if (typeof config.Image !== "string" || config.Image === "") {
        throw invalid("config has no Image: name the image to create the container from");
      }
      const platform = qString(request.query, "platform");
      if (platform) assertImagePlatform(deps.images.resolve(config.Image), config.Image, platform);
      const req: CreateContainerRequest = {
        name: qString(request.query, "name") || undefined,
        config: config as CreateContainerRequest["config"],
        hostConfig: (HostConfig ?? {}) as CreateContainerRequest["hostConfig"],
        networkingConfig: (NetworkingConfig ?? null) as CreateContainerRequest["networkingConfig"],
      };
      const created = await engine.create(req);
      return reply.code(201).send(created);
    },
  );

  app.get<IdParams>("/containers/:id/json", async (request) => {
    const rec = engine.get(request.params.id);
    const execIds = engine.exec.idsOf(rec.Id);
    const c = { ...toContainerInspect(rec), ExecIDs: execIds.length > 0 ? execIds : null };
    const files = engine.files;
    return qBool(request.query, "size") && files ? { ...c, ...(await files.sizes(c.Id)) } : c;
  });

  app.post<IdParams>("/containers/:id/start", async (request, reply) => {
    await engine.start(request.params.id);
    return reply.code(204).send();
  });

  app.post<IdParams>("/containers/:id/stop", async (request, reply) => {
    await engine.stop(request.params.id, {
      signal: qString(request.query, "signal") || undefined,
      timeoutSec: qInt(request.query, "t"),
    });
    return reply.code(204).send();
  });

  app.post<IdParams>("/containers/:id/restart", async (request, reply) => {
    await engine.restart(request.params.id, {
      signal: qString(request.query, "signal") || undefined,
      timeoutSec: qInt(request.query, "t"),
    });
    return reply.code(204).send();
  });

  app.post<IdParams>("/containers/:id/kill", async (request, reply) => {
    await engine.kill(request.params.id, qString(request.query, "signal") || undefined);
    return reply.code(204).send();
  });

  app.delete<IdParams>("/containers/:id", async (request, reply) => {
    await engine.remove(request.params.id, {
      force: qBool(request.query, "force"),
      volumes: qBool(request.query, "v"),
    });
    return reply.code(204).send();
  });

  app.post<IdParams>("/containers/:id/rename", async (request, reply) => {
    const name = qString(request.query, "name");
    if (!name) throw invalid("rename needs a new name: pass ?name=<new name>");
    await engine.rename(request.params.id, name);
    return reply.code(204).send();
  });

  app.post<{ Querystring: Query }>("/containers/prune", async (request) =>
    engine.prune(qFilters(request.query)),
  );

  app.post<IdParams>("/containers/:id/wait", async (request, reply) => {
    const condition = (qString(request.query, "condition") || "not-running") as WaitCondition;
    if (!["not-running", "next-exit", "removed"].includes(condition)) {
      throw invalid(`invalid condition "${condition}": use not-running, next-exit or removed`);
    }
    engine.get(request.params.id); // 404 before the headers go out
    const aborter = new AbortController();
    request.raw.on("close", () => aborter.abort());
    // Headers go out at once: clients wait for them before they start the container.
    const res = startStream(reply, "application/json");
    try {
      const result = await engine.wait(request.params.id, condition, aborter.signal);
      res.end(JSON.stringify(result) + "\n");
    } catch (e) {
      res.end(JSON.stringify({ StatusCode: -1, Error: { Message: messageOf(e) } }) + "\n");
    }
  });

  app.get<IdParams>("/containers/:id/logs", async (request, reply) => {
    const c = engine.get(request.params.id);
    assertLogsReadable(c.HostConfig.LogConfig, c.Name);
    const { follow, stdout, stderr, tail, since, timestamps } = parseLogQuery(request.query);
    const until = unixSeconds(request.query, "until");
    const aborter = new AbortController();
    request.raw.on("close", () => aborter.abort());
    const lines = engine.logs(c.Id, { follow, stdout, stderr, since, until, tail, signal: aborter.signal });
    const res = startStream(
      reply,
      c.Config.Tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream",
    );
    await pump(lines, (line) => res.write(frame(line, c.Config.Tty, timestamps)), request, aborter);
    res.end();
  });
};

/** Copy log lines to the client until they end or the client goes away. */
async function pump(
  lines: AsyncIterable<LogLine>,
  write: (line: LogLine) => void,
  request: FastifyRequest,
  aborter: AbortController,
): Promise<void> {
  try {
    for await (const line of lines) write(line);
  } catch (e) {
    if (!aborter.signal.aborted && !(isShoalError(e) && e.kind === "not_found")) {
      request.log.warn({ err: e }, "log stream ended with an error");
    }
  }
}
