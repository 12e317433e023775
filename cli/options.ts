// Flag values parsed for the commands (numbers, labels, timestamps), the run/create flags and
// their mapping onto the Engine API's create body. Pure functions (files are read by the
// caller) so that tests can pin the mapping down; handlers import this module when they run.

import { parseBytes, parseDurationMs, parseNanoCpus } from "../shared/units.js";
import { resourceHostConfig, type ResourceFlags } from "./resource-flags.js";
import { UsageError } from "./errors.js";
import { storageFields } from "./mount-options.js";
import type { HostConfig, PortBinding, RestartPolicy, Ulimit } from "../shared/engine-api.js";
import { RLIMIT_NAMES } from "../shared/rlimits.js";
import { healthcheckFromFlags, type HealthcheckBody, type HealthFlags } from "./health-options.js";

export function parseInteger(value: string, flag: string): number {
  if (!/^-?\d+$/.test(value.trim()))
    throw new UsageError(`invalid value "${value}" for ${flag}: use a whole number`);
  return Number(value.trim());
}

/**
 * Docker's GetTimestamp: a Unix time ("1700000000.5"), an RFC 3339 date, or a duration
 * ("10m") meaning that long before now. Returns the API's "seconds[.nanoseconds]" form.
 */
export function apiTimestamp(value: string, flag: string, nowMs: number = Date.now()): string {
  const v = value.trim();
  if (/^\d+(\.\d{1,9})?$/.test(v)) return v;
  if (/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(v)) {
    return secondsString(nowMs - parseDurationMs(v, flag));
  }
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  if (Number.isNaN(t)) {
    throw new UsageError(
      `invalid value "${value}" for ${flag}: use a Unix timestamp, an RFC 3339 date or a duration such as 10m`,
    );
  }
  // Date.parse keeps milliseconds only; nanoseconds written by the user are kept as text.
  const frac = /\.(\d{4,9})(?:Z|[+-]\d{2}:?\d{2})?$/.exec(v);
  if (frac) return `${Math.floor(t / 1000)}.${frac[1].padEnd(9, "0")}`;
  return secondsString(t);
}

function secondsString(ms: number): string {
  const whole = Math.floor(ms / 1000);
  const nanos = Math.round((ms - whole * 1000) * 1e6);
  return `${whole}.${String(nanos).padStart(9, "0")}`;
}

/**
 * Docker's env-file format: one VAR=VALUE per line, taken literally (no quotes, no trimming of
 * the value); `#` starts a comment line; a bare VAR takes its value from `lookup` and is
 * dropped when unset there.
 */
export function parseEnvFile(
  text: string,
  path: string,
  lookup: (key: string) => string | undefined,
): string[] {
  const out: string[] = [];
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.replace(/^\s+/, "");
    if (line === "" || line.startsWith("#")) return;
    const eq = line.indexOf("=");
    const variable = eq < 0 ? line : line.slice(0, eq);
    if (variable === "")
      throw new UsageError(`invalid env file ${path} line ${i + 1}: no variable name on line '${line}'`);
    if (/\s/.test(variable)) {
      throw new UsageError(
        `invalid env file ${path} line ${i + 1}: variable '${variable}' contains whitespaces`,
      );
    }
    if (eq >= 0) {
      out.push(line);
    } else {
      const value = lookup(variable);
      if (value !== undefined) out.push(`${variable}=${value}`);
    }
  });
  return out;
}

/** `-e VAR=value` as is; `-e VAR` takes VAR from the CLI's environment when set there. */
export function parseEnvFlag(value: string, lookup: (key: string) => string | undefined): string {
  const eq = value.indexOf("=");
  const key = eq < 0 ? value : value.slice(0, eq);
  if (key === "") throw new UsageError(`invalid environment variable: ${value}`);
  if (eq >= 0) return value;
  const found = lookup(key);
  return found === undefined ? value : `${key}=${found}`;
}

/** `-l k=v` → {k: "v"}; `-l k` → {k: ""}. Later labels override earlier ones. */
export function parseLabels(values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    const key = eq < 0 ? v : v.slice(0, eq);
    if (key === "") throw new UsageError(`invalid label "${v}": the key is empty (use --label key=value)`);
    labels[key] = eq < 0 ? "" : v.slice(eq + 1);
  }
  return labels;
}

/** Label files share the env-file syntax; like docker, a bare key with no `=` is skipped. */
export function parseLabelFile(text: string, path: string): string[] {
  return parseEnvFile(text, path, () => undefined);
}

/** `nofile=1024` or `nofile=1024:2048`, as `ulimit` names them without the RLIMIT_ prefix. */
export function parseUlimit(value: string): Ulimit {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(value.trim());
  if (!m)
    throw new UsageError(
      `invalid value "${value}" for --ulimit: use name=soft[:hard], for example nofile=1024:2048`,
    );
  const name = m[1];
  if (!RLIMIT_NAMES.has(name)) {
    throw new UsageError(
      `invalid ulimit name "${name}" for --ulimit: use one of ${[...RLIMIT_NAMES].join(", ")}`,
    );
  }
  const soft = Number(m[2]);
  const hard = m[3] === undefined ? soft : Number(m[3]);
  if (hard !== -1 && soft > hard) {
    throw new UsageError(
      `invalid value "${value}" for --ulimit: the soft limit ${soft} is above the hard limit ${hard}`,
    );
  }
  return { Name: name, Soft: soft, Hard: hard };
}

export function parseRestart(value: string): RestartPolicy {
  const [name, count, ...rest] = value.split(":");
  const known = ["no", "always", "unless-stopped", "on-failure"];
  if (rest.length > 0 || !known.includes(name)) {
    throw new UsageError(
      `invalid restart policy "${value}" for --restart: use no, always, unless-stopped or on-failure[:max-retries]`,
    );
  }
  if (count === undefined) return { Name: name, MaximumRetryCount: 0 };
  if (name !== "on-failure") {
    throw new UsageError(
      `invalid restart policy "${value}" for --restart: a maximum retry count only goes with on-failure`,
    );
  }
  const n = parseInteger(count, "--restart");
  if (n < 0)
    throw new UsageError(
      `invalid restart policy "${value}" for --restart: the retry count cannot be negative`,
    );
  return { Name: name, MaximumRetryCount: n };
}

/** The run/create flags as commander hands them over. */
export interface RunFlags extends HealthFlags, ResourceFlags {
  detach?: boolean;
  rm?: boolean;
  name?: string;
  env?: string[];
  envFile?: string[];
  workdir?: string;
  user?: string;
  entrypoint?: string;
  hostname?: string;
  label?: string[];
  labelFile?: string[];
  readOnly?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  memory?: string;
  memorySwap?: string;
  cpus?: string;
  cpuShares?: string;
  pidsLimit?: string;
  init?: boolean;
  restart?: string;
  stopSignal?: string;
  stopTimeout?: string;
  ulimit?: string[];
  /** Repeatable: the first is the network mode, the others are joined as well. */
  network?: string[];
  /** docker's older spelling of --network. */
  net?: string[];
  publish?: string[];
  publishAll?: boolean;
  expose?: string[];
  ip?: string;
  networkAlias?: string[];
  dns?: string[];
  dnsSearch?: string[];
  dnsOption?: string[];
  addHost?: string[];
  /** -v/--volume, --mount, --tmpfs (cli/mount-options.ts). */
  volume?: string[];
  mount?: string[];
  tmpfs?: string[];
  interactive?: boolean;
  tty?: boolean;
  detachKeys?: string;
}

interface CreateInput {
  image: string;
  command: string[];
  flags: RunFlags;
  /** Contents of the --env-file files, in flag order. */
  envFiles?: { path: string; text: string }[];
  labelFiles?: { path: string; text: string }[];
  /** Where bare `-e VAR` takes its value; the CLI's environment. */
  lookupEnv?: (key: string) => string | undefined;
  /** Whether the caller will attach to stdout/stderr (run without -d). */
  attach?: boolean;
}

export interface CreateBody {
  Hostname: string;
  Domainname: string;
  User: string;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  Tty: boolean;
  OpenStdin: boolean;
  StdinOnce: boolean;
  Env: string[];
  Cmd: string[] | null;
  Image: string;
  WorkingDir: string;
  Entrypoint: string[] | null;
  Labels: Record<string, string>;
  StopSignal?: string;
  StopTimeout?: number;
  Healthcheck?: HealthcheckBody;
  HostConfig: HostConfig;

  ExposedPorts?: Record<string, object>;
  /** Anonymous volumes (`-v /path`), as the docker CLI sends them. */
  Volumes?: Record<string, object>;
  NetworkingConfig: { EndpointsConfig: Record<string, EndpointConfigSpec> };
}

interface EndpointConfigSpec {
  Aliases?: string[];
  IPAMConfig?: { IPv4Address: string };
}

function splitRange(text: string, what: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  const first = m ? Number(m[1]) : NaN;
  const last = m?.[2] !== undefined ? Number(m[2]) : first;
  if (!m || first < 1 || last > 65535 || last < first)
    throw new UsageError(`invalid ${what} "${text}": use a port from 1 to 65535 or a range FIRST-LAST`);
  return [first, last];
}

/**
 * `-p [ip:][hostPort:]containerPort[/proto]` as the docker CLI reads it: ranges map pairwise,
 * a host range for one container port means "any free port of the range".
 */
export function parsePublish(value: string): Array<{ key: string; binding: PortBinding }> {
  let rest = value;
  let proto = "tcp";
  const slash = rest.lastIndexOf("/");
  if (slash >= 0) {
    proto = rest.slice(slash + 1).toLowerCase();
    rest = rest.slice(0, slash);
  }
  if (proto !== "tcp" && proto !== "udp")
    throw new UsageError(`invalid protocol "${proto}" in -p ${value}: use tcp or udp`);
  const parts = rest.split(":");
  let hostIp = "";
  let hostPart = "";
  let containerPart: string;
  if (parts.length === 1) [containerPart] = parts;
  else if (parts.length === 2) [hostPart, containerPart] = parts;
  else if (parts.length === 3) [hostIp, hostPart, containerPart] = parts;
  else throw new UsageError(`invalid -p ${value}: use [ip:][hostPort:]containerPort[/protocol]`);
  if (hostIp !== "" && !/^\d{1,3}(\.\d{1,3}){3}$/.test(hostIp))
    throw new UsageError(`invalid host address "${hostIp}" in -p ${value}: use an IPv4 address`);
  const [cFirst, cLast] = splitRange(containerPart, "container port");
  const host = hostPart === "" ? undefined : splitRange(hostPart, "host port");
  const count = cLast - cFirst + 1;
  if (host && count > 1 && host[1] - host[0] + 1 !== count)
    throw new UsageError(`invalid -p ${value}: the host and container port ranges differ in length`);
  const out: Array<{ key: string; binding: PortBinding }> = [];
  for (let i = 0; i < count; i++) {
    let hostPort = "";
    if (host)
      hostPort =
        count > 1 ? String(host[0] + i) : host[0] === host[1] ? String(host[0]) : `${host[0]}-${host[1]}`;
    out.push({ key: `${cFirst + i}/${proto}`, binding: { HostIp: hostIp, HostPort: hostPort } });
  }
  return out;
}

/** `--expose 80`, `--expose 8000-8010/udp`. */
export function parseExpose(value: string): string[] {
  const [ports, proto = "tcp"] = value.split("/");
  const [first, last] = splitRange(ports, "--expose port");
  const keys: string[] = [];
  for (let p = first; p <= last; p++) keys.push(`${p}/${proto}`);
  return keys;
}

/** Map run/create flags onto `POST /containers/create`'s body. Throws UsageError on bad flags. */
export function buildCreateBody(input: CreateInput): CreateBody {
  const f = input.flags;
  const lookup = input.lookupEnv ?? ((k: string) => process.env[k]);
  const env: string[] = [];
  for (const file of input.envFiles ?? []) env.push(...parseEnvFile(file.text, file.path, lookup));
  for (const e of f.env ?? []) env.push(parseEnvFlag(e, lookup));

  const labelStrings: string[] = [];
  for (const file of input.labelFiles ?? []) labelStrings.push(...parseLabelFile(file.text, file.path));
  labelStrings.push(...(f.label ?? []));

  const restart = parseRestart(f.restart ?? "no");
  if (f.rm && restart.Name !== "no") {
    throw new UsageError("conflicting options: cannot specify both --restart and --rm");
  }

  // Docker splits `-h web.example.com` into a hostname and a domain name.
  let hostname = f.hostname ?? "";
  let domainname = "";
  const dot = hostname.indexOf(".");
  if (dot > 0) {
    domainname = hostname.slice(dot + 1);
    hostname = hostname.slice(0, dot);
  }

  let memorySwap = 0;
  if (f.memorySwap !== undefined)
    memorySwap = f.memorySwap.trim() === "-1" ? -1 : bytes(f.memorySwap, "--memory-swap");

  const bindings: Record<string, PortBinding[]> = {};
  const exposed: Record<string, object> = {};
  for (const p of f.publish ?? []) {
    for (const { key, binding } of parsePublish(p)) {
      (bindings[key] ??= []).push(binding);
      exposed[key] = {};
    }
  }
  for (const e of f.expose ?? []) for (const key of parseExpose(e)) exposed[key] = {};
  const networks = [...(f.network ?? []), ...(f.net ?? [])];
  const endpoints: Record<string, EndpointConfigSpec> = {};
  networks.forEach((n, i) => {
    const ep: EndpointConfigSpec = {};
    if (i === 0 && f.networkAlias?.length) ep.Aliases = [...f.networkAlias];
    if (i === 0 && f.ip) ep.IPAMConfig = { IPv4Address: f.ip };
    const builtin = ["default", "bridge", "host", "none"].includes(n) || n.startsWith("container:");
    if (!builtin || Object.keys(ep).length > 0) endpoints[n] = ep;
  });
  if (networks.length === 0 && (f.ip || f.networkAlias?.length))
    throw new UsageError("--ip and --network-alias need --network NAME (a user-defined network)");

  const attach = input.attach ?? !f.detach;
  const body: CreateBody = {
    Hostname: hostname,
    Domainname: domainname,
    User: f.user ?? "",
    // As the docker CLI: -i opens stdin; unless detached (run -d), it is the first client's
    // once (StdinOnce), so `create -i` then `start -ai` ends the input with the pipe's end.
    AttachStdin: !f.detach && Boolean(f.interactive),
    AttachStdout: attach,
    AttachStderr: attach,
    Tty: Boolean(f.tty),
    OpenStdin: Boolean(f.interactive),
    StdinOnce: !f.detach && Boolean(f.interactive),
    Env: env,
    Cmd: input.command.length > 0 ? [...input.command] : null,
    Image: input.image,
    WorkingDir: f.workdir ?? "",
    // `--entrypoint ""` clears the image's entrypoint, which the API spells [""].
    Entrypoint: f.entrypoint !== undefined ? [f.entrypoint] : null,
    Labels: parseLabels(labelStrings),
    HostConfig: {
      AutoRemove: Boolean(f.rm),
      ReadonlyRootfs: Boolean(f.readOnly),
      Privileged: Boolean(f.privileged),
      CapAdd: f.capAdd && f.capAdd.length > 0 ? [...f.capAdd] : null,
      CapDrop: f.capDrop && f.capDrop.length > 0 ? [...f.capDrop] : null,
      Memory: f.memory !== undefined ? bytes(f.memory, "--memory") : 0,
      MemorySwap: memorySwap,
      NanoCpus: f.cpus !== undefined ? nanoCpus(f.cpus) : 0,
      CpuShares: f.cpuShares !== undefined ? parseInteger(f.cpuShares, "--cpu-shares") : 0,
      PidsLimit: f.pidsLimit !== undefined ? parseInteger(f.pidsLimit, "--pids-limit") : null,
      Init: f.init ? true : null,
      RestartPolicy: restart,
      // As the docker CLI sends it: the daemon's default log driver.
      LogConfig: { Type: "", Config: {} },
      Ulimits: f.ulimit && f.ulimit.length > 0 ? f.ulimit.map(parseUlimit) : null,
      NetworkMode: networks[0] ?? "default",
      PortBindings: bindings,
      PublishAllPorts: Boolean(f.publishAll),
      Dns: f.dns?.length ? [...f.dns] : null,
      DnsSearch: f.dnsSearch?.length ? [...f.dnsSearch] : null,
      DnsOptions: f.dnsOption?.length ? [...f.dnsOption] : null,
      ExtraHosts: f.addHost?.length ? [...f.addHost] : null,
      ...resourceHostConfig(f),
    },
    NetworkingConfig: { EndpointsConfig: endpoints },
  };
  if (Object.keys(exposed).length > 0) body.ExposedPorts = exposed;
  if (f.stopSignal !== undefined) body.StopSignal = f.stopSignal;
  const storage = storageFields(f);
  if (storage.Volumes) body.Volumes = storage.Volumes;
  if (storage.Binds) body.HostConfig.Binds = storage.Binds;
  if (storage.Mounts) body.HostConfig.Mounts = storage.Mounts;
  if (storage.Tmpfs) body.HostConfig.Tmpfs = storage.Tmpfs;
  if (f.stopTimeout !== undefined) body.StopTimeout = parseInteger(f.stopTimeout, "--stop-timeout");
  const health = healthcheckFromFlags(f);
  if (health) body.Healthcheck = health;
  return body;
}

// shared/units throws ShoalError; the CLI reports bad flags as usage errors (exit 125).
function bytes(value: string, flag: string): number {
  try {
    return parseBytes(value, flag);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function nanoCpus(value: string): number {
  try {
    return parseNanoCpus(value, "--cpus");
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
