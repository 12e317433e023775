// The `docker ps` filters beyond id/name/label/status/exited/ancestor/before/since, with
// dockerd's rules (daemon/list.go): volume (a volume name, bind source or mount destination),
// network (a network name or id prefix), publish and expose (a port, range, with an optional
// protocol, tcp when none), health (starting, healthy, unhealthy or none), is-task and isolation.
import { invalid } from "../../../shared/errors.js";
import { isTaskContainer } from "../network/attachments.js";
import type { ContainerRecord } from "./types.js";

export const MORE_PS_FILTERS = ["volume", "network", "publish", "expose", "health", "is-task", "isolation"];

const HEALTH = ["starting", "healthy", "unhealthy", "none"];
const ISOLATION = ["default", "process", "hyperv"];

/** "80", "80/udp", "8000-8010/tcp" -> the set of "port/proto" keys; ':' and bad numbers are a 400. */
function portSet(key: string, values: string[]): Set<string> {
  const out = new Set<string>();
  for (const value of values) {
    if (value.includes(":")) throw invalid(`filter for '${key}' should not contain ':': ${value}`);
    const [range, proto = "tcp"] = value.split("/", 2);
    const m = /^(\d+)(?:-(\d+))?$/.exec(range);
    const start = m ? Number(m[1]) : NaN;
    const end = m?.[2] !== undefined ? Number(m[2]) : start;
    if (!m || start < 1 || end > 65535 || end < start || !/^(tcp|udp|sctp)$/.test(proto))
      throw invalid(
        `invalid filter '${key}=${value}': use a port, a range such as 8000-8010, optionally with /tcp or /udp`,
      );
    if (end - start > 65535) throw invalid(`invalid filter '${key}=${value}': the range is too large`);
    for (let p = start; p <= end; p++) out.add(`${p}/${proto}`);
  }
  return out;
}

function oneBool(key: string, values: string[]): boolean {
  const v = values[values.length - 1].toLowerCase();
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw invalid(`invalid filter '${key}=${values[values.length - 1]}': use true or false`);
}

/** A container's health as `ps --filter health=` sees it: the health check's status, or none. */
export function healthOf(r: ContainerRecord): string {
  const state = r.State as { Health?: { Status?: string } };
  return state.Health?.Status || "none";
}

const up = (r: ContainerRecord): boolean => r.State.Status === "running" || r.State.Status === "paused";

/** The predicate for the filters in MORE_PS_FILTERS; a bad value is a 400 naming it. */
export function morePsMatcher(f: Record<string, string[]>): (r: ContainerRecord) => boolean {
  for (const h of f.health ?? [])
    if (!HEALTH.includes(h)) throw invalid(`invalid filter 'health=${h}': use ${HEALTH.join(", ")}`);
  for (const i of f.isolation ?? [])
    if (!ISOLATION.includes(i)) throw invalid(`invalid filter 'isolation=${i}': use ${ISOLATION.join(", ")}`);
  const publish = f.publish?.length ? portSet("publish", f.publish) : undefined;
  const expose = f.expose?.length ? portSet("expose", f.expose) : undefined;
  const isTask = f["is-task"]?.length ? oneBool("is-task", f["is-task"]) : undefined;

  const matchVolume = (r: ContainerRecord): boolean =>
    (r.Mounts ?? []).some((m) => f.volume?.some((v) => v === m.Destination || v === (m.Name || m.Source)));
  const matchNetwork = (r: ContainerRecord): boolean =>
    Object.entries(r.NetworkSettings?.Networks ?? {}).some(([name, ep]) =>
      f.network?.some((v) => v === name || (ep.NetworkID ?? "").startsWith(v)),
    );
  const matchPorts = (r: ContainerRecord): boolean => {
    // A running container's ports are its bindings; a stopped one shows only what it exposes.
    const keys = new Set(Object.keys(r.Config.ExposedPorts ?? {}));
    const published: string[] = [];
    if (up(r))
      for (const [key, bindings] of Object.entries(r.NetworkSettings?.Ports ?? {})) {
        keys.add(key);
        const proto = key.split("/")[1] ?? "tcp";
        for (const b of bindings ?? []) if (b.HostPort) published.push(`${Number(b.HostPort)}/${proto}`);
      }
    return (
      [...keys].some((k) => expose?.has(k.includes("/") ? k : `${k}/tcp`)) ||
      published.some((p) => publish?.has(p))
    );
  };
  return (r) =>
    (!f.volume?.length || matchVolume(r)) &&
    (!f.network?.length || matchNetwork(r)) &&
    (!(publish || expose) || matchPorts(r)) &&
    (!f.health?.length || f.health.includes(healthOf(r))) &&
    (isTask === undefined || isTaskContainer(r) === isTask) &&
    (!f.isolation?.length ||
      f.isolation.includes((r.HostConfig as { Isolation?: string }).Isolation || "default"));
}
