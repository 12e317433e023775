// pull, push, login and logout. Credentials come from config.json (see ../config-file.ts) and go
// to the daemon in X-Registry-Auth, as the docker CLI sends them; the daemon talks to the registry.

import type { IncomingMessage } from "node:http";
import type { Command } from "commander";
import { act, add, apiClient, err, out, type CommandContext } from "../command.js";
import { CliError, DaemonError, UsageError } from "../errors.js";

const enc = encodeURIComponent;

/** pull and push: at top level and under `shoal image`. */
export function pullPushCommands(parent: Command): void {
  add(parent, "pull")
    ?.description("Download an image from a registry")
    .argument("<name>", "NAME[:TAG|@DIGEST]")
    .option("-a, --all-tags", "Download all tagged images in the repository")
    .option("--platform <string>", "Set platform if server is multi-platform capable")
    .option("-q, --quiet", "Suppress verbose output")
    .action(act(pull));

  add(parent, "push")
    ?.description("Upload an image to a registry")
    .argument("<name>", "NAME[:TAG]")
    .option("-a, --all-tags", "Push all tags of an image to the repository")
    .option("-q, --quiet", "Suppress verbose output")
    .action(act(push));
}

/** login and logout (top level only). */
export function loginCommands(program: Command): void {
  add(program, "login")
    ?.description("Log in to a registry (Docker Hub when no server is given)")
    .argument("[server]")
    .option("-u, --username <string>", "Username")
    .option("-p, --password <string>", "Password")
    .option("--password-stdin", "Take the password from stdin")
    .action(act(login));

  add(program, "logout")
    ?.description("Log out from a registry (Docker Hub when no server is given)")
    .argument("[server]")
    .action(act(logout));
}

async function showProgress(res: IncomingMessage, quiet: boolean): Promise<unknown[]> {
  const { ProgressRenderer } = await import("../progress.js");
  const sink = quiet ? { write: () => true, isTTY: false } : process.stdout;
  const renderer = new ProgressRenderer(sink);
  await renderer.consume(res);
  return renderer.aux;
}

async function pull(
  ctx: CommandContext<{ platform?: string; quiet?: boolean; allTags?: boolean }>,
): Promise<number> {
  const [name] = ctx.args as [string];
  const { familiarName, fullString, parseReference, withDefaultTag } =
    await import("../../shared/reference.js");
  const { registryAuthHeader } = await import("../config-file.js");
  const parsed = parseReference(name);
  if (ctx.flags.allTags) {
    if (parsed.tag !== undefined || parsed.digest !== undefined)
      throw new Error(
        `tag can't be used with --all-tags/-a: name only the repository (${familiarName(parsed)})`,
      );
    // No tag at all: the daemon pulls every tag the registry lists (as dockerd does).
    const res = await (
      await apiClient(ctx.host)
    ).stream("POST", "/images/create", {
      query: { fromImage: familiarName(parsed), platform: ctx.flags.platform },
      headers: await registryAuthHeader(parsed.domain),
    });
    await showProgress(res, Boolean(ctx.flags.quiet));
    out(`${familiarName(parsed)}\n`);
    return 0;
  }
  if (parsed.tag === undefined && parsed.digest === undefined && !ctx.flags.quiet)
    out("Using default tag: latest\n");
  const ref = withDefaultTag(parsed);
  const res = await (
    await apiClient(ctx.host)
  ).stream("POST", "/images/create", {
    query: {
      fromImage: familiarName(ref),
      tag: ref.digest ?? ref.tag,
      platform: ctx.flags.platform,
    },
    headers: await registryAuthHeader(ref.domain),
  });
  await showProgress(res, Boolean(ctx.flags.quiet));
  out(`${fullString(ref)}\n`);
  return 0;
}

async function push(ctx: CommandContext<{ allTags?: boolean; quiet?: boolean }>): Promise<number> {
  const [name] = ctx.args as [string];
  const { familiarName, fullString, parseReference } = await import("../../shared/reference.js");
  const { registryAuthHeader } = await import("../config-file.js");
  const parsed = parseReference(name);
  if (parsed.digest !== undefined) throw new UsageError(`invalid reference "${name}": cannot push a digest`);
  if (ctx.flags.allTags && parsed.tag !== undefined)
    throw new UsageError(`tag can't be used with --all-tags/-a`);
  let tag = parsed.tag;
  if (tag === undefined && !ctx.flags.allTags) {
    if (!ctx.flags.quiet) out("Using default tag: latest\n");
    tag = "latest";
  }
  const res = await (
    await apiClient(ctx.host)
  ).stream("POST", `/images/${enc(familiarName(parsed))}/push`, {
    query: { tag },
    headers: await registryAuthHeader(parsed.domain),
  });
  await showProgress(res, Boolean(ctx.flags.quiet));
  if (ctx.flags.quiet) out(`${fullString({ ...parsed, tag })}\n`);
  return 0;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Ask on the terminal; with `hidden`, nothing typed is echoed. */
async function prompt(question: string, hidden: boolean): Promise<string> {
  if (!process.stdin.isTTY)
    throw new CliError(
      `cannot ask for ${question.replace(/: $/, "").toLowerCase()}: stdin is not a terminal`,
    );
  const { createInterface } = await import("node:readline/promises");
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  if (hidden) {
    // Keep the prompt, swallow the echo of what is typed.
    const write = (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput.bind(rl);
    (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
      if (s.startsWith(question)) write(question);
    };
  }
  try {
    return await rl.question(question);
  } finally {
    if (hidden) process.stderr.write("\n");
    rl.close();
  }
}

interface LoginFlags {
  username?: string;
  password?: string;
  passwordStdin?: boolean;
}

async function login(ctx: CommandContext<LoginFlags>): Promise<number> {
  const [server] = ctx.args as [string | undefined];
  const f = ctx.flags;
  if (f.password !== undefined && f.passwordStdin)
    throw new UsageError("--password and --password-stdin are mutually exclusive");
  if (f.passwordStdin && !f.username) throw new UsageError("must provide --username with --password-stdin");
  const { registryHostOf } = await import("../../shared/registry-auth.js");
  const { configPath, readConfigFile, storeCredentials, writeConfigFile } = await import("../config-file.js");
  const host = registryHostOf(server);
  let password = f.password;
  if (password !== undefined)
    err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n");
  if (f.passwordStdin) password = (await readStdin()).replace(/\r?\n$/, "");
  const username = f.username ?? (await prompt("Username: ", false)).trim();
  if (!username) throw new CliError("Error: Non-null Username Required");
  if (password === undefined) password = await prompt("Password: ", true);
  if (!password) throw new CliError("Error: Password Required");
  let answer: { Status?: string; IdentityToken?: string };
  try {
    answer = await (
      await apiClient(ctx.host)
    ).json("POST", "/auth", {
      body: { username, password, serveraddress: server ?? host },
    });
  } catch (e) {
    if (e instanceof DaemonError) throw new CliError(e.display);
    throw e;
  }
  const path = configPath();
  const config = await readConfigFile(path);
  await writeConfigFile(
    storeCredentials(config, host, { username, password, identitytoken: answer?.IdentityToken || undefined }),
    path,
  );
  err(`WARNING! Your password will be stored unencrypted in ${path}.\n`);
  out(`${answer?.Status || "Login Succeeded"}\n`);
  return 0;
}

async function logout(ctx: CommandContext): Promise<number> {
  const [server] = ctx.args as [string | undefined];
  const { registryHostOf } = await import("../../shared/registry-auth.js");
  const { configPath, eraseCredentials, readConfigFile, writeConfigFile } = await import("../config-file.js");
  const host = registryHostOf(server);
  const path = configPath();
  const { config, removed } = eraseCredentials(await readConfigFile(path), host);
  if (!removed) {
    out(`Not logged in to ${server ?? host}\n`);
    return 0;
  }
  out(`Removing login credentials for ${server ?? host}\n`);
  await writeConfigFile(config, path);
  return 0;
}
