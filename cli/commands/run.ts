// run, create and start -a. `run --rm busybox true` is benchmarked: the path is create →
// (attach ∥ wait) → start → stream → exit code, with no ping, version or inspect round trips.

import { readFile } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import type { CreateResponse, WaitResponse, ContainerInspect } from "../api-types.js";
import { clientFor, type ApiClient } from "../client.js";
import type { CommandContext } from "../context.js";
import { err, out } from "../context.js";
import { CliError, DaemonError, UsageError } from "../errors.js";
import { buildCreateBody, INTERACTIVE_UNSUPPORTED, type CreateBody, type RunFlags } from "../options.js";
import { copyRaw, demuxTo } from "../stdcopy.js";
import { familiarName, familiarString, parseReference, withDefaultTag } from "../../shared/reference.js";

async function readNamedFiles(paths: string[] | undefined): Promise<{ path: string; text: string }[]> {
  if (!paths || paths.length === 0) return [];
  return Promise.all(
    paths.map(async (path) => {
      try {
        return { path, text: await readFile(path, "utf8") };
      } catch (e) {
        throw new UsageError(`cannot read ${path}: ${(e as Error).message}`);
      }
    }),
  );
}

async function bodyFromFlags(
  image: string,
  command: string[],
  flags: RunFlags,
  attach: boolean,
): Promise<CreateBody> {
  const [envFiles, labelFiles] = await Promise.all([
    readNamedFiles(flags.envFile),
    readNamedFiles(flags.labelFile),
  ]);
  return buildCreateBody({ image, command, flags, envFiles, labelFiles, attach });
}

/** Docker's mapping of a failed start onto 126 (cannot invoke) / 127 (not found) / 125. */
export function startFailureCode(message: string): number {
  if (/executable file not found|no such file or directory|system error: exec/i.test(message)) return 127;
  if (/permission denied|is a directory/i.test(message)) return 126;
  return 125;
}

async function pull(client: ApiClient, image: string): Promise<void> {
  const { ProgressRenderer } = await import("../progress.js");
  const ref = parseReference(image);
  const res = await client.stream("POST", "/images/create", {
    query: { fromImage: familiarName(ref), tag: ref.digest ? ref.digest : (ref.tag ?? "latest") },
    headers: await (await import("../config-file.js")).registryAuthHeader(ref.domain),
  });
  await new ProgressRenderer(process.stderr).consume(res);
}

/** Create the container; pull the image first when the daemon does not have it, as docker run does. */
async function create(client: ApiClient, body: CreateBody, name: string | undefined): Promise<string> {
  const send = (): Promise<CreateResponse> =>
    client.json<CreateResponse>("POST", "/containers/create", { query: { name }, body });
  let created: CreateResponse;
  try {
    created = await send();
  } catch (e) {
    if (!(e instanceof DaemonError) || e.status !== 404 || !/no such image/i.test(e.message)) throw e;
    err(`Unable to find image '${familiarString(withDefaultTag(parseReference(body.Image)))}' locally\n`);
    await pull(client, body.Image);
    created = await send();
  }
  for (const w of created.Warnings ?? []) err(`WARNING: ${w}\n`);
  return created.Id;
}

function asRunError(e: unknown): unknown {
  if (e instanceof DaemonError) return new CliError(e.display, 125);
  if (e instanceof CliError && e.exitCode === 1) return new CliError(e.message, 125);
  return e;
}

const proxiedSignals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"];

/** Forward signals the CLI receives to the container, like docker's --sig-proxy. */
function proxySignals(client: ApiClient, id: string): () => void {
  const handlers = proxiedSignals.map((signal) => {
    const h = (): void => {
      client.call("POST", `/containers/${id}/kill`, { query: { signal } }).catch(() => undefined);
    };
    process.on(signal, h);
    return [signal, h] as const;
  });
  return () => handlers.forEach(([signal, h]) => process.off(signal, h));
}

async function readWait(res: IncomingMessage): Promise<number> {
  let text = "";
  for await (const chunk of res) text += (chunk as Buffer).toString("utf8");
  let result: WaitResponse;
  try {
    result = JSON.parse(text) as WaitResponse;
  } catch {
    err(`error waiting for container: unexpected answer ${JSON.stringify(text.slice(0, 200))}\n`);
    return 125;
  }
  if (result.Error?.Message) {
    err(`Error waiting for container: ${result.Error.Message}\n`);
    return 125;
  }
  return result.StatusCode;
}

/**
 * Start; on failure print the daemon's message and return docker's exit code for it. A
 * --rm container that never ran is removed here too, so a typo in the command leaves
 * nothing behind whatever the daemon does about it.
 */
async function startContainer(
  client: ApiClient,
  id: string,
  autoRemove: boolean,
): Promise<number | undefined> {
  try {
    await client.call("POST", `/containers/${id}/start`);
    return undefined;
  } catch (e) {
    if (!(e instanceof DaemonError)) throw e;
    err(`${e.display}\n`);
    if (autoRemove)
      await client.call("DELETE", `/containers/${id}`, { query: { force: 1 } }).catch(() => undefined);
    return startFailureCode(e.message);
  }
}

/**
 * Attach, register the wait, start, stream until the output ends, and return the exit code.
 * The wait is answered with headers at once by the daemon, so waiting for them before the
 * start guarantees a fast exit cannot slip past it.
 */
async function attachStartWait(
  client: ApiClient,
  id: string,
  tty: boolean,
  autoRemove: boolean,
): Promise<number> {
  const [stream, waitRes] = await Promise.all([
    client.hijack(`/containers/${id}/attach`, { stream: 1, stdout: 1, stderr: 1 }),
    client.stream("POST", `/containers/${id}/wait`, {
      query: { condition: autoRemove ? "removed" : "next-exit" },
    }),
  ]);
  const copying = (
    tty
      ? copyRaw(stream as Readable, process.stdout)
      : demuxTo(stream as Readable, process.stdout, process.stderr)
  ).catch((e: unknown) => {
    err(`${(e as Error).message}\n`);
  });
  const stopProxy = proxySignals(client, id);
  const failed = await startContainer(client, id, autoRemove);
  if (failed !== undefined) {
    stream.destroy();
    waitRes.destroy();
    stopProxy();
    return failed;
  }
  await copying;
  const code = await readWait(waitRes);
  stopProxy();
  return code;
}

export async function run(ctx: CommandContext<RunFlags>): Promise<number> {
  const [image, command] = ctx.args as [string, string[]];
  const flags = ctx.flags;
  if (flags.interactive || flags.tty) throw new UsageError(INTERACTIVE_UNSUPPORTED);
  const body = await bodyFromFlags(image, command, flags, !flags.detach);
  const client = clientFor(ctx.host);
  try {
    const id = await create(client, body, flags.name);
    if (flags.detach) {
      const failed = await startContainer(client, id, body.HostConfig.AutoRemove);
      if (failed !== undefined) return failed;
      out(`${id}\n`);
      return 0;
    }
    return await attachStartWait(client, id, false, body.HostConfig.AutoRemove);
  } catch (e) {
    throw asRunError(e);
  }
}

export async function createCmd(ctx: CommandContext<RunFlags>): Promise<number> {
  const [image, command] = ctx.args as [string, string[]];
  const flags = ctx.flags;
  if (flags.interactive || flags.tty) throw new UsageError(INTERACTIVE_UNSUPPORTED);
  const body = await bodyFromFlags(image, command, flags, false);
  try {
    out(`${await create(clientFor(ctx.host), body, flags.name)}\n`);
    return 0;
  } catch (e) {
    throw asRunError(e);
  }
}

export interface StartFlags {
  attach?: boolean;
  interactive?: boolean;
}

export async function start(ctx: CommandContext<StartFlags>): Promise<number> {
  const [names] = ctx.args as [string[]];
  const client = clientFor(ctx.host);
  if (ctx.flags.interactive) throw new UsageError(INTERACTIVE_UNSUPPORTED);
  if (ctx.flags.attach) {
    if (names.length > 1) throw new CliError("you cannot start and attach multiple containers at once", 1);
    const c = await client.json<ContainerInspect>("GET", `/containers/${encodeURIComponent(names[0])}/json`);
    const autoRemove = (c.HostConfig as { AutoRemove?: boolean }).AutoRemove === true;
    return attachStartWait(client, c.Id, c.Config.Tty, autoRemove);
  }
  const failed: string[] = [];
  for (const name of names) {
    try {
      await client.call("POST", `/containers/${encodeURIComponent(name)}/start`);
      out(`${name}\n`);
    } catch (e) {
      if (!(e instanceof DaemonError)) throw e;
      err(`${e.display}\n`);
      failed.push(name);
    }
  }
  if (failed.length > 0) throw new CliError(`Error: failed to start containers: ${failed.join(", ")}`, 1);
  return 0;
}
