// The Engine API (v1.44) shapes of `GET /images/{name}/json` and `GET /images/json`. The docker
// CLI decodes these, so field names and null-vs-empty follow dockerd exactly.
import type { ImageRecord, ImageRuntimeConfig } from "./types.js";

const zeroTime = "0001-01-01T00:00:00Z";

function dockerConfig(c: ImageRuntimeConfig | undefined): Record<string, unknown> {
  return {
    Hostname: "",
    Domainname: "",
    User: c?.User ?? "",
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    ...(c?.ExposedPorts ? { ExposedPorts: c.ExposedPorts } : {}),
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: c?.Env ?? null,
    Cmd: c?.Cmd ?? null,
    Image: "",
    Volumes: c?.Volumes ?? null,
    WorkingDir: c?.WorkingDir ?? "",
    Entrypoint: c?.Entrypoint ?? null,
    OnBuild: null,
    Labels: c?.Labels ?? null,
    ...(c?.StopSignal ? { StopSignal: c.StopSignal } : {}),
    ...(c?.Healthcheck ? { Healthcheck: c.Healthcheck } : {}),
    ...(c?.Shell ? { Shell: c.Shell } : {}),
    ...(c?.ArgsEscaped ? { ArgsEscaped: true } : {}),
  };
}

/**
 * `docker image inspect`. lowerDirs: the image's layer folders, top first, as
 * ImageStoreApi.lowerDirs gives them; without them GraphDriver.Data is empty.
 */
export function toImageInspect(image: ImageRecord, lowerDirs: string[] = []): Record<string, unknown> {
  const top = lowerDirs[0];
  const lower = lowerDirs.slice(1);
  const graphData: Record<string, string> = {};
  if (top !== undefined) {
    // Like overlay2: the top layer is shown as the upper dir; merged/work only exist per container.
    if (lower.length > 0) graphData.LowerDir = lower.join(":");
    graphData.UpperDir = top;
    graphData.MergedDir = top.replace(/\/diff$/, "/merged");
    graphData.WorkDir = top.replace(/\/diff$/, "/work");
  }
  return {
    Id: image.id,
    RepoTags: image.repoTags,
    RepoDigests: image.repoDigests,
    Parent: image.parent ?? "",
    Comment: image.config.comment ?? "",
    Created: image.config.created ?? zeroTime,
    Container: "",
    ContainerConfig: dockerConfig(undefined),
    DockerVersion: image.config.docker_version ?? "",
    Author: image.config.author ?? "",
    Config: dockerConfig(image.config.config),
    Architecture: image.config.architecture,
    ...(image.config.variant ? { Variant: image.config.variant } : {}),
    Os: image.config.os,
    Size: image.size,
    VirtualSize: image.size,
    GraphDriver: { Name: "overlay2", Data: graphData },
    RootFS: { Type: "layers", Layers: image.config.rootfs.diff_ids },
    Metadata: { LastTagTime: image.loadedAt },
  };
}

/** One row of `docker images`. containers: how many containers use it, or -1 when not counted (as dockerd). */
export function toImageSummary(image: ImageRecord, containers = -1): Record<string, unknown> {
  const created = image.config.created ? Math.floor(Date.parse(image.config.created) / 1000) : 0;
  return {
    Id: image.id,
    ParentId: image.parent ?? "",
    RepoTags: image.repoTags,
    RepoDigests: image.repoDigests,
    Created: Number.isFinite(created) ? created : 0,
    Size: image.size,
    SharedSize: -1,
    VirtualSize: image.size,
    Labels: image.config.config?.Labels ?? {},
    Containers: containers,
  };
}
