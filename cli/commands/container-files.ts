// cp, export, diff and commit (at top level and under `shoal container`), and `system df`: the
// container filesystem side of the Engine API. Local folders are packed and unpacked by the
// system's tar (GNU tar's --transform renames the top entry, as docker cp's rebase does).

import { createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Command } from "commander";
import { act, add, apiClient, collect, out, type CommandContext } from "../command.js";
import { CliError, UsageError } from "../errors.js";

const enc = encodeURIComponent;

export function containerFileCommands(parent: Command): void {
  add(parent, "cp")
    ?.description("Copy files/folders between a container and the local filesystem")
    .argument("<src>", "CONTAINER:SRC_PATH, a local path, or - (a tar on stdin)")
    .argument("<dest>", "CONTAINER:DEST_PATH, a local path, or - (a tar on stdout)")
    .option("-a, --archive", "Archive mode (copy all uid/gid information)")
    .action(act(cp));

  add(parent, "export")
    ?.description("Export a container's filesystem as a tar archive")
    .argument("<container>")
    .option("-o, --output <string>", "Write to a file, instead of STDOUT")
    .action(act(exportTar));

  add(parent, "diff")
    ?.description("Inspect changes to files or directories on a container's filesystem")
    .argument("<container>")
    .action(act(diff));

  add(parent, "commit")
    ?.description("Create a new image from a container's changes")
    .argument("<container>")
    .argument("[repository]", "REPOSITORY[:TAG]")
    .option("-a, --author <string>", 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    .option("-c, --change <value>", "Apply Dockerfile instruction to the created image", collect)
    .option("-m, --message <string>", "Commit message")
    .option("--no-pause", "Do not pause the container during commit")
    .action(act(commit));
}

/** "name:path" → [name, path]; a local path (absolute, ./, or without a colon) → [undefined, path]. */
function splitArg(arg: string): [string | undefined, string] {
  if (arg.startsWith("/") || arg.startsWith(".")) return [undefined, arg];
  const i = arg.indexOf(":");
  return i > 0 ? [arg.slice(0, i), arg.slice(i + 1)] : [undefined, arg];
}

async function runTar(args: string[], stdin: "pipe" | "ignore", stdout: "pipe" | "ignore") {
  // Loaded when a copy runs: start-up imports no child_process.
  const { spawn } = await import("node:child_process");
  const child = spawn("tar", args, { stdio: [stdin, stdout, "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<void>((ok, fail) => {
    child.on("error", (e) => fail(new CliError(`cannot run tar: ${e.message}`)));
    child.on("close", (code) => (code === 0 ? ok() : fail(new CliError(`tar failed: ${stderr.trim()}`))));
  });
  return { child, done };
}

const isDir = (p: string): Promise<boolean> =>
  stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );

async function cp(ctx: CommandContext<{ archive?: boolean }>): Promise<number> {
  const [srcArg, destArg] = ctx.args as [string, string];
  const [srcC, src] = splitArg(srcArg);
  const [destC, dest] = splitArg(destArg);
  if ((srcC === undefined) === (destC === undefined))
    throw new UsageError(
      "copying between containers or between local paths is not supported: name one CONTAINER:PATH",
    );
  const client = await apiClient(ctx.host);
  if (srcC !== undefined) {
    const res = await client.stream("GET", `/containers/${enc(srcC)}/archive`, { query: { path: src } });
    if (dest === "-") {
      await pipeline(res, process.stdout);
      return 0;
    }
    const target = resolve(dest);
    const into = await isDir(target);
    const srcBase = basename(src.replace(/\/+$/, "")) || ".";
    // Into an existing folder as is; to a new name, with the top entry renamed (docker cp's rebase).
    const args = into
      ? ["-x", "-C", target]
      : [
          "-x",
          "-C",
          dirname(target),
          `--transform=s,^${srcBase.replace(/[,\\^$.*[\]]/g, "\\$&")},${basename(target)},`,
        ];
    const tar = await runTar([...args, "--no-same-owner"], "pipe", "ignore");
    await pipeline(res, tar.child.stdin as NodeJS.WritableStream);
    await tar.done;
    return 0;
  }
  const container = destC as string;
  let body: Readable;
  let path = dest;
  let tar: Awaited<ReturnType<typeof runTar>> | undefined;
  if (src === "-") {
    body = process.stdin;
  } else {
    const source = resolve(src);
    let destIsDir: boolean;
    try {
      const res = await client.stream("HEAD", `/containers/${enc(container)}/archive`, {
        query: { path: dest },
      });
      const header = res.headers["x-docker-container-path-stat"];
      res.resume();
      const st = JSON.parse(Buffer.from(String(header), "base64").toString()) as { mode: number };
      destIsDir = (st.mode & (2 ** 31)) !== 0;
    } catch {
      destIsDir = false;
    }
    const args = ["-c", "-C", dirname(source)];
    if (!destIsDir) {
      path = dirname(dest.replace(/\/+$/, "")) || "/";
      args.push(`--transform=s,^${basename(source).replace(/[,\\^$.*[\]]/g, "\\$&")},${basename(dest)},`);
    }
    tar = await runTar([...args, basename(source)], "ignore", "pipe");
    body = tar.child.stdout as Readable;
  }
  await client.call("PUT", `/containers/${enc(container)}/archive`, {
    query: { path, noOverwriteDirNonDir: "true", ...(ctx.flags.archive ? { copyUIDGID: "true" } : {}) },
    body,
  });
  await tar?.done;
  return 0;
}

async function exportTar(ctx: CommandContext<{ output?: string }>): Promise<number> {
  const [name] = ctx.args as [string];
  if (!ctx.flags.output && process.stdout.isTTY)
    throw new UsageError("cowardly refusing to save to a terminal. Use the -o flag or redirect");
  const client = await apiClient(ctx.host);
  const res = await client.stream("GET", `/containers/${enc(name)}/export`);
  await pipeline(res, ctx.flags.output ? createWriteStream(ctx.flags.output) : process.stdout);
  return 0;
}

async function diff(ctx: CommandContext): Promise<number> {
  const [name] = ctx.args as [string];
  const client = await apiClient(ctx.host);
  const changes = await client.json<Array<{ Path: string; Kind: number }> | null>(
    "GET",
    `/containers/${enc(name)}/changes`,
  );
  out((changes ?? []).map((c) => `${["C", "A", "D"][c.Kind] ?? "?"} ${c.Path}\n`).join(""));
  return 0;
}

async function commit(
  ctx: CommandContext<{ author?: string; change?: string[]; message?: string; pause?: boolean }>,
): Promise<number> {
  const [name, ref] = ctx.args as [string, string | undefined];
  let repo = ref;
  let tag: string | undefined;
  if (ref) {
    const colon = ref.lastIndexOf(":");
    if (colon > ref.lastIndexOf("/")) [repo, tag] = [ref.slice(0, colon), ref.slice(colon + 1)];
  }
  const client = await apiClient(ctx.host);
  const res = await client.json<{ Id: string }>("POST", "/commit", {
    query: {
      container: name,
      repo,
      tag,
      author: ctx.flags.author,
      comment: ctx.flags.message,
      pause: ctx.flags.pause === false ? "0" : "1",
      changes: ctx.flags.change,
    },
    body: {},
  });
  out(`${res.Id}\n`);
  return 0;
}

interface DiskUsage {
  LayersSize?: number;
  Images?: Array<{ Size: number; SharedSize: number; Containers: number }>;
  Containers?: Array<{ SizeRw?: number; State: string }>;
  Volumes?: Array<{ UsageData?: { Size: number; RefCount: number } }>;
}

/** `shoal system df`: the summary table docker prints. */
export async function systemDf(ctx: CommandContext): Promise<number> {
  const { dockerSize } = await import("../../shared/human.js");
  const { tabwrite } = await import("../format/table.js");
  const client = await apiClient(ctx.host);
  const du = await client.json<DiskUsage>("GET", "/system/df");
  const images = du.Images ?? [];
  const containers = du.Containers ?? [];
  const volumes = du.Volumes ?? [];
  const total = du.LayersSize ?? 0;
  const used = images.filter((i) => i.Containers > 0).reduce((a, i) => a + i.Size - i.SharedSize, 0);
  const pct = (part: number, whole: number): string =>
    whole > 0 ? `${dockerSize(part)} (${Math.floor((part * 100) / whole)}%)` : dockerSize(part);
  const cSize = containers.reduce((a, c) => a + (c.SizeRw ?? 0), 0);
  const cIdle = containers.filter((c) => c.State !== "running").reduce((a, c) => a + (c.SizeRw ?? 0), 0);
  const vSize = volumes.reduce((a, v) => a + (v.UsageData?.Size ?? 0), 0);
  const vIdle = volumes
    .filter((v) => (v.UsageData?.RefCount ?? 0) === 0)
    .reduce((a, v) => a + (v.UsageData?.Size ?? 0), 0);
  const rows = [
    "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE",
    `Images\t${images.length}\t${images.filter((i) => i.Containers > 0).length}\t${dockerSize(total)}\t${pct(total - used, total)}`,
    `Containers\t${containers.length}\t${containers.filter((c) => c.State === "running").length}\t${dockerSize(cSize)}\t${pct(cIdle, cSize)}`,
    `Local Volumes\t${volumes.length}\t${volumes.filter((v) => (v.UsageData?.RefCount ?? 0) > 0).length}\t${dockerSize(vSize)}\t${pct(vIdle, vSize)}`,
    "Build Cache\t0\t0\t0B\t0B",
  ];
  out(tabwrite(`${rows.join("\n")}\n`));
  return 0;
}
