// Image commands: images, rmi, tag, load, save, pull and push (registry.ts), build
// (build.ts), import; under `shoal image` also inspect and prune.

import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Command } from "commander";
import type { DeleteItem, ImagePruneResponse, ImageSummary } from "../api-types.js";
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
import { CliError, UsageError } from "../errors.js";
import { buildCommand } from "./build.js";
import { inspectSubcommand } from "./inspect.js";
import { prune, type PruneFlags } from "./prune.js";
import { pullPushCommands } from "./registry.js";

const enc = encodeURIComponent;

/** At top level (`shoal images`) and under `shoal image` (`image ls`). */
export function imageCommands(parent: Command, grouped: boolean): void {
  const list = add(parent, grouped ? "ls" : "images", grouped ? ["list"] : [])
    ?.description("List images")
    .argument("[repository]", "REPOSITORY[:TAG]")
    .option("-a, --all", "Show all images (default hides intermediate images)")
    .option("-q, --quiet", "Only show image IDs")
    .option("--digests", "Show digests")
    .option("-f, --filter <filter>", "Filter output based on conditions provided", collect)
    .option(
      "--format <string>",
      "Format output using a custom template ('table', 'table TEMPLATE', 'json', or a Go template)",
    )
    .option("--no-trunc", "Don't truncate output")
    .option("--json", "Print the Engine API's JSON")
    .action(act(images));
  if (grouped) list?.aliases(["list"]);

  const remove = add(parent, grouped ? "rm" : "rmi", grouped ? ["remove", "rmi"] : [])
    ?.description("Remove one or more images")
    .argument("<image...>")
    .option("-f, --force", "Force removal of the image")
    .option("--no-prune", "Do not delete untagged parents")
    .action(act(rmi));
  if (grouped) remove?.aliases(["remove", "rmi"]);

  add(parent, "tag")
    ?.description("Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
    .argument("<source>", "SOURCE_IMAGE[:TAG]")
    .argument("<target>", "TARGET_IMAGE[:TAG]")
    .action(act(tag));

  add(parent, "load")
    ?.description("Load an image from a tar archive or STDIN")
    .option("-i, --input <string>", "Read from tar archive file, instead of STDIN")
    .option("-q, --quiet", "Suppress the load output")
    .action(act(load));

  add(parent, "save")
    ?.description("Save one or more images to a tar archive (streamed to STDOUT by default)")
    .argument("<image...>")
    .option("-o, --output <string>", "Write to a file, instead of STDOUT")
    .action(act(save));

  pullPushCommands(parent);

  buildCommand(parent);

  add(parent, "import")
    ?.description("Import the contents from a tarball to create a filesystem image")
    .argument("<file>", "file|URL|-")
    .argument("[repository]", "REPOSITORY[:TAG]")
    .option("-c, --change <list>", "Apply Dockerfile instruction to the created image", collect)
    .option("-m, --message <string>", "Set commit message for imported image")
    .option("--platform <string>", "Set platform if server is multi-platform capable")
    .action(act(importCmd));

  if (grouped) {
    inspectSubcommand(parent, "image");

    add(parent, "prune")
      ?.description("Remove unused images")
      .option("-a, --all", "Remove all unused images, not just dangling ones")
      .option("-f, --force", "Do not prompt for confirmation")
      .option("--filter <filter>", "Provide filter values (e.g. 'until=<timestamp>')", collect)
      .action(act(pruneImages));
  }
}

interface ImagesFlags {
  all?: boolean;
  quiet?: boolean;
  format?: string;
  /** commander's spelling of --no-trunc. */
  trunc?: boolean;
  filter?: string[];
  json?: boolean;
  digests?: boolean;
}

async function images(ctx: CommandContext<ImagesFlags>): Promise<number> {
  const [reference] = ctx.args as [string | undefined];
  const f = ctx.flags;
  const list = await (
    await apiClient(ctx.host)
  ).json<ImageSummary[]>("GET", "/images/json", {
    query: {
      all: f.all ? 1 : undefined,
      filters: filtersJson(f.filter, reference ? { reference: [reference] } : {}),
    },
  });
  const sorted = [...(list ?? [])].sort((a, b) => b.Created - a.Created);
  if (f.json) {
    out(`${JSON.stringify(sorted, null, 2)}\n`);
    return 0;
  }
  const { imageContext, imageHeaders, imageRows, DEFAULT_IMAGES_FORMAT } =
    await import("../format/contexts.js");
  const { renderList } = await import("../format/table.js");
  let format = f.format;
  if (f.quiet) format = "{{.ID}}";
  const defaultFormat = f.digests
    ? "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    : DEFAULT_IMAGES_FORMAT;
  const now = Date.now();
  const rows = imageRows(sorted).map((r) => imageContext(r, { trunc: f.trunc !== false, now }));
  out(renderList(rows, format, { defaultFormat, headers: imageHeaders }));
  return 0;
}

async function rmi(ctx: CommandContext<{ force?: boolean; prune?: boolean }>): Promise<number> {
  const [names] = ctx.args as [string[]];
  const client = await apiClient(ctx.host);
  return forEachTarget(names, async (name) => {
    const items = await client.json<DeleteItem[]>("DELETE", `/images/${enc(name)}`, {
      query: { force: ctx.flags.force ? 1 : undefined, noprune: ctx.flags.prune === false ? 1 : undefined },
    });
    printDeleted(items ?? []);
  });
}

function printDeleted(items: DeleteItem[]): void {
  for (const item of items) {
    if (item.Untagged) out(`Untagged: ${item.Untagged}\n`);
    if (item.Deleted) out(`Deleted: ${item.Deleted}\n`);
  }
}

async function tag(ctx: CommandContext): Promise<number> {
  const [source, target] = ctx.args as [string, string];
  const { familiarName, parseReference } = await import("../../shared/reference.js");
  const ref = parseReference(target);
  if (ref.digest) throw new UsageError(`invalid reference "${target}": a tag target cannot carry a digest`);
  await (
    await apiClient(ctx.host)
  ).call("POST", `/images/${enc(source)}/tag`, {
    query: { repo: familiarName(ref), tag: ref.tag ?? "latest" },
  });
  return 0;
}

function pruneImages(ctx: CommandContext<PruneFlags & { all?: boolean }>): Promise<number> {
  return prune<ImagePruneResponse>(ctx, {
    warning: ctx.flags.all
      ? "WARNING! This will remove all images without at least one container associated to them."
      : "WARNING! This will remove all dangling images.",
    path: "/images/prune",
    filters: { dangling: [ctx.flags.all ? "false" : "true"] },
    deleted: (r) => {
      const items = r.ImagesDeleted ?? [];
      if (items.length === 0) return "";
      const lines = items.flatMap((i) => [
        ...(i.Untagged ? [`untagged: ${i.Untagged}\n`] : []),
        ...(i.Deleted ? [`deleted: ${i.Deleted}\n`] : []),
      ]);
      return `Deleted Images:\n${lines.join("")}\n`;
    },
    reclaimed: (r) => r.SpaceReclaimed,
  });
}

async function inputStream(file: string | undefined, what: string): Promise<Readable> {
  if (file === undefined || file === "-") {
    if (process.stdin.isTTY)
      throw new CliError(
        `requested ${what} from stdin, but stdin is a terminal: give a file or redirect stdin`,
      );
    return process.stdin;
  }
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new CliError(`${file} is not a regular file`);
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`open ${file}: ${(e as Error).message}`);
  }
  return createReadStream(file);
}

/** Print a JSON-lines answer through the progress renderer, or the body as text if it is not JSON. */
async function showStream(body: Readable, contentType: string): Promise<void> {
  if (!contentType.includes("json")) {
    await pipeline(body, process.stdout, { end: false });
    return;
  }
  const { ProgressRenderer } = await import("../progress.js");
  await new ProgressRenderer(process.stdout).consume(body);
}

async function load(ctx: CommandContext<{ input?: string; quiet?: boolean }>): Promise<number> {
  const body = await inputStream(ctx.flags.input, "load");
  const res = await (
    await apiClient(ctx.host)
  ).stream("POST", "/images/load", {
    query: { quiet: ctx.flags.quiet ? 1 : 0 },
    body,
    contentType: "application/x-tar",
  });
  await showStream(res, String(res.headers["content-type"] ?? "application/json"));
  return 0;
}

async function save(ctx: CommandContext<{ output?: string }>): Promise<number> {
  const [names] = ctx.args as [string[]];
  const output = ctx.flags.output;
  if (output === undefined && process.stdout.isTTY) {
    throw new CliError("cowardly refusing to save to a terminal. Use the -o flag or redirect");
  }
  const res = await (await apiClient(ctx.host)).stream("GET", "/images/get", { query: { names } });
  if (output === undefined) {
    await pipeline(res, process.stdout, { end: false });
  } else {
    // Write next to the target and rename, so a failed save leaves no truncated tar behind.
    const { rename, rm } = await import("node:fs/promises");
    const tmp = `${output}.shoal-tmp-${process.pid}`;
    try {
      await pipeline(res, createWriteStream(tmp));
      await rename(tmp, output);
    } catch (e) {
      await rm(tmp, { force: true });
      throw new CliError(`failed to save to ${output}: ${(e as Error).message}`);
    }
  }
  return 0;
}

interface ImportFlags {
  change?: string[];
  message?: string;
  platform?: string;
}

async function importCmd(ctx: CommandContext<ImportFlags>): Promise<number> {
  const [source, reference] = ctx.args as [string, string | undefined];
  const isUrl = /^https?:\/\//.test(source);
  const { familiarName, parseReference } = await import("../../shared/reference.js");
  const ref = reference ? parseReference(reference) : undefined;
  if (ref?.digest)
    throw new UsageError(`invalid reference "${reference}": an import target cannot carry a digest`);
  const body = isUrl ? undefined : await inputStream(source, "import");
  const res = await (
    await apiClient(ctx.host)
  ).stream("POST", "/images/create", {
    query: {
      fromSrc: isUrl ? source : "-",
      repo: ref ? familiarName(ref) : undefined,
      tag: ref ? (ref.tag ?? "latest") : undefined,
      message: ctx.flags.message,
      changes: ctx.flags.change ?? [],
      platform: ctx.flags.platform,
    },
    body,
    contentType: "application/x-tar",
  });
  await showStream(res, String(res.headers["content-type"] ?? "application/json"));
  return 0;
}
