import type { FastifyPluginAsync } from "fastify";
import type { EngineApiDeps } from "../deps.js";
import { invalid } from "../../shared/errors.js";
import { qBool, qFilters, type Query } from "../../shared/query.js";
import type { VolumeRecord } from "../../agent/engine/volume/types.js";

type NameReq = { Querystring: Query; Params: { name: string } };

/** The Engine API's Volume object (shoal's own bookkeeping left out). */
export function toVolumeView(v: VolumeRecord) {
  return {
    CreatedAt: v.CreatedAt,
    Driver: v.Driver,
    Labels: v.Labels,
    Mountpoint: v.Mountpoint,
    Name: v.Name,
    Options: v.Options,
    Scope: v.Scope,
  };
}

function stringMap(value: unknown, field: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) {
    throw invalid(`invalid ${field}: expected an object of string values`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== "string") throw invalid(`invalid ${field}: the value of "${k}" must be a string`);
    out[k] = v;
  }
  return out;
}

export type VolumeRoutesOptions = Pick<EngineApiDeps, "volumes">;

export const volumeRoutes: FastifyPluginAsync<VolumeRoutesOptions> = async (app, deps) => {
  const volumes = deps.volumes;

  app.get<{ Querystring: Query }>("/volumes", async (request) => ({
    Volumes: volumes.list(qFilters(request.query)).map(toVolumeView),
    Warnings: [],
  }));

  app.post<{ Body: Record<string, unknown> }>("/volumes/create", async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    if (body.Name !== undefined && typeof body.Name !== "string") {
      throw invalid("invalid Name: expected a string");
    }
    if (body.Driver !== undefined && typeof body.Driver !== "string") {
      throw invalid("invalid Driver: expected a string");
    }
    const { volume } = await volumes.create({
      Name: body.Name || undefined,
      Driver: body.Driver || undefined,
      DriverOpts: stringMap(body.DriverOpts, "DriverOpts"),
      Labels: stringMap(body.Labels, "Labels") ?? {},
    });
    return reply.code(201).send(toVolumeView(volume));
  });

  app.post<{ Querystring: Query }>("/volumes/prune", async (request) =>
    volumes.prune(qFilters(request.query)),
  );

  app.get<NameReq>("/volumes/:name", async (request) => toVolumeView(volumes.inspect(request.params.name)));

  app.delete<NameReq>("/volumes/:name", async (request, reply) => {
    await volumes.remove(request.params.name, { force: qBool(request.query, "force") });
    return reply.code(204).send();
  });
};
