// The HostConfig fields about namespaces, security and devices, applied to a spec that
// buildSpec made with Docker's defaults: --pid/--ipc/--uts, --security-opt, --device,
// --device-cgroup-rule, --sysctl, --group-add and --oom-score-adj. A container:<id> namespace
// is joined at start (container/namespace-join.ts), when the other container's pid is known.
import { invalid } from "../../../shared/errors.js";
import type { HostConfig } from "../../../shared/engine-api.js";
import { parseSecurityOpts } from "../container/security-opts.js";
import type { LinuxNamespace, Mount, Seccomp, Spec } from "./oci-types.js";
import { defaultSeccompProfile, seccompFromProfile, type SeccompHost } from "./seccomp-default.js";
import { loadSeccompProfile } from "./seccomp-profile.js";
import { checkSysctls } from "./spec-sysctls.js";
import { deviceCgroupRules, userDevices } from "./spec-user-devices.js";
import { resolveGroupAdd } from "./user.js";

export const isContainerMode = (mode: string | undefined): boolean => mode?.startsWith("container:") === true;

/** The namespaces a container gets: its own of each kind, except what it shares with the host. */
export function namespacesFor(
  hc: HostConfig,
  network: LinuxNamespace | undefined,
  cgroupV2: boolean,
): LinuxNamespace[] {
  const out: LinuxNamespace[] = [{ type: "mount" }];
  if (network) out.push(network);
  if (hc.UTSMode !== "host") out.push({ type: "uts" });
  if (hc.PidMode !== "host") out.push({ type: "pid" });
  if (hc.IpcMode !== "host") out.push({ type: "ipc" });
  if (cgroupV2) out.push({ type: "cgroup" });
  return out;
}

/** /dev/shm as the IPC mode wants it: the host's for host, none for none (dockerd's IpcMounts). */
export function shmMountsFor(mounts: Mount[], ipcMode: string | undefined): Mount[] {
  if (ipcMode === "none") return mounts.filter((m) => m.destination !== "/dev/shm");
  if (ipcMode !== "host") return mounts;
  return mounts.map((m) =>
    m.destination === "/dev/shm"
      ? {
          destination: "/dev/shm",
          type: "bind",
          source: "/dev/shm",
          options: ["rbind", "rprivate", "nosuid", "nodev"],
        }
      : m,
  );
}

const OOM_RANGE = "range for oom score adj is [-1000, 1000]";

/** Checks create makes before anything is written: each a 400 naming the flag. */
export function validateHostConfigExtras(hc: HostConfig, hostnameGiven: boolean): void {
  const pid = hc.PidMode ?? "";
  if (pid !== "" && pid !== "host" && !/^container:.+/.test(pid))
    throw invalid(`invalid --pid ${pid}: use host or container:<name|id>`);
  const ipc = hc.IpcMode ?? "";
  if (!["", "private", "shareable", "none", "host"].includes(ipc) && !/^container:.+/.test(ipc))
    throw invalid(`invalid --ipc ${ipc}: use private, shareable, none, host or container:<name|id>`);
  const uts = hc.UTSMode ?? "";
  if (uts !== "" && uts !== "host") throw invalid(`invalid --uts ${uts}: use host`);
  if (uts === "host" && hostnameGiven)
    throw invalid(
      "conflicting options: hostname and the UTS mode (--hostname cannot be combined with --uts host)",
    );
  const oom = hc.OomScoreAdj ?? 0;
  if (!Number.isInteger(oom) || oom < -1000 || oom > 1000)
    throw invalid(`Invalid value ${oom}, ${OOM_RANGE} (--oom-score-adj)`);
  parseSecurityOpts(hc.SecurityOpt);
  for (const [field, paths] of [
    ["MaskedPaths", hc.MaskedPaths],
    ["ReadonlyPaths", hc.ReadonlyPaths],
  ] as const) {
    if (paths === undefined || paths === null) continue;
    if (!Array.isArray(paths) || paths.some((p) => typeof p !== "string" || !p.startsWith("/")))
      throw invalid(`invalid HostConfig.${field}: a list of absolute container paths (or null for Docker's)`);
  }
  checkSysctls(hc.Sysctls, { networkMode: hc.NetworkMode, ipcMode: ipc });
  deviceCgroupRules(hc.DeviceCgroupRules);
}

/** The seccomp section: Docker's default, none (unconfined or privileged), or the user's profile. */
export function seccompFor(
  hc: HostConfig,
  caps: readonly string[],
  host: SeccompHost | undefined,
): Seccomp | undefined {
  const choice = parseSecurityOpts(hc.SecurityOpt).seccomp;
  if (hc.Privileged === true || choice.kind === "unconfined") return undefined;
  if (choice.kind === "default") return defaultSeccompProfile(caps, host);
  const profile = loadSeccompProfile(choice.json);
  return profile ? seccompFromProfile(profile, caps, host) : undefined;
}

/**
 * Everything of the slice that goes into the spec once buildSpec made the rest: the process
 * flags, groups, devices, device rules and sysctls. `rootfs` is read for --group-add names.
 */
export async function applyHostConfigExtras(spec: Spec, hc: HostConfig, rootfs: string): Promise<void> {
  const sec = parseSecurityOpts(hc.SecurityOpt);
  spec.process.noNewPrivileges = sec.noNewPrivileges;
  spec.process.oomScoreAdj = hc.OomScoreAdj ?? 0;
  const added = await resolveGroupAdd(rootfs, hc.GroupAdd);
  if (added.length > 0) {
    const gids = spec.process.user.additionalGids ?? [spec.process.user.gid];
    spec.process.user.additionalGids = [...new Set([...gids, ...added])];
  }
  const { devices, rules } = await userDevices(hc.Devices);
  const taken = new Set(devices.map((d) => d.path));
  spec.linux.devices = [...spec.linux.devices.filter((d) => !taken.has(d.path)), ...devices];
  spec.linux.resources.devices.push(...rules, ...deviceCgroupRules(hc.DeviceCgroupRules));
  const sysctl = checkSysctls(hc.Sysctls, { networkMode: hc.NetworkMode, ipcMode: hc.IpcMode ?? "" });
  if (sysctl) spec.linux.sysctl = sysctl;
  if (hc.UTSMode === "host") delete spec.hostname;
}
