// The container filesystem routes: cp's archive API (HEAD/GET/PUT /containers/{id}/archive),
// export, changes (docker diff) and POST /commit. The work is the engine's (agent/engine/files/).
import type { FastifyPluginAsync } from "fastify";
import { Readable } from "node:stream";
import type { EngineApiDeps } from "../deps.js";
import { internal, invalid } from "../../shared/errors.js";
import { qBool, qList, qString, type Query } from "../../shared/query.js";
import type { ContainerFiles } from "../../agent/engine/files/files.js";
import { encodePathStat, PATH_STAT_HEADER } from "../../agent/engine/files/path-stat.js";
import type { ImageRuntimeConfig } from "../../agent/engine/image/types.js";
import { textPlainAsStream } from "../stream/raw-tar-body.js";

type IdReq = { Params: { id: string }; Querystring: Query };

export type ContainerFileRoutesOptions = Pick<EngineApiDeps, "containers">;

/** The runtime fields a commit body may set (Docker's container.Config, the parts an image keeps). */
const COMMIT_FIELDS = [
  "User",
  "Env",
  "Entrypoint",
  "Cmd",
  "WorkingDir",
  "Labels",
  "ExposedPorts",
  "Volumes",
  "StopSignal",
] as const;

function commitConfig(body: unknown): Partial<ImageRuntimeConfig> {
  if (body === null || body === undefined || typeof body !== "object" || Array.isArray(body)) return {};
  const src = body as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of COMMIT_FIELDS) {
    const v = src[k];
    // Docker merges: an empty field in the body keeps the container's.
    if (v === undefined || v === null || v === "" || (Array.isArray(v) && v.length === 0)) continue;
    if (typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0) continue;
    out[k] = v;
  }
  return out as Partial<ImageRuntimeConfig>;
}

export const containerFileRoutes: FastifyPluginAsync<ContainerFileRoutesOptions> = async (app, deps) => {
  const files = (): ContainerFiles => {
    const f = deps.containers.files;
    if (!f) throw internal("this engine has no container filesystem access");
    return f;
  };

  // cp's and import's raw tar comes labelled text/plain: a stream in this plugin's scope only.
  textPlainAsStream(app);

  // Before the GET, so fastify does not make its own HEAD from it (which would build the tar).
  app.head<IdReq>("/containers/:id/archive", async (request, reply) => {
    const stat = await files().stat(request.params.id, qString(request.query, "path") ?? "");
    return reply.header(PATH_STAT_HEADER, encodePathStat(stat)).code(200).send();
  });

  app.get<IdReq>("/containers/:id/archive", async (request, reply) => {
    const { stat, tar } = await files().archive(request.params.id, qString(request.query, "path") ?? "");
    return reply
      .header(PATH_STAT_HEADER, encodePathStat(stat))
      .type("application/x-tar")
      .send(Readable.from(tar));
  });

  app.put<IdReq>("/containers/:id/archive", async (request, reply) => {
    const body = request.body;
    if (!(body instanceof Readable))
      throw invalid("the request body must be a tar archive (Content-Type: application/x-tar)");
    await files().extract(request.params.id, qString(request.query, "path") ?? "", body, {
      noOverwriteDirNonDir: qBool(request.query, "noOverwriteDirNonDir"),
      copyUIDGID: qBool(request.query, "copyUIDGID"),
    });
    return reply.code(200).send();
  });

  app.get<IdReq>("/containers/:id/export", async (request, reply) =>
    reply.type("application/x-tar").send(Readable.from(files().export(request.params.id))),
  );

  app.get<IdReq>("/containers/:id/changes", async (request) => files().changes(request.params.id));

  app.post<{ Querystring: Query; Body: unknown }>("/commit", async (request, reply) => {
    const q = request.query;
    const container = qString(q, "container");
    if (!container) throw invalid("commit needs a container: pass ?container=<id or name>");
    const pauseText = qString(q, "pause");
    const image = await files().commit(container, {
      repo: qString(q, "repo") || undefined,
      tag: qString(q, "tag") || undefined,
      comment: qString(q, "comment") || undefined,
      author: qString(q, "author") || undefined,
      // dockerd: pause unless the client says otherwise
      pause: pauseText === undefined || pauseText === "" ? true : qBool(q, "pause"),
      changes: qList(q, "changes").filter((c) => c.trim() !== ""),
      config: commitConfig(request.body),
    });
    return reply.code(201).send({ Id: image.id });
  });
};
