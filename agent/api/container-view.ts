// The Engine API's JSON views of a container: `GET /containers/{id}/json` and the summaries of
// `GET /containers/json`. Kept apart from the engine so the stored record can evolve freely.
import type { ContainerRecord } from "../engine/container/types.js";
import { describeState } from "../../shared/human.js";

const zeroTime = "0001-01-01T00:00:00Z";

export function toContainerInspect(c: ContainerRecord) {
  const s = c.State;
  return {
    Id: c.Id,
    Created: c.Created,
    Path: c.Path,
    Args: c.Args,
    State: {
      Status: s.Status,
      Running: s.Status === "running",
      Paused: s.Status === "paused",
      Restarting: s.Status === "restarting",
      OOMKilled: s.OOMKilled,
      Dead: s.Status === "dead",
      Pid: s.Pid,
      ExitCode: s.ExitCode,
      Error: s.Error,
      StartedAt: s.StartedAt || zeroTime,
      FinishedAt: s.FinishedAt || zeroTime,
    },
    Image: c.ImageId,
    ResolvConfPath: "",
    HostnamePath: "",
    HostsPath: "",
    LogPath: c.LogPath,
    Name: `/${c.Name}`,
    RestartCount: c.RestartCount,
    Driver: "overlay2",
    Platform: "linux",
    MountLabel: "",
    ProcessLabel: "",
    AppArmorProfile: "",
    ExecIDs: null,
    HostConfig: c.HostConfig,
    GraphDriver: { Name: "overlay2", Data: { MergedDir: c.RootfsPath } },
    Mounts: [],
    Config: c.Config,
    NetworkSettings: { Bridge: "", SandboxID: "", Ports: {}, SandboxKey: "", Networks: {} },
  };
}

/** The STATUS column of `docker ps`: "Up 3 seconds", "Exited (0) 2 minutes ago", "Created". */
export function statusText(c: ContainerRecord, now = Date.now()): string {
  return describeState(c.State, now);
}

/** `currentImageId(ref)` tells which image a reference names now, if any. */
export function toContainerSummary(c: ContainerRecord, currentImageId: (ref: string) => string | undefined) {
  // dockerd's wording: arguments with a space are wrapped in single quotes, nothing else escaped.
  const command = [c.Path, ...c.Args.map((a) => (a.includes(" ") ? `'${a}'` : a))].join(" ");
  return {
    Id: c.Id,
    Names: [`/${c.Name}`],
    // Docker shows the image as the user named it, or its id once that name points elsewhere.
    Image: currentImageId(c.Config.Image) === c.ImageId ? c.Config.Image : c.ImageId,
    ImageID: c.ImageId,
    Command: command,
    Created: Math.floor(Date.parse(c.Created) / 1000),
    Ports: [],
    Labels: c.Config.Labels ?? {},
    State: c.State.Status,
    Status: statusText(c),
    HostConfig: { NetworkMode: c.HostConfig.NetworkMode || "default" },
    NetworkSettings: { Networks: {} },
    Mounts: [],
  };
}
