// Flag parsing for run/create and the mapping onto the Engine API's create body. Pure
// functions (files are read by the caller) so that tests can pin the mapping down.

import { parseBytes, parseNanoCpus } from "../shared/units.js";
import { UsageError } from "./errors.js";
import { RLIMIT_NAMES } from "../shared/rlimits.js";

export function parseInteger(value: string, flag: string): number {
  if (!/^-?\d+$/.test(value.trim()))
    throw new UsageError(`invalid value "${value}" for ${flag}: use a whole number`);
  return Number(value.trim());
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

export interface UlimitSpec {
  Name: string;
  Soft: number;
  Hard: number;
}

/** `nofile=1024` or `nofile=1024:2048`, as `ulimit` names them without the RLIMIT_ prefix. */
export function parseUlimit(value: string): UlimitSpec {
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

export interface RestartPolicy {
  Name: string;
  MaximumRetryCount: number;
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
export interface RunFlags {
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
  network?: string;
  /** docker's older spelling of --network. */
  net?: string;
  interactive?: boolean;
  tty?: boolean;
}

export interface CreateInput {
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
  HostConfig: {
    AutoRemove: boolean;
    ReadonlyRootfs: boolean;
    Privileged: boolean;
    CapAdd: string[] | null;
    CapDrop: string[] | null;
    Memory: number;
    MemorySwap: number;
    NanoCpus: number;
    CpuShares: number;
    PidsLimit: number | null;
    Init: boolean | null;
    RestartPolicy: RestartPolicy;
    Ulimits: UlimitSpec[] | null;
    NetworkMode: string;
  };
}

export const INTERACTIVE_UNSUPPORTED =
  "interactive mode (-i/-t) is not supported yet: run with -d and use `shoal logs -f`";

/** Map run/create flags onto `POST /containers/create`'s body. Throws UsageError on bad flags. */
export function buildCreateBody(input: CreateInput): CreateBody {
  const f = input.flags;
  const lookup = input.lookupEnv ?? ((k: string) => process.env[k]);
  if (f.interactive || f.tty) throw new UsageError(INTERACTIVE_UNSUPPORTED);

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

  const attach = input.attach ?? !f.detach;
  const body: CreateBody = {
    Hostname: hostname,
    Domainname: domainname,
    User: f.user ?? "",
    AttachStdin: false,
    AttachStdout: attach,
    AttachStderr: attach,
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
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
      Ulimits: f.ulimit && f.ulimit.length > 0 ? f.ulimit.map(parseUlimit) : null,
      NetworkMode: f.network ?? f.net ?? "default",
    },
  };
  if (f.stopSignal !== undefined) body.StopSignal = f.stopSignal;
  if (f.stopTimeout !== undefined) body.StopTimeout = parseInteger(f.stopTimeout, "--stop-timeout");
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
