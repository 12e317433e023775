// The process an exec runs (`runc exec --process <file>`), made the way dockerd makes it: the
// container's own process (rlimits, no-new-privileges, oom score, capabilities) with the exec's
// command, environment, user, working folder and terminal. runc joins the container's
// namespaces and cgroup and applies its seccomp profile itself.
import { readFile } from "node:fs/promises";
import type { ContainerRecord } from "../container/types.js";
import { allCapabilities, type CapabilityEnv } from "../runtime/capabilities.js";
import type { LinuxCapabilities, Process, Spec } from "../runtime/oci-types.js";
import { processEnv } from "../runtime/spec-env.js";
import { resolveUser, type ResolvedUser } from "../runtime/user.js";
import type { ExecCreateRequest } from "./types.js";

/** runc 1.1 reads `consoleSize` for a process with a terminal: the size it starts with. */
export interface ExecProcess extends Process {
  consoleSize?: { height: number; width: number };
}

export interface ExecProcessInput {
  record: ContainerRecord;
  /** The container's config.json, as runc runs it. */
  specPath: string;
  /** The container's mounted root: `-u name` is looked up in its /etc/passwd and /etc/group. */
  rootfs: string;
  exec: ExecCreateRequest;
  consoleSize?: [number, number];
  capabilities: CapabilityEnv;
}

/** A non-root process gets only the bounding set, as spec.ts gives containers (dockerd 23+). */
function capabilitySets(bounding: readonly string[], uid: number): LinuxCapabilities {
  const own = uid === 0 ? [...bounding] : [];
  return { bounding: [...bounding], effective: own, permitted: [...own], inheritable: [], ambient: [] };
}

/** The user to run as: the container's own (as its spec has it) unless the exec names one. */
export async function execUser(
  input: Pick<ExecProcessInput, "record" | "rootfs" | "exec">,
  containerUser?: Process["user"],
): Promise<ResolvedUser> {
  const asked = input.exec.User;
  const own = input.record.Config.User ?? "";
  const resolved = await resolveUser(input.rootfs, asked || own);
  // The container's spec may carry groups the record does not name again (spec.ts computed them).
  if (!asked && containerUser) {
    return {
      ...resolved,
      uid: containerUser.uid,
      gid: containerUser.gid,
      additionalGids: containerUser.additionalGids ?? resolved.additionalGids,
    };
  }
  return resolved;
}

export async function buildExecProcess(input: ExecProcessInput): Promise<ExecProcess> {
  const spec = JSON.parse(await readFile(input.specPath, "utf8")) as Spec;
  const base = spec.process;
  const { exec, record } = input;
  const user = await execUser(input, base.user);
  const hostname = spec.hostname ?? record.Config.Hostname ?? record.Id.slice(0, 12);
  const bounding = exec.Privileged ? allCapabilities(input.capabilities) : base.capabilities.bounding;
  const process: ExecProcess = {
    ...base,
    terminal: exec.Tty,
    user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
    args: [...exec.Cmd],
    // dockerd: the daemon's defaults (PATH, HOSTNAME, TERM with a TTY), the container's Env,
    // then the exec's, each replacing by name; HOME from the exec's user when none is set.
    env: processEnv({
      hostname,
      tty: exec.Tty,
      env: [...(record.Config.Env ?? []), ...exec.Env],
      home: user.home,
    }),
    cwd: exec.WorkingDir || record.Config.WorkingDir || "/",
    // --privileged: every capability this daemon can grant, in every set and for any user, as
    // dockerd does; the container's seccomp profile still applies (runc exec keeps it).
    capabilities: exec.Privileged
      ? {
          bounding: [...bounding],
          effective: [...bounding],
          permitted: [...bounding],
          inheritable: [],
          ambient: [],
        }
      : capabilitySets(bounding, user.uid),
  };
  delete process.apparmorProfile;
  const size = input.consoleSize ?? exec.ConsoleSize;
  if (exec.Tty && size && size[0] > 0 && size[1] > 0)
    process.consoleSize = { height: size[0], width: size[1] };
  else delete process.consoleSize;
  return process;
}
