// The container engine's events, with dockerd's actions and attributes (daemon/events.go,
// monitor.go, container_operations.go, volumes_unix.go): every container event carries the
// container's labels, `image` (as the user named it) and `name`; network connect/disconnect
// carry `container`, `name` and `type`; volume mount/unmount carry `driver` and `container`.
import type { EngineContext } from "./context.js";
import type { ContainerRecord } from "./types.js";

/** A container event: create, start, die (exitCode), kill (signal), oom, stop, restart, destroy, rename, ... */
export function containerEvent(
  ctx: EngineContext,
  rec: ContainerRecord,
  action: string,
  extra: Record<string, string> = {},
): void {
  const attributes: Record<string, string> = { ...extra, ...(rec.Config.Labels ?? {}) };
  if (rec.Config.Image) attributes.image = rec.Config.Image;
  attributes.name = rec.Name;
  ctx.events.emit("container", action, rec.Id, attributes);
}

/** network connect/disconnect for one network, named as the container's settings name it. */
export function networkEvent(
  ctx: EngineContext,
  rec: ContainerRecord,
  action: "connect" | "disconnect",
  networkName: string,
  networkId?: string,
): void {
  const known = ctx.network.find(networkId ?? networkName) ?? ctx.network.find(networkName);
  ctx.events.emit("network", action, known?.Id ?? networkId ?? networkName, {
    container: rec.Id,
    name: known?.Name ?? networkName,
    type: known?.Driver ?? "overlay",
  });
}

/** connect (at start) or disconnect (at exit) of every network the container is on. */
export function allNetworksEvent(
  ctx: EngineContext,
  rec: ContainerRecord,
  action: "connect" | "disconnect",
): void {
  const mode = rec.HostConfig.NetworkMode ?? "";
  if (mode.startsWith("container:")) return;
  if (mode === "host" || mode === "none") {
    networkEvent(ctx, rec, action, mode);
    return;
  }
  for (const [name, ep] of Object.entries(rec.NetworkSettings?.Networks ?? {}))
    networkEvent(ctx, rec, action, name, ep.NetworkID);
}

/** volume mount (at start) or unmount (at exit) of each named or anonymous volume the container uses. */
export function volumeMountEvents(
  ctx: EngineContext,
  rec: ContainerRecord,
  action: "mount" | "unmount",
): void {
  for (const m of rec.Mounts ?? []) {
    if (m.Type !== "volume" || !m.Name) continue;
    const attributes: Record<string, string> = { driver: m.Driver ?? "local", container: rec.Id };
    if (action === "mount") {
      attributes.destination = m.Destination;
      attributes["read/write"] = String(m.RW);
      attributes.propagation = m.Propagation;
    }
    ctx.events.emit("volume", action, m.Name, attributes);
  }
}

/** What a start emits once the process runs: its networks, its volumes, then start (dockerd's order). */
export function startedEvents(ctx: EngineContext, rec: ContainerRecord): void {
  allNetworksEvent(ctx, rec, "connect");
  volumeMountEvents(ctx, rec, "mount");
  containerEvent(ctx, rec, "start");
}

/** What an exit emits once recorded: its networks released, its volumes unmounted, then die, then oom. */
export function exitedEvents(
  ctx: EngineContext,
  rec: ContainerRecord,
  code: number,
  startedAtMs: number,
): void {
  allNetworksEvent(ctx, rec, "disconnect");
  volumeMountEvents(ctx, rec, "unmount");
  if (rec.State.OOMKilled) containerEvent(ctx, rec, "oom");
  const ran = startedAtMs > 0 ? Math.max(0, Math.floor((Date.now() - startedAtMs) / 1000)) : 0;
  containerEvent(ctx, rec, "die", { exitCode: String(code), execDuration: String(ran) });
}
