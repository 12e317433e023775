// GET /system/df (`docker system df`, `-v`): images with their unique and shared bytes, containers
// with their own and total bytes, volumes with their size and users, in Docker's shape. Sizes
// come from async walks of the layer, container and volume folders, so the event loop stays free.
// The classic builder's cache is its step images, already counted under Images: BuildCache is
// empty, as dockerd's is without BuildKit.
import type { FastifyPluginAsync } from "fastify";
import type { EngineApiDeps } from "../deps.js";
import { dirSize } from "../../shared/fsutil.js";
import { qList, type Query } from "../../shared/query.js";
import { invalid } from "../../shared/errors.js";
import { toImageSummary } from "../../agent/engine/image/inspect.js";
import { layerDirSizes } from "../../agent/engine/files/files.js";
import { toContainerSummary } from "../views/container.js";
import { toVolumeView } from "./volumes.js";

export type SystemDfRoutesOptions = Pick<EngineApiDeps, "containers" | "images" | "volumes">;

const TYPES = ["container", "image", "volume", "build-cache"];

export const systemDfRoutes: FastifyPluginAsync<SystemDfRoutesOptions> = async (app, deps) => {
  app.get<{ Querystring: Query }>("/system/df", async (request) => {
    const asked = qList(request.query, "type");
    for (const t of asked)
      if (!TYPES.includes(t)) throw invalid(`invalid type "${t}" for system df: use ${TYPES.join(", ")}`);
    const want = (t: string): boolean => asked.length === 0 || asked.includes(t);
    const containers = deps.containers.list({ all: true });
    const out: Record<string, unknown> = {};
    if (want("image")) {
      const images = deps.images.list();
      const layersOf = new Map(images.map((i) => [i.id, deps.images.lowerDirs(i)]));
      const sizes = await layerDirSizes([...layersOf.values()].flat());
      const uses = new Map<string, number>();
      for (const dirs of layersOf.values())
        for (const d of new Set(dirs)) uses.set(d, (uses.get(d) ?? 0) + 1);
      out.LayersSize = [...sizes.values()].reduce((a, b) => a + b, 0);
      out.Images = images.map((i) => {
        const dirs = [...new Set(layersOf.get(i.id) ?? [])];
        const size = dirs.reduce((a, d) => a + (sizes.get(d) ?? 0), 0);
        const shared = dirs
          .filter((d) => (uses.get(d) ?? 0) > 1)
          .reduce((a, d) => a + (sizes.get(d) ?? 0), 0);
        const users = containers.filter((c) => c.ImageId === i.id).length;
        return { ...toImageSummary(i, users), Size: size, VirtualSize: size, SharedSize: shared };
      });
    }
    if (want("container")) {
      const current = (ref: string): string | undefined => {
        try {
          return deps.images.resolve(ref).id;
        } catch {
          return undefined;
        }
      };
      const files = deps.containers.files;
      out.Containers = await Promise.all(
        containers.map(async (c) => ({
          ...toContainerSummary(c, current),
          ...(files ? await files.sizes(c.Id) : {}),
        })),
      );
    }
    if (want("volume")) {
      out.Volumes = await Promise.all(
        deps.volumes.list().map(async (v) => ({
          ...toVolumeView(v),
          UsageData: {
            Size: await dirSize(v.Mountpoint),
            RefCount: containers.filter((c) =>
              (c.Mounts ?? []).some((m) => m.Type === "volume" && m.Name === v.Name),
            ).length,
          },
        })),
      );
    }
    if (want("build-cache")) out.BuildCache = [];
    return out;
  });
};
