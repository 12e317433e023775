// Container commands other than run/create/start: ps, stop, kill, restart, rm, wait, logs,
// rename, prune.

import type { Readable } from "node:stream";
import type {
  ContainerInspect,
  ContainerPruneResponse,
  ContainerSummary,
  WaitResponse,
} from "../api-types.js";
import { clientFor, type ApiClient } from "../client.js";
import { err, out, type CommandContext } from "../context.js";
import { DaemonError, UsageError } from "../errors.js";
import { parseInteger } from "../options.js";
import { parseDurationMs } from "../../shared/units.js";
import { dockerSize } from "../../shared/human.js";

const enc = encodeURIComponent;

/** Run `op` on every target; report each failure like docker and fail at the end. */
export async function forEachTarget(
  targets: string[],
  op: (target: string) => Promise<void>,
): Promise<number> {
  let failed = false;
  for (const target of targets) {
    try {
      await op(target);
    } catch (e) {
      if (!(e instanceof DaemonError)) throw e;
      err(`${e.display}\n`);
      failed = true;
    }
  }
  return failed ? 1 : 0;
}

/** `--filter k=v` (repeated) → the API's `filters` JSON, in the map form the docker CLI sends. */
export function filtersJson(
  filters: string[] | undefined,
  extra: Record<string, string[]> = {},
): string | undefined {
  const map: Record<string, Record<string, boolean>> = {};
  const add = (k: string, v: string): void => {
    (map[k] ??= {})[v] = true;
  };
  for (const f of filters ?? []) {
    const eq = f.indexOf("=");
    if (eq <= 0) throw new UsageError(`bad format of filter "${f}" (expected name=value)`);
    add(f.slice(0, eq).trim().toLowerCase(), f.slice(eq + 1));
  }
  for (const [k, vs] of Object.entries(extra)) for (const v of vs) add(k, v);
  return Object.keys(map).length > 0 ? JSON.stringify(map) : undefined;
}

export interface PsFlags {
  all?: boolean;
  quiet?: boolean;
  last?: string;
  latest?: boolean;
  filter?: string[];
  format?: string;
  /** commander's spelling of --no-trunc. */
  trunc?: boolean;
  json?: boolean;
  size?: boolean;
}

export async function ps(ctx: CommandContext<PsFlags>): Promise<number> {
  const f = ctx.flags;
  const noTrunc = f.trunc === false;
  let limit = f.last !== undefined ? parseInteger(f.last, "--last") : -1;
  if (f.latest) limit = 1;
  const list = await clientFor(ctx.host).json<ContainerSummary[]>("GET", "/containers/json", {
    query: {
      all: f.all || limit > 0 ? 1 : undefined,
      limit: limit > 0 ? limit : undefined,
      size: f.size ? 1 : undefined,
      filters: filtersJson(f.filter),
    },
  });
  const containers = [...(list ?? [])].sort((a, b) => b.Created - a.Created);
  if (f.json) {
    out(`${JSON.stringify(containers, null, 2)}\n`);
    return 0;
  }
  const { containerContext, containerHeaders, DEFAULT_PS_FORMAT } = await import("../format/contexts.js");
  const { renderList } = await import("../format/table.js");
  let format = f.format;
  if (f.quiet) format = "{{.ID}}";
  else if (!format && f.size) format = `${DEFAULT_PS_FORMAT}\t{{.Size}}`;
  const now = Date.now();
  const rows = containers.map((c) => containerContext(c, { trunc: !noTrunc, now }));
  out(renderList(rows, format, { defaultFormat: DEFAULT_PS_FORMAT, headers: containerHeaders }));
  return 0;
}

export interface StopFlags {
  time?: string;
  signal?: string;
}

export async function stop(ctx: CommandContext<StopFlags>): Promise<number> {
  const [names] = ctx.args as [string[]];
  const t = ctx.flags.time !== undefined ? parseInteger(ctx.flags.time, "--time") : undefined;
  const client = clientFor(ctx.host);
  return forEachTarget(names, async (name) => {
    await client.call("POST", `/containers/${enc(name)}/stop`, { query: { t, signal: ctx.flags.signal } });
    out(`${name}\n`);
  });
}

export async function restart(ctx: CommandContext<StopFlags>): Promise<number> {
  const [names] = ctx.args as [string[]];
  const t = ctx.flags.time !== undefined ? parseInteger(ctx.flags.time, "--time") : undefined;
  const client = clientFor(ctx.host);
  return forEachTarget(names, async (name) => {
    await client.call("POST", `/containers/${enc(name)}/restart`, { query: { t, signal: ctx.flags.signal } });
    out(`${name}\n`);
  });
}

export async function kill(ctx: CommandContext<{ signal?: string }>): Promise<number> {
  const [names] = ctx.args as [string[]];
  const client = clientFor(ctx.host);
  return forEachTarget(names, async (name) => {
    await client.call("POST", `/containers/${enc(name)}/kill`, { query: { signal: ctx.flags.signal } });
    out(`${name}\n`);
  });
}

export async function rm(ctx: CommandContext<{ force?: boolean; volumes?: boolean }>): Promise<number> {
  const [names] = ctx.args as [string[]];
  const client = clientFor(ctx.host);
  return forEachTarget(names, async (name) => {
    await client.call("DELETE", `/containers/${enc(name)}`, {
      query: { force: ctx.flags.force ? 1 : undefined, v: ctx.flags.volumes ? 1 : undefined },
    });
    out(`${name}\n`);
  });
}

export async function wait(ctx: CommandContext): Promise<number> {
  const [names] = ctx.args as [string[]];
  const client = clientFor(ctx.host);
  return forEachTarget(names, async (name) => {
    const r = await client.json<WaitResponse>("POST", `/containers/${enc(name)}/wait`);
    if (r.Error?.Message) throw new DaemonError(500, r.Error.Message);
    out(`${r.StatusCode}\n`);
  });
}

export async function rename(ctx: CommandContext): Promise<number> {
  const [from, to] = ctx.args as [string, string];
  if (!to.trim()) throw new UsageError("Error: Neither old nor new names may be empty");
  await clientFor(ctx.host).call("POST", `/containers/${enc(from)}/rename`, { query: { name: to } });
  return 0;
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

export interface LogsFlags {
  follow?: boolean;
  tail?: string;
  since?: string;
  until?: string;
  timestamps?: boolean;
  details?: boolean;
}

async function isTty(client: ApiClient, name: string): Promise<boolean> {
  const c = await client.json<ContainerInspect>("GET", `/containers/${enc(name)}/json`);
  return c.Config.Tty;
}

export async function logs(ctx: CommandContext<LogsFlags>): Promise<number> {
  const [name] = ctx.args as [string];
  const f = ctx.flags;
  const tail = f.tail === undefined || f.tail === "all" ? undefined : String(parseInteger(f.tail, "--tail"));
  const client = clientFor(ctx.host);
  const res = await client.stream("GET", `/containers/${enc(name)}/logs`, {
    query: {
      stdout: 1,
      stderr: 1,
      follow: f.follow ? 1 : undefined,
      tail,
      since: f.since !== undefined ? apiTimestamp(f.since, "--since") : undefined,
      until: f.until !== undefined ? apiTimestamp(f.until, "--until") : undefined,
      timestamps: f.timestamps ? 1 : undefined,
      details: f.details ? 1 : undefined,
    },
  });
  // API ≥ 1.42 names the framing in Content-Type; otherwise ask the container, as docker does.
  const type = String(res.headers["content-type"] ?? "");
  const raw = type.includes("raw-stream")
    ? true
    : type.includes("multiplexed-stream")
      ? false
      : await isTty(client, name);
  const { copyRaw, demuxTo } = await import("../stdcopy.js");
  if (raw) await copyRaw(res as Readable, process.stdout);
  else await demuxTo(res as Readable, process.stdout, process.stderr);
  return 0;
}

/** Ask before deleting, like docker; anything but y/yes declines. */
export async function confirm(question: string): Promise<boolean> {
  const { createInterface } = await import("node:readline/promises");
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await rl.question(`${question}\nAre you sure you want to continue? [y/N] `);
    return /^(y|yes)$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

export async function prune(ctx: CommandContext<{ force?: boolean; filter?: string[] }>): Promise<number> {
  if (!ctx.flags.force && !(await confirm("WARNING! This will remove all stopped containers."))) return 0;
  const r = await clientFor(ctx.host).json<ContainerPruneResponse>("POST", "/containers/prune", {
    query: { filters: filtersJson(ctx.flags.filter) },
  });
  const deleted = r.ContainersDeleted ?? [];
  if (deleted.length > 0) out(`Deleted Containers:\n${deleted.join("\n")}\n\n`);
  out(`Total reclaimed space: ${dockerSize(r.SpaceReclaimed ?? 0, 4)}\n`);
  return 0;
}
