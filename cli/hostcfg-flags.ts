// The run/create flags of commands/hostcfg-options.ts (security, namespaces, devices, links:
// docs/engine-hostconfig.md) onto the create body, read as the docker CLI reads them: `--device` split into its
// three parts, `--security-opt seccomp=<file>` replaced by the file's JSON, `--sysctl` into a map.
import { readFile } from "node:fs/promises";
import { parseBytes } from "../shared/units.js";
import { UsageError } from "./errors.js";
import type { CreateBody } from "./options.js";

export interface HostcfgFlags {
  securityOpt?: string[];
  device?: string[];
  deviceCgroupRule?: string[];
  sysctl?: string[];
  pid?: string;
  ipc?: string;
  uts?: string;
  groupAdd?: string[];
  oomScoreAdj?: string;
  macAddress?: string;
  volumesFrom?: string[];
  link?: string[];
  shmSize?: string;
}

const MODE = /^[rwm]{1,3}$/;

/** `--device /dev/a[:/dev/b][:rwm]` (docker's parseDevice). */
function parseDevice(spec: string): {
  PathOnHost: string;
  PathInContainer: string;
  CgroupPermissions: string;
} {
  const parts = spec.split(":");
  let [host, container, perms] = [parts[0], "", "rwm"];
  if (parts.length === 2 && MODE.test(parts[1])) perms = parts[1];
  else if (parts.length === 2) container = parts[1];
  else if (parts.length === 3) [host, container, perms] = parts;
  else if (parts.length > 3) throw new UsageError(`invalid --device ${spec}: use HOST[:CONTAINER][:rwm]`);
  if (!MODE.test(perms)) throw new UsageError(`invalid --device ${spec}: invalid device mode ${perms}`);
  return { PathOnHost: host, PathInContainer: container || host, CgroupPermissions: perms };
}

/** `seccomp=<file>`: the docker CLI sends the profile's text, compacted. */
async function securityOpts(opts: string[]): Promise<string[]> {
  return Promise.all(
    opts.map(async (opt) => {
      const m = /^seccomp[=:](.+)$/.exec(opt);
      if (!m || m[1] === "unconfined" || m[1] === "builtin") return opt;
      let text: string;
      try {
        text = await readFile(m[1], "utf8");
      } catch (e) {
        throw new UsageError(`opening seccomp profile (${m[1]}) failed: ${(e as Error).message}`);
      }
      try {
        return `seccomp=${JSON.stringify(JSON.parse(text))}`;
      } catch (e) {
        throw new UsageError(`compacting json for seccomp profile (${m[1]}) failed: ${(e as Error).message}`);
      }
    }),
  );
}

function integer(value: string, flag: string): number {
  if (!/^-?\d+$/.test(value.trim())) throw new UsageError(`invalid ${flag} ${value}: use a whole number`);
  return Number(value);
}

export async function addHostcfgFields(body: CreateBody, f: HostcfgFlags): Promise<void> {
  const hc = body.HostConfig;
  if (f.securityOpt?.length) hc.SecurityOpt = await securityOpts(f.securityOpt);
  if (f.device?.length) hc.Devices = f.device.map(parseDevice);
  if (f.deviceCgroupRule?.length) hc.DeviceCgroupRules = [...f.deviceCgroupRule];
  if (f.sysctl?.length) {
    hc.Sysctls = {};
    for (const s of f.sysctl) {
      const eq = s.indexOf("=");
      if (eq <= 0) throw new UsageError(`invalid --sysctl ${s}: use KEY=VALUE`);
      hc.Sysctls[s.slice(0, eq)] = s.slice(eq + 1);
    }
  }
  if (f.pid !== undefined) hc.PidMode = f.pid;
  if (f.ipc !== undefined) hc.IpcMode = f.ipc;
  if (f.uts !== undefined) hc.UTSMode = f.uts;
  if (f.groupAdd?.length) hc.GroupAdd = [...f.groupAdd];
  if (f.oomScoreAdj !== undefined) hc.OomScoreAdj = integer(f.oomScoreAdj, "--oom-score-adj");
  if (f.volumesFrom?.length) hc.VolumesFrom = [...f.volumesFrom];
  if (f.link?.length) hc.Links = [...f.link];
  if (f.shmSize !== undefined) {
    try {
      hc.ShmSize = parseBytes(f.shmSize, "--shm-size");
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  // The daemon moves Config.MacAddress onto the endpoint of the container's network.
  if (f.macAddress !== undefined) (body as CreateBody & { MacAddress?: string }).MacAddress = f.macAddress;
}
