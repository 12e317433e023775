import { invalid } from "../../../shared/errors.js";
import type { ImageRuntimeConfig } from "../image/types.js";
import type { CreateContainerRequest } from "./api.js";
import type { ContainerConfig } from "./types.js";
import type { HostConfig } from "../../../shared/engine-api.js";
import { limitFields } from "./limit-fields.js";
import { mergeHealthcheck } from "./health-config.js";
import { hostConfigExtras } from "./hostcfg-fields.js";

const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Environment as Docker builds it: the image's, then the user's, a later key replacing an earlier one. */
function mergeEnv(imageEnv: string[], userEnv: string[]): string[] {
  const out = new Map<string, string>();
  for (const e of [...imageEnv, ...userEnv]) {
    const key = e.includes("=") ? e.slice(0, e.indexOf("=")) : e;
    out.delete(key);
    out.set(key, e);
  }
  if (![...out.keys()].includes("PATH")) out.set("PATH", DEFAULT_PATH);
  return [...out.values()];
}

const isSet = (v: string[] | null | undefined): v is string[] => Array.isArray(v) && v.length > 0;

/** The container Config from the request and the image's config, with Docker's precedence rules. */
export function mergeConfig(
  id: string,
  req: CreateContainerRequest["config"],
  image: ImageRuntimeConfig,
): ContainerConfig {
  const userEntrypoint = isSet(req.Entrypoint) ? req.Entrypoint : null;
  // An entrypoint given by the user drops the image's Cmd (Docker's rule); an empty-string
  // entrypoint (`--entrypoint ""`) clears the image's entrypoint.
  const clearsEntrypoint =
    Array.isArray(req.Entrypoint) && req.Entrypoint.length === 1 && req.Entrypoint[0] === "";
  const entrypoint = clearsEntrypoint
    ? null
    : (userEntrypoint ?? (isSet(image.Entrypoint) ? image.Entrypoint : null));
  const cmd = isSet(req.Cmd)
    ? req.Cmd
    : userEntrypoint || clearsEntrypoint
      ? null
      : isSet(image.Cmd)
        ? image.Cmd
        : null;
  return {
    Hostname: req.Hostname || id.slice(0, 12),
    Domainname: req.Domainname ?? "",
    User: req.User || image.User || "",
    Env: mergeEnv(image.Env ?? [], req.Env ?? []),
    Cmd: cmd,
    Entrypoint: entrypoint,
    Image: req.Image,
    WorkingDir: req.WorkingDir || image.WorkingDir || "",
    Labels: { ...(image.Labels ?? {}), ...(req.Labels ?? {}) },
    Tty: req.Tty ?? false,
    OpenStdin: req.OpenStdin ?? false,
    StdinOnce: req.StdinOnce ?? false,
    AttachStdin: req.AttachStdin ?? false,
    AttachStdout: req.AttachStdout ?? false,
    AttachStderr: req.AttachStderr ?? false,
    StopSignal: req.StopSignal || image.StopSignal || undefined,
    StopTimeout: req.StopTimeout,
    ExposedPorts: { ...(image.ExposedPorts ?? {}), ...(req.ExposedPorts ?? {}) },
    Volumes: image.Volumes || req.Volumes ? { ...(image.Volumes ?? {}), ...(req.Volumes ?? {}) } : null,
    ...healthcheckField(mergeHealthcheck(req.Healthcheck, image.Healthcheck)),
    ...(req.MacAddress ? { MacAddress: req.MacAddress } : {}),
  };
}

const healthcheckField = (h: ContainerConfig["Healthcheck"]) => (h ? { Healthcheck: h } : {});

/** Path and Args as inspect shows them: the first word of entrypoint+cmd, then the rest. */
export function pathAndArgs(config: ContainerConfig): { Path: string; Args: string[] } {
  const argv = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
  if (argv.length === 0)
    throw invalid(
      "no command specified: give a command after the image name or use an image with CMD or ENTRYPOINT",
    );
  return { Path: argv[0], Args: argv.slice(1) };
}

/** [height, width], both whole and 0–1000 (conmon's limits); the docker CLI sends [0, 0] off a terminal. */
export function validConsoleSize(v: unknown): v is [number, number] {
  return (
    Array.isArray(v) &&
    v.length === 2 &&
    v.every((n) => Number.isInteger(n) && n >= 0 && n <= 1000) &&
    (v[0] as number) > 0 &&
    (v[1] as number) > 0
  );
}

/** ConsoleSize kept when it names a size; [0, 0] and null mean none; anything else is refused. */
function consoleSizeField(v: unknown): { ConsoleSize?: [number, number] } {
  if (validConsoleSize(v)) return { ConsoleSize: v };
  if (v === undefined || v === null || (Array.isArray(v) && v.length === 2 && v[0] === 0 && v[1] === 0))
    return {};
  throw invalid(
    `invalid HostConfig.ConsoleSize ${JSON.stringify(v)}: give [height, width], whole numbers from 1 to 1000`,
  );
}

export function defaultHostConfig(h: Partial<HostConfig>): HostConfig {
  return {
    AutoRemove: h.AutoRemove ?? false,
    ReadonlyRootfs: h.ReadonlyRootfs ?? false,
    Privileged: h.Privileged ?? false,
    CapAdd: h.CapAdd ?? null,
    CapDrop: h.CapDrop ?? null,
    Memory: h.Memory ?? 0,
    MemorySwap: h.MemorySwap ?? 0,
    NanoCpus: h.NanoCpus ?? 0,
    CpuShares: h.CpuShares ?? 0,
    // Docker reads -1 as "unlimited" too; keep one spelling.
    PidsLimit: h.PidsLimit === -1 ? 0 : (h.PidsLimit ?? null),
    Init: h.Init ?? null,
    Ulimits: h.Ulimits ?? null,
    NetworkMode: h.NetworkMode || "default",
    RestartPolicy: {
      Name: h.RestartPolicy?.Name || "no",
      MaximumRetryCount: h.RestartPolicy?.MaximumRetryCount ?? 0,
    },
    LogConfig: { Type: h.LogConfig?.Type || "json-file", Config: h.LogConfig?.Config ?? {} },
    ShmSize: h.ShmSize,
    Binds: h.Binds ?? null,
    Mounts: h.Mounts ?? null,
    Tmpfs: h.Tmpfs ?? null,
    PortBindings: h.PortBindings ?? {},
    PublishAllPorts: h.PublishAllPorts ?? false,
    Dns: h.Dns ?? [],
    DnsSearch: h.DnsSearch ?? [],
    DnsOptions: h.DnsOptions ?? [],
    ExtraHosts: h.ExtraHosts ?? null,
    ...consoleSizeField(h.ConsoleSize),
    ...limitFields(h),
    ...hostConfigExtras(h),
  };
}
