// Every Config, HostConfig and endpoint field the docker CLI sends that shoal does not act on.
// A create that gives one of them a value other than its default is refused with the flag's
// name: accepting `--security-opt no-new-privileges` or `--device` and ignoring it would run a
// container weaker (or different) than asked. When a field gets implemented, its row goes.
import { invalid } from "../../../shared/errors.js";

type Check = (value: unknown, ctx: UnsupportedContext) => boolean;

export interface UnsupportedContext {
  /** The host's cgroup version decides which cgroup namespace a container gets by default. */
  cgroupV2: boolean;
}

interface Unsupported {
  field: string;
  /** The docker CLI flag that sets the field, as the user typed it. */
  flag: string;
  /** True when the value asks for nothing shoal does not already do. */
  ok?: Check;
  /** Why, or what to do instead, when the plain "not supported" needs more. */
  hint?: string;
}

/** Unset, "", 0, false, [] or {}: what the docker CLI sends for a flag not given. */
function unset(v: unknown): boolean {
  if (v === undefined || v === null || v === "" || v === 0 || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.keys(v).length === 0;
  return false;
}

const absent = (v: unknown): boolean => v === undefined || v === null;

const oneOf =
  (...values: unknown[]): Check =>
  (v) =>
    unset(v) || values.includes(v);

/**
 * --security-opt values that name what shoal already does: its default seccomp profile is
 * always applied (there is no other), no-new-privileges stays off, and shoal applies no
 * AppArmor or SELinux profile of its own (so "unconfined" and "label=disable" are the truth).
 */
const SECURITY_OPTS_IN_EFFECT = new Set([
  "no-new-privileges=false",
  "no-new-privileges:false",
  "apparmor=unconfined",
  "apparmor:unconfined",
  "label=disable",
  "label:disable",
]);

function securityOptName(opt: string): string {
  const m = /^([a-z-]+)[=:]?/.exec(opt);
  const key = m ? m[1] : opt;
  if (key === "seccomp") return opt.startsWith("seccomp=unconfined") ? opt : "seccomp=<profile>";
  return opt.length > 60 ? `${opt.slice(0, 60)}...` : opt;
}

const HOST_CONFIG: Unsupported[] = [
  { field: "VolumeDriver", flag: "--volume-driver", ok: oneOf("local") },
  { field: "VolumesFrom", flag: "--volumes-from" },
  {
    field: "CgroupnsMode",
    flag: "--cgroupns",
    ok: (v, c) => unset(v) || v === (c.cgroupV2 ? "private" : "host"),
  },
  { field: "GroupAdd", flag: "--group-add" },
  // A private IPC namespace is what shoal gives; "shareable" only lets others join it.
  { field: "IpcMode", flag: "--ipc", ok: oneOf("private", "shareable") },
  { field: "Cgroup", flag: "--cgroup" },
  { field: "Links", flag: "--link", hint: "use a user-defined network and the container's name instead" },
  { field: "OomScoreAdj", flag: "--oom-score-adj" },
  { field: "PidMode", flag: "--pid" },
  { field: "UTSMode", flag: "--uts" },
  // No remapping in shoal: "host" is what every container gets.
  { field: "UsernsMode", flag: "--userns", ok: oneOf("host") },
  { field: "Isolation", flag: "--isolation", ok: oneOf("default") },
  {
    field: "CgroupParent",
    flag: "--cgroup-parent",
    hint: "shoald's --cgroup-parent sets it for every container",
  },
  { field: "BlkioWeightDevice", flag: "--blkio-weight-device" },
  { field: "CpuRealtimePeriod", flag: "--cpu-rt-period" },
  { field: "CpuRealtimeRuntime", flag: "--cpu-rt-runtime" },
  { field: "CpuCount", flag: "--cpu-count" },
  { field: "CpuPercent", flag: "--cpu-percent" },
  { field: "IOMaximumIOps", flag: "--io-maxiops" },
  { field: "IOMaximumBandwidth", flag: "--io-maxbandwidth" },
  { field: "Devices", flag: "--device", hint: "containers get Docker's default device list only" },
  { field: "DeviceCgroupRules", flag: "--device-cgroup-rule" },
  { field: "DeviceRequests", flag: "--gpus" },
  { field: "KernelMemory", flag: "--kernel-memory" },
  { field: "KernelMemoryTCP", flag: "--kernel-memory-tcp" },
  // The CLI turns `--security-opt systempaths=unconfined` into empty lists here.
  // so an empty list is a request too: only null keeps Docker's masked and read-only paths.
  { field: "MaskedPaths", flag: "--security-opt systempaths=unconfined", ok: absent },
  { field: "ReadonlyPaths", flag: "--security-opt systempaths=unconfined", ok: absent },
  { field: "Sysctls", flag: "--sysctl" },
  { field: "StorageOpt", flag: "--storage-opt" },
  {
    field: "Runtime",
    flag: "--runtime",
    hint: "shoald's --runtime sets the OCI runtime for every container",
  },
  { field: "Annotations", flag: "--annotation" },
  // Logs go to conmon's file, read back by `logs`: Docker's json-file does the same job.
  {
    field: "LogConfig",
    flag: "--log-driver/--log-opt",
    ok: (v) => {
      if (unset(v) || typeof v !== "object") return true;
      const { Type, Config } = v as { Type?: unknown; Config?: unknown };
      return (unset(Type) || Type === "k8s-file" || Type === "json-file") && unset(Config);
    },
    hint: "shoal keeps logs in its own file (the json-file driver's role) with no options",
  },
];

const CONFIG: Unsupported[] = [
  { field: "MacAddress", flag: "--mac-address" },
  { field: "NetworkDisabled", flag: "--network none", hint: "use --network none" },
];

const ENDPOINT: Unsupported[] = [
  { field: "MacAddress", flag: "--mac-address" },
  { field: "Links", flag: "--link" },
  { field: "DriverOpts", flag: "--network driver-opt" },
  { field: "GwPriority", flag: "--network gw-priority" },
];

const IPAM: Unsupported[] = [
  { field: "IPv6Address", flag: "--ip6" },
  { field: "LinkLocalIPs", flag: "--link-local-ip" },
];

function refusal(u: Unsupported, shown?: string): never {
  throw invalid(
    `${shown ?? u.flag} is not supported by shoal yet (${u.field}): it would be ignored, so the container is not created` +
      (u.hint ? `; ${u.hint}` : "; run it without that option"),
  );
}

function checkFields(obj: unknown, table: Unsupported[], ctx: UnsupportedContext): void {
  if (obj === null || typeof obj !== "object") return;
  const rec = obj as Record<string, unknown>;
  for (const u of table) {
    const value = rec[u.field];
    if (!(u.ok ?? unset)(value, ctx)) refusal(u);
  }
}

function checkSecurityOpt(value: unknown): void {
  if (unset(value)) return;
  const opts = Array.isArray(value) ? value : [value];
  for (const opt of opts) {
    const text = String(opt).trim();
    if (SECURITY_OPTS_IN_EFFECT.has(text)) continue;
    throw invalid(
      `--security-opt ${securityOptName(text)} is not supported by shoal yet (SecurityOpt): it would be ignored, so the container is not created; ` +
        "shoal applies Docker's default seccomp profile, no AppArmor or SELinux profile, and no no-new-privileges; run it without --security-opt",
    );
  }
}

/**
 * Refuse a create that asks for something shoal would silently not do. `config`, `hostConfig`
 * and `networkingConfig` are the request's raw objects, with every field the client sent.
 */
export function refuseUnsupported(
  config: unknown,
  hostConfig: unknown,
  networkingConfig: unknown,
  ctx: UnsupportedContext,
): void {
  checkFields(config, CONFIG, ctx);
  if (hostConfig !== null && typeof hostConfig === "object") {
    checkSecurityOpt((hostConfig as Record<string, unknown>).SecurityOpt);
    checkFields(hostConfig, HOST_CONFIG, ctx);
  }
  const endpoints = (networkingConfig as { EndpointsConfig?: unknown } | null | undefined)?.EndpointsConfig;
  if (endpoints === null || typeof endpoints !== "object") return;
  for (const ep of Object.values(endpoints as Record<string, unknown>)) {
    checkFields(ep, ENDPOINT, ctx);
    checkFields((ep as { IPAMConfig?: unknown } | null)?.IPAMConfig, IPAM, ctx);
  }
}
