// The HostConfig fields of docs/engine-hostconfig.md (security, namespaces, devices, links),
// kept as the client sent them so inspect shows them and `--format '{{.HostConfig.Sysctls}}'`
// works; the defaults are the ones dockerd fills in (IpcMode "private", the rest empty).
import type { HostConfig } from "../../../shared/engine-api.js";

type Fields = Pick<
  HostConfig,
  | "SecurityOpt"
  | "Devices"
  | "DeviceCgroupRules"
  | "Sysctls"
  | "PidMode"
  | "IpcMode"
  | "UTSMode"
  | "GroupAdd"
  | "OomScoreAdj"
  | "VolumesFrom"
  | "Links"
  | "MaskedPaths"
  | "ReadonlyPaths"
>;

export function hostConfigExtras(h: Partial<HostConfig>): Fields {
  const out: Fields = {
    SecurityOpt: h.SecurityOpt ?? null,
    Devices: (h.Devices ?? []).map((d) => ({
      PathOnHost: d.PathOnHost,
      PathInContainer: d.PathInContainer || d.PathOnHost,
      CgroupPermissions: d.CgroupPermissions || "rwm",
    })),
    DeviceCgroupRules: h.DeviceCgroupRules ?? null,
    PidMode: h.PidMode ?? "",
    IpcMode: h.IpcMode || "private",
    UTSMode: h.UTSMode ?? "",
    GroupAdd: h.GroupAdd ?? null,
    OomScoreAdj: h.OomScoreAdj ?? 0,
    VolumesFrom: h.VolumesFrom ?? null,
    Links: h.Links ?? null,
  };
  if (h.Sysctls && Object.keys(h.Sysctls).length > 0) out.Sysctls = { ...h.Sysctls };
  // Only a list the client sent: inspect shows Docker's defaults as null too.
  if (Array.isArray(h.MaskedPaths)) out.MaskedPaths = [...h.MaskedPaths];
  if (Array.isArray(h.ReadonlyPaths)) out.ReadonlyPaths = [...h.ReadonlyPaths];
  return out;
}
