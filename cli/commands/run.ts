// run, create and start -a. `run --rm busybox true` is benchmarked: the path is create →
// (attach ∥ wait) → start → stream → exit code, with no ping, version or inspect round trips.

import { readFile } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import { Option, type Command } from "commander";
import type { CreateResponse, WaitResponse, ContainerInspect } from "../api-types.js";
import type { ApiClient } from "../client.js";
import { act, add, collect, apiClient, err, out, type CommandContext } from "../command.js";
import { CliError, DaemonError, UsageError } from "../errors.js";
import type { CreateBody, RunFlags } from "../options.js";
import { resourceOptions } from "./resource-options.js";
import { healthFlags } from "./health-flags.js";
import type { HostcfgFlags } from "../hostcfg-flags.js";
import { hostcfgFlags } from "./hostcfg-options.js";

/** The flags run and create share (docker's container create flags). */
function runFlags(cmd: Command, withDetach: boolean): Command {
  if (withDetach) cmd.option("-d, --detach", "Run container in background and print container ID");
  resourceOptions(cmd);
  healthFlags(cmd);
  hostcfgFlags(cmd);
  return cmd
    .option("--rm", "Automatically remove the container when it exits")
    .option("--name <string>", "Assign a name to the container")
    .option("-e, --env <list>", "Set environment variables", collect)
    .option("--env-file <list>", "Read in a file of environment variables", collect)
    .option("-w, --workdir <string>", "Working directory inside the container")
    .option("-u, --user <string>", "Username or UID (format: <name|uid>[:<group|gid>])")
    .option("--entrypoint <string>", "Overwrite the default ENTRYPOINT of the image")
    .option("-h, --hostname <string>", "Container host name")
    .option("-l, --label <list>", "Set meta data on a container", collect)
    .option("--label-file <list>", "Read in a line delimited file of labels", collect)
    .option("--read-only", "Mount the container's root filesystem as read only")
    .option("--cap-add <list>", "Add Linux capabilities", collect)
    .option("--cap-drop <list>", "Drop Linux capabilities", collect)
    .option("--privileged", "Give extended privileges to this container")
    .option("-m, --memory <bytes>", "Memory limit")
    .option("--memory-swap <bytes>", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
    .option("--cpus <decimal>", "Number of CPUs")
    .option("-c, --cpu-shares <int>", "CPU shares (relative weight)")
    .option("--pids-limit <int>", "Tune container pids limit (set -1 for unlimited)")
    .option("--init", "Run an init inside the container that forwards signals and reaps processes")
    .option("--restart <string>", "Restart policy to apply when a container exits", "no")
    .option("--stop-signal <string>", "Signal to stop the container")
    .option("--stop-timeout <int>", "Timeout (in seconds) to stop a container")
    .option("--ulimit <ulimit>", "Ulimit options", collect)
    .addOption(new Option("--network <mode>", "Connect a container to a network").argParser(collect))
    .addOption(new Option("--net <mode>").hideHelp().argParser(collect))
    .option("-p, --publish <list>", "Publish a container's port(s) to the host", collect)
    .option("-P, --publish-all", "Publish all exposed ports to random ports")
    .option("--expose <list>", "Expose a port or a range of ports", collect)
    .option("--ip <address>", "IPv4 address (e.g., 172.30.100.104)")
    .option("--network-alias <list>", "Add network-scoped alias for the container", collect)
    .option("--dns <list>", "Set custom DNS servers", collect)
    .option("--dns-search <list>", "Set custom DNS search domains", collect)
    .option("--dns-option <list>", "Set DNS options", collect)
    .option("--add-host <list>", "Add a custom host-to-IP mapping (host:ip)", collect)
    .option("-v, --volume <list>", "Bind mount a volume", collect)
    .option("--mount <mount>", "Attach a filesystem mount to the container", collect)
    .option("--tmpfs <list>", "Mount a tmpfs directory", collect)
    .option("-i, --interactive", "Keep STDIN open even if not attached")
    .option("-t, --tty", "Allocate a pseudo-TTY")
    .option("--detach-keys <string>", "Override the key sequence for detaching a container");
}

/** run, create and start: at top level and under `shoal container`. */
export function runCommands(parent: Command): void {
  const run = add(parent, "run");
  if (run) {
    runFlags(run.description("Create and run a new container from an image"), true)
      .argument("<image>")
      .argument("[command...]")
      .passThroughOptions()
      .action(act(runCmd));
  }

  const create = add(parent, "create");
  if (create) {
    runFlags(create.description("Create a new container"), false)
      .argument("<image>")
      .argument("[command...]")
      .passThroughOptions()
      .action(act(createCmd));
  }

  add(parent, "start")
    ?.description("Start one or more stopped containers")
    .argument("<container...>")
    .option("-a, --attach", "Attach STDOUT/STDERR and forward signals")
    .option("-i, --interactive", "Attach container's STDIN")
    .option("--detach-keys <string>", "Override the key sequence for detaching a container")
    .action(act(start));

  add(parent, "attach")
    ?.description("Attach local standard input, output, and error streams to a running container")
    .argument("<container>")
    .option("--no-stdin", "Do not attach STDIN")
    .option("--detach-keys <string>", "Override the key sequence for detaching a container")
    .action(act(attachCmd));
}

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
  const { buildCreateBody } = await import("../options.js");
  const body = buildCreateBody({ image, command, flags, envFiles, labelFiles, attach });
  const { addHostcfgFields } = await import("../hostcfg-flags.js");
  await addHostcfgFields(body, flags as RunFlags & HostcfgFlags);
  return body;
}

/** Docker's mapping of a failed start onto 126 (cannot invoke) / 127 (not found) / 125. */
export function startFailureCode(message: string): number {
  if (/executable file not found|no such file or directory|system error: exec/i.test(message)) return 127;
  if (/permission denied|is a directory/i.test(message)) return 126;
  return 125;
}

async function pull(client: ApiClient, image: string): Promise<void> {
  const { ProgressRenderer } = await import("../progress.js");
  const { familiarName, parseReference } = await import("../../shared/reference.js");
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
    const { familiarString, parseReference, withDefaultTag } = await import("../../shared/reference.js");
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
  interactive?: { detachKeys?: string },
): Promise<number> {
  if (interactive) return interactiveStartWait(client, id, tty, autoRemove, interactive.detachKeys);
  const { copyRaw, demuxTo } = await import("../stdcopy.js");
  const [stream, waitRes] = await attachAndWait(
    client,
    id,
    { stream: 1, stdout: 1, stderr: 1 },
    autoRemove ? "removed" : "next-exit",
  );
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

/**
 * Attach and ask for the exit at once, both before the container starts (as the docker CLI
 * does), so neither its first output nor a quick exit is missed.
 */
function attachAndWait(
  client: ApiClient,
  id: string,
  query: Record<string, string | number>,
  condition: "removed" | "next-exit",
): Promise<[Readable & { destroy(): void }, IncomingMessage]> {
  return Promise.all([
    client.hijack(`/containers/${id}/attach`, query),
    client.stream("POST", `/containers/${id}/wait`, { query: { condition } }),
  ]);
}

/**
 * attachStartWait with our stdin: attach (stdin too), start, follow the window size, stream until
 * the output ends or the user detaches (then the container keeps running and we return 0).
 */
async function interactiveStartWait(
  client: ApiClient,
  id: string,
  tty: boolean,
  autoRemove: boolean,
  detachKeys: string | undefined,
): Promise<number> {
  const { detachKeyBytes, followWindowSize, streamInteractive } = await import("../interactive.js");
  detachKeyBytes(detachKeys);
  const query: Record<string, string | number> = { stream: 1, stdin: 1, stdout: 1, stderr: 1 };
  if (detachKeys) query.detachKeys = detachKeys;
  const [stream, waitRes] = await attachAndWait(client, id, query, autoRemove ? "removed" : "next-exit");
  const stopProxy = tty ? () => undefined : proxySignals(client, id);
  const failed = await startContainer(client, id, autoRemove);
  if (failed !== undefined) {
    stream.destroy();
    waitRes.destroy();
    stopProxy();
    return failed;
  }
  const stopResize = tty ? followWindowSize(client, `/containers/${id}/resize`) : () => undefined;
  try {
    const why = await streamInteractive(stream, { tty, stdin: true, detachKeys });
    if (why === "detached") {
      waitRes.destroy();
      return 0;
    }
    return await readWait(waitRes);
  } finally {
    stopResize();
    stopProxy();
  }
}

async function runCmd(ctx: CommandContext<RunFlags>): Promise<number> {
  const [image, command] = ctx.args as [string, string[]];
  const flags = ctx.flags;
  checkTty(flags);
  const body = await bodyFromFlags(image, command, flags, !flags.detach);
  const client = await apiClient(ctx.host);
  try {
    const id = await create(client, body, flags.name);
    if (flags.detach) {
      const failed = await startContainer(client, id, body.HostConfig.AutoRemove);
      if (failed !== undefined) return failed;
      out(`${id}\n`);
      return 0;
    }
    return await attachStartWait(
      client,
      id,
      Boolean(flags.tty),
      body.HostConfig.AutoRemove,
      flags.interactive ? { detachKeys: flags.detachKeys } : undefined,
    );
  } catch (e) {
    throw asRunError(e);
  }
}

async function createCmd(ctx: CommandContext<RunFlags>): Promise<number> {
  const [image, command] = ctx.args as [string, string[]];
  const flags = ctx.flags;
  const body = await bodyFromFlags(image, command, flags, false);
  try {
    out(`${await create(await apiClient(ctx.host), body, flags.name)}\n`);
    return 0;
  } catch (e) {
    throw asRunError(e);
  }
}

interface StartFlags {
  attach?: boolean;
  interactive?: boolean;
  detachKeys?: string;
}

/** As the docker CLI: -it needs a terminal on our stdin. */
function checkTty(flags: { interactive?: boolean; tty?: boolean; detach?: boolean }): void {
  if (flags.interactive && flags.tty && !flags.detach && !process.stdin.isTTY)
    throw new CliError("the input device is not a TTY", 1);
}

async function start(ctx: CommandContext<StartFlags>): Promise<number> {
  const [names] = ctx.args as [string[]];
  const client = await apiClient(ctx.host);
  if (ctx.flags.attach || ctx.flags.interactive) {
    if (names.length > 1) throw new CliError("you cannot start and attach multiple containers at once", 1);
    const c = await client.json<ContainerInspect>("GET", `/containers/${encodeURIComponent(names[0])}/json`);
    const autoRemove = (c.HostConfig as { AutoRemove?: boolean }).AutoRemove === true;
    const withStdin = ctx.flags.interactive === true && c.Config.OpenStdin === true;
    if (withStdin) checkTty({ interactive: true, tty: c.Config.Tty });
    return attachStartWait(
      client,
      c.Id,
      c.Config.Tty,
      autoRemove,
      withStdin ? { detachKeys: ctx.flags.detachKeys } : undefined,
    );
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

interface AttachFlags {
  /** commander's --no-stdin: false when given. */
  stdin?: boolean;
  detachKeys?: string;
}

/** shoal attach: into a running container's stdio; detaching leaves it running. */
async function attachCmd(ctx: CommandContext<AttachFlags>): Promise<number> {
  const [name] = ctx.args as [string];
  const client = await apiClient(ctx.host);
  const { detachKeyBytes, followWindowSize, streamInteractive } = await import("../interactive.js");
  detachKeyBytes(ctx.flags.detachKeys);
  const c = await client.json<ContainerInspect>("GET", `/containers/${encodeURIComponent(name)}/json`);
  if (!c.State.Running) throw new CliError("You cannot attach to a stopped container, start it first", 1);
  const stdin = ctx.flags.stdin !== false && c.Config.OpenStdin === true;
  if (stdin && c.Config.Tty && !process.stdin.isTTY) throw new CliError("the input device is not a TTY", 1);
  const query: Record<string, string | number> = { stream: 1, stdin: stdin ? 1 : 0, stdout: 1, stderr: 1 };
  if (ctx.flags.detachKeys) query.detachKeys = ctx.flags.detachKeys;
  const [stream, waitRes] = await attachAndWait(client, c.Id, query, "next-exit");
  const stopResize = c.Config.Tty ? followWindowSize(client, `/containers/${c.Id}/resize`) : () => undefined;
  try {
    const why = await streamInteractive(stream, {
      tty: c.Config.Tty,
      stdin,
      detachKeys: ctx.flags.detachKeys,
    });
    if (why === "detached") {
      waitRes.destroy();
      // The docker CLI's answer to the detach keys, an error (exit 1) as there.
      throw new CliError("read escape sequence", 1);
    }
    return await readWait(waitRes);
  } finally {
    stopResize();
  }
}
