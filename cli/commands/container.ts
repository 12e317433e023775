// Container commands: run, create and start (run.ts), stop, restart, kill, rm, ps, wait,
// logs, rename; under `shoal container` also inspect and prune. Declared at top level
// (`shoal ps`) and under `shoal container` (`container ls`).

import type { Readable } from "node:stream";
import type { Command } from "commander";
import type {
  ContainerInspect,
  ContainerPruneResponse,
  ContainerSummary,
  WaitResponse,
} from "../api-types.js";
import type { ApiClient } from "../client.js";
import {
  act,
  add,
  collect,
  apiClient,
  filtersJson,
  forEachTarget,
  out,
  type CommandContext,
} from "../command.js";
import { DaemonError, UsageError } from "../errors.js";
import { inspectSubcommand } from "./inspect.js";
import { deletedList, prune, type PruneFlags } from "./prune.js";
import { runCommands } from "./run.js";
import { execCommand } from "./exec.js";

const enc = encodeURIComponent;

export function containerCommands(parent: Command, grouped: boolean): void {
  runCommands(parent);
  execCommand(add(parent, "exec"));

  add(parent, "stop")
    ?.description("Stop one or more running containers")
    .argument("<container...>")
    .option("-t, --time <int>", "Seconds to wait before killing the container")
    .option("-s, --signal <string>", "Signal to send to the container")
    .action(act(stopOrRestart("stop")));

  add(parent, "restart")
    ?.description("Restart one or more containers")
    .argument("<container...>")
    .option("-t, --time <int>", "Seconds to wait before killing the container")
    .option("-s, --signal <string>", "Signal to send to the container")
    .action(act(stopOrRestart("restart")));

  add(parent, "kill")
    ?.description("Kill one or more running containers")
    .argument("<container...>")
    .option("-s, --signal <string>", "Signal to send to the container")
    .action(act(kill));

  const remove = add(parent, "rm")
    ?.description("Remove one or more containers")
    .argument("<container...>")
    .option("-f, --force", "Force the removal of a running container (uses SIGKILL)")
    .option("-v, --volumes", "Remove anonymous volumes associated with the container")
    .action(act(rm));
  if (grouped) remove?.alias("remove");

  const list = add(parent, grouped ? "ls" : "ps", grouped ? ["list", "ps"] : [])
    ?.description("List containers")
    .option("-a, --all", "Show all containers (default shows just running)")
    .option("-q, --quiet", "Only display container IDs")
    .option("-n, --last <int>", "Show n last created containers (includes all states)")
    .option("-l, --latest", "Show the latest created container (includes all states)")
    .option("-f, --filter <filter>", "Filter output based on conditions provided", collect)
    .option(
      "--format <string>",
      "Format output using a custom template ('table', 'table TEMPLATE', 'json', or a Go template)",
    )
    .option("--no-trunc", "Don't truncate output")
    .option("-s, --size", "Display total file sizes")
    .option("--json", "Print the Engine API's JSON")
    .action(act(ps));
  if (grouped) list?.aliases(["list", "ps"]);

  add(parent, "wait")
    ?.description("Block until one or more containers stop, then print their exit codes")
    .argument("<container...>")
    .action(act(wait));

  add(parent, "logs")
    ?.description("Fetch the logs of a container")
    .argument("<container>")
    .option("-f, --follow", "Follow log output")
    .option("-n, --tail <string>", "Number of lines to show from the end of the logs", "all")
    .option(
      "--since <string>",
      "Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)",
    )
    .option("--until <string>", "Show logs before a timestamp or relative time")
    .option("-t, --timestamps", "Show timestamps")
    .option("--details", "Show extra details provided to logs")
    .action(act(logs));

  add(parent, "rename")
    ?.description("Rename a container")
    .argument("<container>")
    .argument("<new-name>")
    .action(act(rename));

  if (grouped) {
    inspectSubcommand(parent, "container");

    add(parent, "prune")
      ?.description("Remove all stopped containers")
      .option("-f, --force", "Do not prompt for confirmation")
      .option("--filter <filter>", "Provide filter values (e.g. 'until=<timestamp>')", collect)
      .action(act(pruneContainers));
  }
}

interface PsFlags {
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

async function ps(ctx: CommandContext<PsFlags>): Promise<number> {
  const f = ctx.flags;
  const noTrunc = f.trunc === false;
  const { parseInteger } = await import("../options.js");
  let limit = f.last !== undefined ? parseInteger(f.last, "--last") : -1;
  if (f.latest) limit = 1;
  const list = await (
    await apiClient(ctx.host)
  ).json<ContainerSummary[]>("GET", "/containers/json", {
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

interface StopFlags {
  time?: string;
  signal?: string;
}

/** stop and restart: the same flags, one request per container. */
function stopOrRestart(action: "stop" | "restart"): (ctx: CommandContext<StopFlags>) => Promise<number> {
  return async (ctx) => {
    const [names] = ctx.args as [string[]];
    const { parseInteger } = await import("../options.js");
    const t = ctx.flags.time !== undefined ? parseInteger(ctx.flags.time, "--time") : undefined;
    const client = await apiClient(ctx.host);
    return forEachTarget(names, async (name) => {
      await client.call("POST", `/containers/${enc(name)}/${action}`, {
        query: { t, signal: ctx.flags.signal },
      });
      out(`${name}\n`);
    });
  };
}

async function kill(ctx: CommandContext<{ signal?: string }>): Promise<number> {
  const [names] = ctx.args as [string[]];
  const client = await apiClient(ctx.host);
  return forEachTarget(names, async (name) => {
    await client.call("POST", `/containers/${enc(name)}/kill`, { query: { signal: ctx.flags.signal } });
    out(`${name}\n`);
  });
}

async function rm(ctx: CommandContext<{ force?: boolean; volumes?: boolean }>): Promise<number> {
  const [names] = ctx.args as [string[]];
  const client = await apiClient(ctx.host);
  return forEachTarget(names, async (name) => {
    await client.call("DELETE", `/containers/${enc(name)}`, {
      query: { force: ctx.flags.force ? 1 : undefined, v: ctx.flags.volumes ? 1 : undefined },
    });
    out(`${name}\n`);
  });
}

async function wait(ctx: CommandContext): Promise<number> {
  const [names] = ctx.args as [string[]];
  const client = await apiClient(ctx.host);
  return forEachTarget(names, async (name) => {
    const r = await client.json<WaitResponse>("POST", `/containers/${enc(name)}/wait`);
    if (r.Error?.Message) throw new DaemonError(500, r.Error.Message);
    out(`${r.StatusCode}\n`);
  });
}

async function rename(ctx: CommandContext): Promise<number> {
  const [from, to] = ctx.args as [string, string];
  if (!to.trim()) throw new UsageError("Error: Neither old nor new names may be empty");
  await (await apiClient(ctx.host)).call("POST", `/containers/${enc(from)}/rename`, { query: { name: to } });
  return 0;
}

interface LogsFlags {
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

async function logs(ctx: CommandContext<LogsFlags>): Promise<number> {
  const [name] = ctx.args as [string];
  const f = ctx.flags;
  const { apiTimestamp, parseInteger } = await import("../options.js");
  const tail = f.tail === undefined || f.tail === "all" ? undefined : String(parseInteger(f.tail, "--tail"));
  const client = await apiClient(ctx.host);
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

function pruneContainers(ctx: CommandContext<PruneFlags>): Promise<number> {
  return prune<ContainerPruneResponse>(ctx, {
    warning: "WARNING! This will remove all stopped containers.",
    path: "/containers/prune",
    deleted: (r) => deletedList("Containers", true)(r.ContainersDeleted),
    reclaimed: (r) => r.SpaceReclaimed,
  });
}
