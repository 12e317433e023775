// --sysctl: only the namespaced keys Docker accepts (the CLI's ValidateSysctl list), and each
// only when the container has the namespace it lives in; runc would otherwise refuse it at
// start, or worse, write the host's value.
import { invalid } from "../../../shared/errors.js";

/** IPC namespace keys (SysV IPC limits). */
const IPC_KEYS = new Set([
  "kernel.msgmax",
  "kernel.msgmnb",
  "kernel.msgmni",
  "kernel.sem",
  "kernel.shmall",
  "kernel.shmmax",
  "kernel.shmmni",
  "kernel.shm_rmid_forced",
]);

export interface SysctlNamespaces {
  /** HostConfig.NetworkMode: "host" shares the host's network namespace. */
  networkMode: string;
  /** HostConfig.IpcMode: "host" shares the host's IPC namespace. */
  ipcMode: string;
}

/** The sysctls for the spec, or a 400 naming the first key that cannot be set in this container. */
export function checkSysctls(
  sysctls: Record<string, string> | null | undefined,
  ns: SysctlNamespaces,
): Record<string, string> | undefined {
  if (!sysctls || Object.keys(sysctls).length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(sysctls)) {
    if (typeof value !== "string")
      throw invalid(`invalid --sysctl ${key}: the value must be a string (--sysctl ${key}=VALUE)`);
    const ipc = IPC_KEYS.has(key) || key.startsWith("fs.mqueue.");
    const net = key.startsWith("net.");
    if (!ipc && !net)
      throw invalid(
        `invalid --sysctl ${key}: sysctl '${key}' is not whitelisted; only namespaced ones can be set (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*)`,
      );
    if (ipc && ns.ipcMode === "host")
      throw invalid(`invalid --sysctl ${key}: it is not allowed in the host's IPC namespace (--ipc host)`);
    if (net && ns.networkMode === "host")
      throw invalid(
        `invalid --sysctl ${key}: it is not allowed in the host's network namespace (--network host)`,
      );
    if (key.includes("/") || key.includes("..") || key.endsWith("."))
      throw invalid(`invalid --sysctl ${key}: not a sysctl name`);
    out[key] = value;
  }
  return out;
}
