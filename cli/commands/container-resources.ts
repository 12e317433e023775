// pause, unpause, update, top and stats: the docker CLI's verbs and flags for a container's
// cgroup (the engine side is agent/engine/container/{pause,update,stats,top}.ts).

import type { Command } from "commander";
import { act, add, apiClient, forEachTarget, out, err, type CommandContext } from "../command.js";
import { UsageError } from "../errors.js";

const enc = encodeURIComponent;

export function containerResourceCommands(parent: Command): void {
  add(parent, "pause")
    ?.description("Pause all processes within one or more containers")
    .argument("<container...>")
    .action(act(freeze("pause")));

  add(parent, "unpause")
    ?.description("Unpause all processes within one or more containers")
    .argument("<container...>")
    .action(act(freeze("unpause")));

  add(parent, "update")
    ?.description("Update configuration of one or more containers")
    .argument("<container...>")
    .option("-m, --memory <bytes>", "Memory limit")
    .option("--memory-reservation <bytes>", "Memory soft limit")
    .option("--memory-swap <bytes>", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
    .option("--cpus <decimal>", "Number of CPUs")
    .option("-c, --cpu-shares <int>", "CPU shares (relative weight)")
    .option("--cpu-period <int>", "Limit CPU CFS (Completely Fair Scheduler) period")
    .option("--cpu-quota <int>", "Limit CPU CFS (Completely Fair Scheduler) quota")
    .option("--cpuset-cpus <string>", "CPUs in which to allow execution (0-3, 0,1)")
    .option("--cpuset-mems <string>", "MEMs in which to allow execution (0-3, 0,1)")
    .option("--pids-limit <int>", "Tune container pids limit (set -1 for unlimited)")
    .option("--blkio-weight <int>", "Block IO (relative weight), between 10 and 1000, or 0 to disable")
    .option("--restart <string>", "Restart policy to apply when a container exits")
    .action(act(update));

  add(parent, "top")
    ?.description("Display the running processes of a container")
    .argument("<container>")
    .argument("[ps-options...]")
    .allowUnknownOption()
    .helpOption("--help")
    .action(act(top));

  add(parent, "stats")
    ?.description("Display a live stream of container(s) resource usage statistics")
    .argument("[container...]")
    .option("-a, --all", "Show all containers (default shows just running)")
    .option("--no-stream", "Disable streaming stats and only pull the first result")
    .option("--no-trunc", "Do not truncate output")
    .option(
      "--format <string>",
      "Format output using a custom template ('table', 'table TEMPLATE', 'json', or a Go template)",
    )
    .action(act(stats));
}

function freeze(action: "pause" | "unpause"): (ctx: CommandContext) => Promise<number> {
  return async (ctx) => {
    const [names] = ctx.args as [string[]];
    const client = await apiClient(ctx.host);
    return forEachTarget(names, async (name) => {
      await client.call("POST", `/containers/${enc(name)}/${action}`);
      out(`${name}\n`);
    });
  };
}

interface UpdateFlags {
  memory?: string;
  memoryReservation?: string;
  memorySwap?: string;
  cpus?: string;
  cpuShares?: string;
  cpuPeriod?: string;
  cpuQuota?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: string;
  blkioWeight?: string;
  restart?: string;
}

async function update(ctx: CommandContext<UpdateFlags>): Promise<number> {
  const [names] = ctx.args as [string[]];
  const f = ctx.flags;
  const { parseInteger, parseRestart } = await import("../options.js");
  const { parseBytes, parseNanoCpus } = await import("../../shared/units.js");
  const usage = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  };
  const bytes = (v: string | undefined, flag: string): number =>
    v === undefined ? 0 : v.trim() === "-1" ? -1 : usage(() => parseBytes(v, flag));
  const int = (v: string | undefined, flag: string): number => (v === undefined ? 0 : parseInteger(v, flag));
  const body: Record<string, unknown> = {
    Memory: bytes(f.memory, "--memory"),
    MemoryReservation: bytes(f.memoryReservation, "--memory-reservation"),
    MemorySwap: bytes(f.memorySwap, "--memory-swap"),
    NanoCpus: f.cpus === undefined ? 0 : usage(() => parseNanoCpus(f.cpus!, "--cpus")),
    CpuShares: int(f.cpuShares, "--cpu-shares"),
    CpuPeriod: int(f.cpuPeriod, "--cpu-period"),
    CpuQuota: int(f.cpuQuota, "--cpu-quota"),
    CpusetCpus: f.cpusetCpus ?? "",
    CpusetMems: f.cpusetMems ?? "",
    BlkioWeight: int(f.blkioWeight, "--blkio-weight"),
    PidsLimit: f.pidsLimit === undefined ? null : parseInteger(f.pidsLimit, "--pids-limit"),
    RestartPolicy: f.restart === undefined ? { Name: "", MaximumRetryCount: 0 } : parseRestart(f.restart),
  };
  const given = Object.entries(body).some(([k, v]) =>
    k === "RestartPolicy" ? (v as { Name: string }).Name !== "" : v !== 0 && v !== "" && v !== null,
  );
  if (!given) throw new UsageError("you must provide one or more flags when using this command");
  const client = await apiClient(ctx.host);
  return forEachTarget(names, async (name) => {
    const r = await client.json<{ Warnings?: string[] | null }>("POST", `/containers/${enc(name)}/update`, {
      body,
    });
    for (const w of r?.Warnings ?? []) err(`${w}\n`);
    out(`${name}\n`);
  });
}

async function top(ctx: CommandContext): Promise<number> {
  const [name, psArgs] = ctx.args as [string, string[] | undefined];
  const client = await apiClient(ctx.host);
  const r = await client.json<{ Titles: string[]; Processes: string[][] }>(
    "GET",
    `/containers/${enc(name)}/top`,
    {
      query: { ps_args: psArgs && psArgs.length > 0 ? psArgs.join(" ") : undefined },
    },
  );
  const { tabwrite } = await import("../format/table.js");
  const lines = [r.Titles, ...r.Processes].map((row) => row.join("\t"));
  out(tabwrite(`${lines.join("\n")}\n`, 1, 1));
  return 0;
}

interface StatsFlags {
  all?: boolean;
  /** commander's spelling of --no-stream / --no-trunc. */
  stream?: boolean;
  trunc?: boolean;
  format?: string;
}

async function stats(ctx: CommandContext<StatsFlags>): Promise<number> {
  const [names] = ctx.args as [string[]];
  const f = ctx.flags;
  const client = await apiClient(ctx.host);
  const { statsRow, STATS_HEADERS, DEFAULT_STATS_FORMAT } = await import("../format/stats.js");
  const { renderList } = await import("../format/table.js");
  const targets = async (): Promise<string[]> => {
    if (names.length > 0) return names;
    const list = await client.json<Array<{ Id: string }>>("GET", "/containers/json", {
      query: { all: f.all ? 1 : undefined },
    });
    return (list ?? []).map((c) => c.Id);
  };
  for (;;) {
    const ids = await targets();
    // stream=false: the daemon takes two samples a second apart, so the CPU % is filled.
    const samples = await Promise.all(
      ids.map((id) =>
        client.json<Parameters<typeof statsRow>[0]>("GET", `/containers/${enc(id)}/stats`, {
          query: { stream: 0 },
        }),
      ),
    );
    const rows = samples.map((s, i) => statsRow(s, names.length > 0 ? ids[i] : s.id, f.trunc !== false));
    const text = renderList(rows, f.format, { defaultFormat: DEFAULT_STATS_FORMAT, headers: STATS_HEADERS });
    if (f.stream === false) {
      out(text);
      return 0;
    }
    // Redraw in place, as docker stats does on a terminal.
    out(`${process.stdout.isTTY ? "\x1b[2J\x1b[H" : ""}${text}`);
  }
}
