// Every Config, HostConfig and endpoint field the docker CLI sends that shoal does not act on.
// A create that gives one of them a value other than its default is refused with the flag's
// name: accepting `--security-opt no-new-privileges` or `--device` and ignoring it would run a
// container weaker (or different) than asked. When a field gets implemented, its row goes.
import { invalid } from "../../../shared/errors.js";
import { parseSecurityOpts } from "./security-opts.js";

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

const oneOf =
  (...values: unknown[]): Check =>
  (v) =>
    unset(v) || values.includes(v);

const HOST_CONFIG: Unsupported[] = [
  { field: "VolumeDriver", flag: "--volume-driver", ok: oneOf("local") },
  {
    field: "CgroupnsMode",
    flag: "--cgroupns",
    ok: (v, c) => unset(v) || v === (c.cgroupV2 ? "private" : "host"),
  },
  { field: "Cgroup", flag: "--cgroup" },
  // No remapping in shoal: "host" is what every container gets.
  { field: "UsernsMode", flag: "--userns", ok: oneOf("host") },
  { field: "Isolation", flag: "--isolation", ok: oneOf("default") },
  {
    field: "CgroupParent",
    flag: "--cgroup-parent",
    hint: "shoald's --cgroup-parent sets it for every container",
  },
  { field: "BlkioWeight", flag: "--blkio-weight" },
  { field: "BlkioWeightDevice", flag: "--blkio-weight-device" },
  { field: "BlkioDeviceReadBps", flag: "--device-read-bps" },
  { field: "BlkioDeviceWriteBps", flag: "--device-write-bps" },
  { field: "BlkioDeviceReadIOps", flag: "--device-read-iops" },
  { field: "BlkioDeviceWriteIOps", flag: "--device-write-iops" },
  { field: "CpuPeriod", flag: "--cpu-period", hint: "use --cpus" },
  { field: "CpuQuota", flag: "--cpu-quota", hint: "use --cpus" },
  { field: "CpuRealtimePeriod", flag: "--cpu-rt-period" },
  { field: "CpuRealtimeRuntime", flag: "--cpu-rt-runtime" },
  { field: "CpusetCpus", flag: "--cpuset-cpus" },
  { field: "CpusetMems", flag: "--cpuset-mems" },
  { field: "CpuCount", flag: "--cpu-count" },
  { field: "CpuPercent", flag: "--cpu-percent" },
  { field: "IOMaximumIOps", flag: "--io-maxiops" },
  { field: "IOMaximumBandwidth", flag: "--io-maxbandwidth" },
  { field: "DeviceRequests", flag: "--gpus" },
  { field: "MemoryReservation", flag: "--memory-reservation" },
  // 0 is a real setting here (never swap): only absent or -1 means "the kernel's default".
  {
    field: "MemorySwappiness",
    flag: "--memory-swappiness",
    ok: (v) => v === undefined || v === null || v === -1,
  },
  { field: "KernelMemory", flag: "--kernel-memory" },
  { field: "KernelMemoryTCP", flag: "--kernel-memory-tcp" },
  { field: "OomKillDisable", flag: "--oom-kill-disable" },
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
  { field: "NetworkDisabled", flag: "--network none", hint: "use --network none" },
];

const ENDPOINT: Unsupported[] = [
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
    // --security-opt is read (and what shoal cannot do refused) by security-opts.ts.
    parseSecurityOpts((hostConfig as Record<string, unknown>).SecurityOpt);
    checkFields(hostConfig, HOST_CONFIG, ctx);
  }
  const endpoints = (networkingConfig as { EndpointsConfig?: unknown } | null | undefined)?.EndpointsConfig;
  if (endpoints === null || typeof endpoints !== "object") return;
  for (const ep of Object.values(endpoints as Record<string, unknown>)) {
    checkFields(ep, ENDPOINT, ctx);
    checkFields((ep as { IPAMConfig?: unknown } | null)?.IPAMConfig, IPAM, ctx);
  }
}
