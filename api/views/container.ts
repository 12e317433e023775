// The Engine API's JSON views of a container: `GET /containers/{id}/json` and the summaries of
// `GET /containers/json`. Kept apart from the engine so the stored record can evolve freely.
import type { ContainerRecord, EndpointSettings } from "../../agent/engine/container/types.js";
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
      ...(s.Health ? { Health: s.Health } : {}),
    },
    Image: c.ImageId,
    ResolvConfPath: `${c.BundlePath}/resolv.conf`,
    HostnamePath: `${c.BundlePath}/hostname`,
    HostsPath: `${c.BundlePath}/hosts`,
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
    Mounts: mountViews(c),
    Config: c.Config,
    NetworkSettings: toNetworkSettingsView(c),
  };
}

/** Endpoints as the API shows them (shoal's bookkeeping fields left out). */
function endpointViews(c: ContainerRecord): Record<string, EndpointSettings> {
  const out: Record<string, EndpointSettings> = {};
  for (const [name, ep] of Object.entries(c.NetworkSettings?.Networks ?? {})) {
    const {
      InterfaceName: _i,
      AttachmentID: _a,
      DesiredMacAddress: mac,
      ...view
    } = ep as EndpointSettings & { InterfaceName?: string };
    out[name] = {
      Links: null,
      GlobalIPv6Address: "",
      GlobalIPv6PrefixLen: 0,
      IPv6Gateway: "",
      DriverOpts: null,
      ...view,
      // Asked for with --mac-address: shown while stopped too, as dockerd shows its config.
      ...(mac && !view.MacAddress ? { MacAddress: mac } : {}),
    } as EndpointSettings;
  }
  return out;
}

/** Docker's NetworkSettings: the per-network endpoints plus the default bridge's fields at the top. */
function toNetworkSettingsView(c: ContainerRecord) {
  const bridge = c.NetworkSettings?.Networks.bridge;
  return {
    Bridge: "",
    SandboxID: c.NetworkSettings?.SandboxKey ? c.Id : "",
    SandboxKey: c.NetworkSettings?.SandboxKey ?? "",
    HairpinMode: false,
    LinkLocalIPv6Address: "",
    LinkLocalIPv6PrefixLen: 0,
    Ports: c.NetworkSettings?.Ports ?? {},
    SecondaryIPAddresses: null,
    SecondaryIPv6Addresses: null,
    EndpointID: bridge?.EndpointID ?? "",
    Gateway: bridge?.Gateway ?? "",
    GlobalIPv6Address: "",
    GlobalIPv6PrefixLen: 0,
    IPAddress: bridge?.IPAddress ?? "",
    IPPrefixLen: bridge?.IPPrefixLen ?? 0,
    IPv6Gateway: "",
    MacAddress: bridge?.MacAddress ?? "",
    Networks: endpointViews(c),
  };
}

/** `docker ps`'s port list: one entry per published binding, and exposed ports without one. */
export function portSummaries(
  c: ContainerRecord,
): Array<{ IP?: string; PrivatePort: number; PublicPort?: number; Type: string }> {
  const out: Array<{ IP?: string; PrivatePort: number; PublicPort?: number; Type: string }> = [];
  for (const [key, bindings] of Object.entries(c.NetworkSettings?.Ports ?? {})) {
    const [port, type = "tcp"] = key.split("/");
    if (!bindings || bindings.length === 0) {
      out.push({ PrivatePort: Number(port), Type: type });
      continue;
    }
    for (const b of bindings)
      out.push({
        IP: b.HostIp || "0.0.0.0",
        PrivatePort: Number(port),
        PublicPort: Number(b.HostPort),
        Type: type,
      });
  }
  return out;
}

/** inspect's and ps's "Mounts" (Docker's MountPoint; Name and Driver only for volumes). */
export function mountViews(c: ContainerRecord) {
  return (c.Mounts ?? []).map((m) => ({
    Type: m.Type,
    ...(m.Name ? { Name: m.Name } : {}),
    Source: m.Source,
    Destination: m.Destination,
    ...(m.Driver ? { Driver: m.Driver } : {}),
    Mode: m.Mode,
    RW: m.RW,
    Propagation: m.Propagation,
  }));
}

/** The STATUS column of `docker ps`: "Up 3 seconds", "Exited (0) 2 minutes ago", "Created". */
export function statusText(c: ContainerRecord, now = Date.now()): string {
  const text = describeState(c.State, now);
  // dockerd: "Up 5 seconds (healthy)", "(unhealthy)", "(health: starting)"; only while running.
  const h = c.State.Health;
  if (!h || c.State.Status !== "running") return text;
  return `${text} (${h.Status === "starting" ? "health: starting" : h.Status})`;
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
    Ports: portSummaries(c),
    Labels: c.Config.Labels ?? {},
    State: c.State.Status,
    Status: statusText(c),
    HostConfig: { NetworkMode: c.HostConfig.NetworkMode || "default" },
    NetworkSettings: { Networks: endpointViews(c) },
    Mounts: mountViews(c),
  };
}
