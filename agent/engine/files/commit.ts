// `docker commit` (POST /commit): a new image made of the container's image plus one layer, its
// overlay upper folder, written by the builder's own layer code (the same one a RUN step's
// changes go through), with the container's runtime config, `--change` Dockerfile lines applied
// by the same code as `docker import --change`. A running container is paused (cgroup freezer,
// through the runtime) while its files are read, as dockerd's default does: a file it changed
// halfway, or swapped for a symlink, must not end up in the image.
import { conflict, invalid, messageOf } from "../../../shared/errors.js";
import { familiarString, parseTagReference } from "../../../shared/reference.js";
import { ENGINE_FILES } from "../builder/builder.js";
import { packLayer, upperDirEntries } from "../builder/layer-tar.js";
import { applyChanges } from "../image/changes.js";
import type { ImageConfigBlob, ImageRecord, ImageRuntimeConfig } from "../image/types.js";
import { runCommand } from "../runtime/command.js";
import { containerPaths, type EngineContext } from "../container/context.js";
import type { ContainerRecord } from "../container/types.js";

export interface CommitOptions {
  repo?: string;
  tag?: string;
  comment?: string;
  author?: string;
  /** Pause a running container while its files are read (Docker's default). */
  pause: boolean;
  changes: string[];
  /** The request body: a container config whose fields override the container's. */
  config?: Partial<ImageRuntimeConfig>;
}

/** The reference the image gets, checked before any work. */
export function commitReference(repo?: string, tag?: string): string | undefined {
  if (!repo) {
    if (tag) throw invalid(`invalid commit: tag "${tag}" given without a repository`);
    return undefined;
  }
  try {
    return familiarString(parseTagReference(tag ? `${repo}:${tag}` : repo));
  } catch (e) {
    throw invalid(`invalid reference format "${repo}${tag ? `:${tag}` : ""}": ${messageOf(e)}`);
  }
}

/** The container's runtime config as an image config: what `docker run` of the new image starts with. */
function runtimeOf(
  rec: ContainerRecord,
  image: ImageRecord,
  body: Partial<ImageRuntimeConfig>,
): ImageRuntimeConfig {
  const c = rec.Config;
  const fromImage = image.config.config ?? {};
  return {
    ...fromImage,
    User: c.User,
    Env: c.Env,
    Entrypoint: c.Entrypoint,
    Cmd: c.Cmd,
    WorkingDir: c.WorkingDir,
    Labels: c.Labels,
    ...(c.ExposedPorts ? { ExposedPorts: c.ExposedPorts } : {}),
    ...(c.Volumes ? { Volumes: c.Volumes } : {}),
    ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
    ...body,
  };
}

async function freeze(ctx: EngineContext, id: string, on: boolean): Promise<void> {
  await runCommand(ctx.runtime.binary, ["--root", ctx.runtime.root, on ? "pause" : "resume", id]);
}

export async function commitContainer(
  ctx: EngineContext,
  rec: ContainerRecord,
  options: CommitOptions,
): Promise<ImageRecord> {
  const ref = commitReference(options.repo, options.tag);
  let image: ImageRecord;
  try {
    image = ctx.images.resolve(rec.ImageId);
  } catch {
    throw conflict(`cannot commit container ${rec.Name}: its image ${rec.ImageId} was removed`);
  }
  const runtime = applyChanges(runtimeOf(rec, image, options.config ?? {}), options.changes);
  const running = rec.State.Status === "running";
  if (running && !options.pause)
    throw invalid(
      `commit with pause=false is refused for the running container ${rec.Name}: shoal pauses a container while it reads its files; leave --pause on, or stop the container first`,
    );
  const created = new Date().toISOString();
  const parent: ImageConfigBlob = structuredClone(image.config);
  const config: ImageConfigBlob = {
    ...parent,
    created,
    ...(options.author ? { author: options.author } : {}),
    ...(options.comment ? { comment: options.comment } : {}),
    config: runtime,
    history: [
      ...(parent.history ?? []),
      {
        created,
        created_by: (rec.Config.Cmd ?? []).join(" "),
        ...(options.author ? { author: options.author } : {}),
        ...(options.comment ? { comment: options.comment } : {}),
      },
    ],
  };
  if (running) await freeze(ctx, rec.Id, true);
  let made: ImageRecord;
  try {
    const layer = packLayer(
      upperDirEntries(containerPaths(ctx, rec.Id).upper, { skipEmptyFiles: ENGINE_FILES }),
    );
    made = await ctx.images.createImage({
      config,
      parent: image.id,
      layer,
      what: `the changes of container ${rec.Name}`,
    });
  } finally {
    if (running) await freeze(ctx, rec.Id, false);
  }
  if (ref) await ctx.images.tag(made.id, ref);
  ctx.events.emit("container", "commit", rec.Id, {
    comment: options.comment ?? "",
    imageID: made.id,
    imageRef: ref ?? "",
    name: rec.Name,
  });
  return made;
}
