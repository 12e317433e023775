// Volume commands: volume create, ls, inspect, rm, prune.

import { Option, type Command } from "commander";
import type { Volume, VolumeListResponse, VolumePruneResponse } from "../api-types.js";
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
import { UsageError } from "../errors.js";
import { inspectSubcommand } from "./inspect.js";
import { deletedList, prune, type PruneFlags } from "./prune.js";

const enc = encodeURIComponent;

export function volumeCommands(parent: Command): void {
  add(parent, "create")
    ?.description("Create a volume")
    .argument("[volume]")
    .option("-d, --driver <string>", "Specify volume driver name", "local")
    .option("--label <list>", "Set metadata for a volume", collect)
    .option("-o, --opt <map>", "Set driver specific options", collect)
    .addOption(new Option("--name <string>", "Specify volume name").hideHelp())
    .action(act(create));

  add(parent, "ls", ["list"])
    ?.aliases(["list"])
    .description("List volumes")
    .option("-q, --quiet", "Only display volume names")
    .option("-f, --filter <filter>", "Provide filter values (e.g. 'dangling=true')", collect)
    .option(
      "--format <string>",
      "Format output using a custom template ('table', 'table TEMPLATE', 'json', or a Go template)",
    )
    .option("--json", "Print the Engine API's JSON")
    .action(act(ls));

  inspectSubcommand(parent, "volume");

  add(parent, "rm", ["remove"])
    ?.aliases(["remove"])
    .description("Remove one or more volumes")
    .argument("<volume...>")
    .option("-f, --force", "Force the removal of one or more volumes (no error when missing)")
    .action(act(rm));

  add(parent, "prune")
    ?.description("Remove unused local volumes")
    .option("-a, --all", "Remove all unused volumes, not just anonymous ones")
    .option("-f, --force", "Do not prompt for confirmation")
    .option("--filter <filter>", "Provide filter values (e.g. 'label=<label>')", collect)
    .action(act(pruneVolumes));
}

interface VolumeCreateFlags {
  driver?: string;
  label?: string[];
  opt?: string[];
  name?: string;
}

async function create(ctx: CommandContext<VolumeCreateFlags>): Promise<number> {
  const [positional] = ctx.args as [string | undefined];
  const f = ctx.flags;
  if (positional !== undefined && f.name !== undefined && positional !== f.name) {
    throw new UsageError("conflicting options: either specify --name or provide positional arg, not both");
  }
  const driverOpts: Record<string, string> = {};
  for (const o of f.opt ?? []) {
    const eq = o.indexOf("=");
    if (eq <= 0) throw new UsageError(`invalid argument "${o}" for "-o, --opt" flag: use key=value`);
    driverOpts[o.slice(0, eq)] = o.slice(eq + 1);
  }
  const { parseLabels } = await import("../options.js");
  const v = await (
    await apiClient(ctx.host)
  ).json<Volume>("POST", "/volumes/create", {
    body: {
      Name: positional ?? f.name ?? "",
      Driver: f.driver ?? "local",
      DriverOpts: driverOpts,
      Labels: parseLabels(f.label ?? []),
    },
  });
  out(`${v.Name}\n`);
  return 0;
}

interface VolumeLsFlags {
  quiet?: boolean;
  filter?: string[];
  format?: string;
  json?: boolean;
}

async function ls(ctx: CommandContext<VolumeLsFlags>): Promise<number> {
  const f = ctx.flags;
  const r = await (
    await apiClient(ctx.host)
  ).json<VolumeListResponse>("GET", "/volumes", {
    query: { filters: filtersJson(f.filter) },
  });
  const volumes = [...(r.Volumes ?? [])].sort((a, b) => a.Name.localeCompare(b.Name));
  if (f.json) {
    out(`${JSON.stringify(volumes, null, 2)}\n`);
    return 0;
  }
  const { volumeContext, volumeHeaders, DEFAULT_VOLUMES_FORMAT } = await import("../format/contexts.js");
  const { renderList } = await import("../format/table.js");
  const format = f.quiet ? "{{.Name}}" : f.format;
  out(
    renderList(volumes.map(volumeContext), format, {
      defaultFormat: DEFAULT_VOLUMES_FORMAT,
      headers: volumeHeaders,
    }),
  );
  return 0;
}

async function rm(ctx: CommandContext<{ force?: boolean }>): Promise<number> {
  const [names] = ctx.args as [string[]];
  const client = await apiClient(ctx.host);
  return forEachTarget(names, async (name) => {
    await client.call("DELETE", `/volumes/${enc(name)}`, {
      query: { force: ctx.flags.force ? 1 : undefined },
    });
    out(`${name}\n`);
  });
}

function pruneVolumes(ctx: CommandContext<PruneFlags & { all?: boolean }>): Promise<number> {
  return prune<VolumePruneResponse>(ctx, {
    warning: ctx.flags.all
      ? "WARNING! This will remove all local volumes not used by at least one container."
      : "WARNING! This will remove anonymous local volumes not used by at least one container.",
    path: "/volumes/prune",
    filters: ctx.flags.all ? { all: ["true"] } : {},
    deleted: (r) => deletedList("Volumes", true)(r.VolumesDeleted),
    reclaimed: (r) => r.SpaceReclaimed,
  });
}
