import type { FastifyPluginAsync } from "fastify";
import type { Readable } from "node:stream";
import type { EngineApiDeps } from "../deps.js";
import { invalid, messageOf } from "../../shared/errors.js";
import { qBool, qFilters, qList, qString, type Query } from "../../shared/query.js";
import { jsonLinesResponse } from "../stream/json-lines.js";
import { unimplemented } from "../unimplemented.js";
import { pullImage, pushImage } from "./registry.js";
import { toImageInspect, toImageSummary } from "../../agent/engine/image/inspect.js";
import { filterImages } from "../../agent/engine/image/list-filter.js";
import { textPlainAsStream } from "../stream/raw-tar-body.js";

type Req = { Querystring: Query; Params: { "*": string } };

export type ImageRoutesOptions = Pick<EngineApiDeps, "images" | "containers" | "registry" | "log">;

export const imageRoutes: FastifyPluginAsync<ImageRoutesOptions> = async (app, deps) => {
  const images = deps.images;
  const users = (imageId: string) => deps.containers.usersOfImage(imageId);

  app.get<{ Querystring: Query }>("/images/json", async (request) => {
    const filters = qFilters(request.query);
    let list = images.list();
    if (!qBool(request.query, "all") && !filters.dangling) {
      // Like Docker: untagged images are listed only when nothing else holds them.
      list = list.filter((i) => i.repoTags.length > 0 || users(i.id).length === 0);
    }
    if (!qBool(request.query, "all")) {
      // A build's intermediate images (untagged, with children) show only with all=1, as in dockerd.
      const parents = new Set(images.list().map((i) => i.parent));
      list = list.filter((i) => i.repoTags.length > 0 || !parents.has(i.id));
    }
    if (filters.dangling?.includes("true")) list = list.filter((i) => i.repoTags.length === 0);
    if (filters.dangling?.includes("false")) list = list.filter((i) => i.repoTags.length > 0);
    if (filters.label) {
      list = list.filter((i) =>
        filters.label.every((l) => {
          const [k, v] = splitOnce(l, "=");
          const labels = i.config.config?.Labels ?? {};
          return v === undefined ? k in labels : labels[k] === v;
        }),
      );
    }
    // reference, before, since, until as dockerd: only the matching references are listed.
    return filterImages(list, filters, (ref) => images.resolve(ref))
      .sort(
        (a, b) =>
          Date.parse(b.image.config.created ?? b.image.loadedAt) -
          Date.parse(a.image.config.created ?? a.image.loadedAt),
      )
      .map((l) => ({
        ...toImageSummary(l.image, users(l.image.id).length),
        RepoTags: l.repoTags,
        RepoDigests: l.repoDigests,
      }));
  });

  // cp's and import's raw tar comes labelled text/plain: a stream in this plugin's scope only.
  textPlainAsStream(app);

  app.post<{ Querystring: Query }>("/images/load", async (request, reply) => {
    // Errors must come before the 200 goes out, so the archive is loaded first, then reported.
    const loaded = await images.load(
      bodyStream(request.body, "load needs a docker-save archive in the request body"),
    );
    const out = jsonLinesResponse(reply);
    for (const line of loaded) out.write({ stream: `${line}\n` });
    out.end();
  });

  app.get<{ Querystring: Query }>("/images/get", async (request, reply) => {
    const names = qList(request.query, "names");
    if (names.length === 0) throw invalid("save needs at least one image: pass ?names=<image>");
    for (const n of names) images.resolve(n); // 404 before any byte of the archive goes out
    reply.hijack();
    reply.raw.writeHead(200, { "Content-Type": "application/x-tar" });
    try {
      await images.save(names, reply.raw);
    } catch (e) {
      request.log.error({ err: e }, "image save failed");
      reply.raw.destroy();
      return;
    }
    reply.raw.end();
  });

  app.post<{ Querystring: Query }>("/images/create", async (request, reply) => {
    const q = request.query;
    const fromSrc = qString(q, "fromSrc");
    if (fromSrc !== "-") {
      if (qString(q, "fromImage")) return pullImage(deps, request, reply);
      throw invalid(
        "importing from a URL is not supported: send the root filesystem tar in the body with fromSrc=-",
      );
    }
    const repo = qString(q, "repo");
    const tag = qString(q, "tag");
    const ref = repo ? (tag ? `${repo}:${tag}` : repo) : undefined;
    const image = await images.importRootfs(
      bodyStream(request.body, "import needs the root filesystem tar in the request body"),
      {
        ref,
        changes: qList(q, "changes"),
        message: qString(q, "message"),
        platform: qString(q, "platform"),
      },
    );
    const out = jsonLinesResponse(reply);
    out.write({ status: image.id });
    out.end();
  });

  app.post<{ Querystring: Query }>("/images/prune", async (request) => {
    const filters = qFilters(request.query);
    const all = filters.dangling?.includes("false") ?? false;
    return images.prune({ all }, users);
  });

  // Image names carry slashes (localhost:5000/team/app), so these routes take the rest of the path.
  app.get<Req>("/images/*", async (request) => {
    const rest = request.params["*"];
    if (rest.endsWith("/json")) {
      const image = images.resolve(rest.slice(0, -"/json".length));
      return toImageInspect(image, images.lowerDirs(image));
    }
    if (rest.endsWith("/history")) {
      const image = images.resolve(rest.slice(0, -"/history".length));
      // Newest first, as dockerd answers (docker history prints it in this order).
      const history = image.config.history ?? [];
      return history
        .map((h, i) => ({
          Id: i === history.length - 1 ? image.id : "<missing>",
          Created: h.created ? Math.floor(Date.parse(h.created) / 1000) : 0,
          CreatedBy: h.created_by ?? "",
          Tags: i === history.length - 1 ? image.repoTags : null,
          Size: 0,
          Comment: h.comment ?? "",
        }))
        .reverse();
    }
    throw unimplemented("GET", `/images/${rest}`);
  });

  app.post<Req>("/images/*", async (request, reply) => {
    const rest = request.params["*"];
    if (rest.endsWith("/tag")) {
      const source = rest.slice(0, -"/tag".length);
      const repo = qString(request.query, "repo");
      if (!repo) throw invalid("tag needs a target: pass ?repo=<name>&tag=<tag>");
      const tag = qString(request.query, "tag") || "latest";
      await images.tag(source, `${repo}:${tag}`);
      return reply.code(201).send();
    }
    if (rest.endsWith("/push")) return pushImage(deps, rest.slice(0, -"/push".length), request, reply);
    throw unimplemented("POST", `/images/${rest}`);
  });

  app.delete<Req>("/images/*", async (request) => {
    const ref = request.params["*"];
    try {
      return await images.remove(
        ref,
        { force: qBool(request.query, "force"), noPrune: qBool(request.query, "noprune") },
        users,
      );
    } catch (e) {
      deps.log.debug({ ref, err: messageOf(e) }, "image remove refused");
      throw e;
    }
  });
};

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

/** A raw request body as a stream; none at all is a 400, not a TypeError deep in the reader. */
function bodyStream(body: unknown, missing: string): Readable {
  if (!body || typeof (body as Partial<Readable>).pipe !== "function") throw invalid(missing);
  return body as Readable;
}
