// --device and --device-cgroup-rule: host device nodes made in the container (with the host
// node's type, numbers, mode and owner) and allowed in its devices cgroup, and extra cgroup
// rules, parsed as dockerd does (daemon/devices_linux.go, oci.AppendDevicePermissionsFromCgroupRules).
import { lstat, readdir } from "node:fs/promises";
import { join, relative } from "node:path";
import { errnoCode, invalid } from "../../../shared/errors.js";
import type { LinuxDevice, LinuxDeviceCgroup } from "./oci-types.js";
import { majorMinor } from "./spec-devices.js";

export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer?: string;
  CgroupPermissions?: string;
}

const PERMS = /^[rwm]{1,3}$/;

async function nodeAt(hostPath: string, inContainer: string): Promise<LinuxDevice | "dir" | undefined> {
  const st = await lstat(hostPath, { bigint: true });
  if (st.isDirectory()) return "dir";
  if (!st.isCharacterDevice() && !st.isBlockDevice()) return undefined;
  return {
    path: inContainer,
    type: st.isCharacterDevice() ? "c" : "b",
    ...majorMinor(st.rdev),
    fileMode: Number(st.mode & 0o777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
  };
}

/** Every device under a host folder, mapped below the container path (dockerd does the same walk). */
async function walk(hostDir: string, root: string, inContainer: string, out: LinuxDevice[]): Promise<void> {
  for (const name of (await readdir(hostDir)).sort()) {
    const p = join(hostDir, name);
    const target = join(inContainer, relative(root, p));
    let node;
    try {
      node = await nodeAt(p, target);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") continue;
      throw e;
    }
    if (node === "dir") await walk(p, root, inContainer, out);
    else if (node) out.push(node);
  }
}

export async function userDevices(
  mappings: DeviceMapping[] | null | undefined,
): Promise<{ devices: LinuxDevice[]; rules: LinuxDeviceCgroup[] }> {
  const devices: LinuxDevice[] = [];
  const rules: LinuxDeviceCgroup[] = [];
  for (const m of mappings ?? []) {
    const host = m.PathOnHost ?? "";
    const inContainer = m.PathInContainer || host;
    const perms = m.CgroupPermissions || "rwm";
    const shown = `--device ${host}${m.PathInContainer ? `:${m.PathInContainer}` : ""}`;
    if (!host.startsWith("/") || !inContainer.startsWith("/"))
      throw invalid(
        `invalid ${shown}: both paths must be absolute (--device /dev/HOST[:/dev/CONTAINER[:rwm]])`,
      );
    if (!PERMS.test(perms))
      throw invalid(`invalid ${shown}:${perms}: invalid device mode, use a combination of r, w and m`);
    let node;
    try {
      node = await nodeAt(host, inContainer);
    } catch (e) {
      const why = errnoCode(e) === "ENOENT" ? "no such file or directory" : String(errnoCode(e) ?? e);
      throw invalid(`error gathering device information while adding custom device "${host}": ${why}`);
    }
    const found: LinuxDevice[] = [];
    if (node === "dir") await walk(host, host, inContainer, found);
    else if (node) found.push(node);
    else
      throw invalid(
        `error gathering device information while adding custom device "${host}": not a device node`,
      );
    for (const d of found) {
      devices.push(d);
      rules.push({
        allow: true,
        type: d.type === "b" ? "b" : "c",
        major: d.major,
        minor: d.minor,
        access: perms,
      });
    }
  }
  return { devices, rules };
}

const RULE = /^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$/;

/** `--device-cgroup-rule 'c 42:* rmw'` → a devices cgroup allow rule. */
export function deviceCgroupRules(rules: string[] | null | undefined): LinuxDeviceCgroup[] {
  return (rules ?? []).map((text) => {
    const m = RULE.exec(text.trim());
    if (!m)
      throw invalid(
        `invalid --device-cgroup-rule ${JSON.stringify(text)}: use TYPE MAJOR:MINOR ACCESS, e.g. 'c 1:3 rwm' (type a, b or c; * for any number; access r, w, m)`,
      );
    const rule: LinuxDeviceCgroup = { allow: true, type: m[1] as "a" | "b" | "c", access: m[4] };
    if (m[2] !== "*") rule.major = Number(m[2]);
    if (m[3] !== "*") rule.minor = Number(m[3]);
    return rule;
  });
}
