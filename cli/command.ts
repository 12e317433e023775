// What every file under commands/ uses to declare its commands next to their handlers, what
// a handler receives, and the helpers the handlers share. Start-up loads commander, this
// module, errors.ts and the command files the command line names; a handler imports all else
// it needs (the HTTP client, parsers, formatters) when it runs, so help pays for none of it.

import type { Command } from "commander";
import type { ApiClient } from "./client.js";
import { DaemonError, UsageError } from "./errors.js";

/** What every command handler receives. */
export interface CommandContext<F = Record<string, unknown>> {
  /** Positional arguments in declaration order (variadic ones as arrays). */
  args: unknown[];
  flags: F;
  /** -H/--host as given, before SHOAL_HOST/DOCKER_HOST fallbacks. */
  host: string | undefined;
}

export const out = (s: string | Buffer): void => {
  process.stdout.write(s);
};

export const err = (s: string | Buffer): void => {
  process.stderr.write(s);
};

type Handler<F> = (ctx: CommandContext<F>) => Promise<number>;

let exitCode = 0;

/** The exit code of the command that ran (0 when none did). */
export const lastExitCode = (): number => exitCode;

export function setExitCode(code: number): void {
  exitCode = code;
}

/** Commander hands (...positionals, options, command) to actions. */
export function act<F>(handler: Handler<F>): (...a: unknown[]) => Promise<void> {
  return async (...a: unknown[]) => {
    const cmd = a[a.length - 1] as Command;
    const flags = a[a.length - 2] as F;
    const args = a.slice(0, -2);
    const host = (cmd.optsWithGlobals() as { host?: string }).host;
    exitCode = await handler({ args, flags, host });
  };
}

let selected: string[] = [];

/** The command words (at most a group and its subcommand) that `add` defines; none: all. */
export function select(words: string[]): void {
  selected = words;
}

/**
 * Define a subcommand only when the command line may need it: defining all of them costs a
 * few milliseconds of every start-up.
 */
export function add(parent: Command, name: string, aliases: string[] = []): Command | undefined {
  const level = parent.parent ? 1 : 0;
  const word = selected[level];
  if (word !== undefined && word !== name && !aliases.includes(word)) return undefined;
  return parent.command(name);
}

/**
 * A group (`shoal network ...`): its command, and its subcommands only when the command line
 * names the group (the top-level help lists groups without them).
 */
export function group(
  program: Command,
  name: string,
  description: string,
  define?: (parent: Command) => void,
): void {
  const cmd = add(program, name)?.description(description);
  if (cmd && selected[0] === name) define?.(cmd);
}

/** Repeatable flags (`-e A -e B`) collect into an array. */
export const collect = (value: string, previous: string[] | undefined): string[] => [
  ...(previous ?? []),
  value,
];

/** The Engine API client for -H/--host (or SHOAL_HOST, DOCKER_HOST, the local socket). */
export async function apiClient(host: string | undefined): Promise<ApiClient> {
  const { clientFor } = await import("./client.js");
  return clientFor(host);
}

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
  const put = (k: string, v: string): void => {
    (map[k] ??= {})[v] = true;
  };
  for (const f of filters ?? []) {
    const eq = f.indexOf("=");
    if (eq <= 0) throw new UsageError(`bad format of filter "${f}" (expected name=value)`);
    put(f.slice(0, eq).trim().toLowerCase(), f.slice(eq + 1));
  }
  for (const [k, vs] of Object.entries(extra)) for (const v of vs) put(k, v);
  return Object.keys(map).length > 0 ? JSON.stringify(map) : undefined;
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
