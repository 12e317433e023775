#!/usr/bin/env node
// The shoal CLI: builds the program and adds the command files under commands/, each of which
// declares its commands, their flags and their handlers (see command.ts). Only commander and
// the command files the command line names load up front, and a handler imports what it needs
// when it runs, so `shoal run --rm busybox true` pays for nothing it does not use.

import { Command, CommanderError } from "commander";
import { group, lastExitCode, select, setExitCode } from "./command.js";

/**
 * The command words on the command line (`shoal container ls` → ["container", "ls"]), so
 * that only those commands get defined: defining all of them costs a few milliseconds of
 * every start-up. Without words (help, -v), everything is defined.
 */
function commandWords(argv: string[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const a = argv[i];
    if (a === "-H" || a === "--host") i++;
    else if (a.startsWith("-")) {
      if (words.length === 0 && !a.startsWith("--host=") && !/^-H./.test(a)) return [];
      if (words.length === 1) break;
    } else words.push(a);
  }
  return words;
}

/** The top-level words (commands and groups) each command file declares. */
const wordsOf = {
  container: [
    "run",
    "create",
    "start",
    "stop",
    "restart",
    "kill",
    "rm",
    "ps",
    "wait",
    "logs",
    "rename",
    "exec",
    "container",
  ],
  image: ["images", "rmi", "tag", "load", "save", "pull", "push", "build", "import", "image"],
  system: ["version", "info", "events", "system"],
  inspect: ["inspect"],
  registry: ["login", "logout"],
  network: ["port", "network"],
  cluster: ["cluster"],
  service: ["service"],
  node: ["node"],
  volume: ["volume"],
} satisfies Record<string, string[]>;
type CommandFile = keyof typeof wordsOf;

/** The files that declare top-level commands; the others only a group's subcommands. */
const topLevelFiles: CommandFile[] = ["container", "image", "system", "inspect", "registry", "network"];

const fileOf = new Map<string, CommandFile>();
for (const [file, words] of Object.entries(wordsOf))
  for (const w of words) fileOf.set(w, file as CommandFile);

const groups = new Set(["container", "image", "system", "network", "volume", "cluster", "service", "node"]);

async function buildProgram(argv: string[]): Promise<Command> {
  let selected = commandWords(argv);
  // Unknown words (typos, `help`) define everything so that help and suggestions are complete.
  if (selected.length > 0 && !fileOf.has(selected[0])) selected = [];
  // A group without a known subcommand word (`shoal container --help`) shows all of them.
  if (selected.length > 0 && groups.has(selected[0]) && selected.length < 2) selected = [selected[0]];
  select(selected);
  const needed = new Set(selected.length > 0 ? [fileOf.get(selected[0])] : topLevelFiles);
  const load = <T>(file: CommandFile, importer: () => Promise<T>): Promise<T | undefined> =>
    needed.has(file) ? importer() : Promise.resolve(undefined);
  const [container, image, system, inspect, registry, network, cluster, service, node, volume] =
    await Promise.all([
      load("container", () => import("./commands/container.js")),
      load("image", () => import("./commands/image.js")),
      load("system", () => import("./commands/system.js")),
      load("inspect", () => import("./commands/inspect.js")),
      load("registry", () => import("./commands/registry.js")),
      load("network", () => import("./commands/network.js")),
      load("cluster", () => import("./commands/cluster.js")),
      load("service", () => import("./commands/service.js")),
      load("node", () => import("./commands/node.js")),
      load("volume", () => import("./commands/volume.js")),
    ]);

  const program = new Command("shoal");
  program
    .description("A Docker-compatible container engine and orchestrator")
    .usage("[OPTIONS] COMMAND")
    .helpOption("--help", "Print usage")
    .exitOverride()
    .enablePositionalOptions()
    .option("-H, --host <host>", "Daemon socket to connect to (unix:///path or tcp://host:port)")
    .option("-v, --version", "Print version information and quit")
    .argument("[command]")
    .action(async (command: string | undefined, opts: { version?: boolean }) => {
      if (command !== undefined && command !== "help") {
        process.stderr.write(`shoal: '${command}' is not a shoal command.\nSee 'shoal --help'\n`);
        setExitCode(1);
        return;
      }
      if (command === "help" || !opts.version) program.help();
      const { clientVersion } = await import("./commands/system.js");
      process.stdout.write(`shoal version ${clientVersion()}\n`);
    });

  container?.containerCommands(program, false);
  image?.imageCommands(program, false);
  system?.systemCommands(program);
  inspect?.inspectCommand(program);
  registry?.loginCommands(program);
  network?.portCommand(program);

  group(program, "cluster", "Manage the cluster (Docker's swarm)", cluster?.clusterCommands);
  group(program, "service", "Manage services", service?.serviceCommands);
  group(program, "node", "Manage cluster nodes", node?.nodeCommands);
  group(program, "network", "Manage networks", network?.networkCommands);
  group(program, "volume", "Manage volumes", volume?.volumeCommands);
  group(program, "container", "Manage containers", (cmd) => container?.containerCommands(cmd, true));
  group(program, "image", "Manage images", (cmd) => image?.imageCommands(cmd, true));
  group(program, "system", "Manage shoal", system?.systemCommands);
  return program;
}

async function report(e: unknown): Promise<number> {
  const { CliError, DaemonError } = await import("./errors.js");
  if (e instanceof DaemonError) {
    process.stderr.write(`${e.display}\n`);
    return 1;
  }
  if (e instanceof CliError) {
    process.stderr.write(`${e.message}\n`);
    return e.exitCode;
  }
  const { TemplateError } = await import("./format/template.js");
  if (e instanceof TemplateError) {
    process.stderr.write(`${e.message}\n`);
    return 1;
  }
  // Invalid values found by shared/ helpers are usage errors, as docker exits 125 on those.
  if (e instanceof Error && e.name === "ShoalError") {
    process.stderr.write(`${e.message}\n`);
    return 125;
  }
  process.stderr.write(`Error: ${e instanceof Error ? e.message : String(e)}\n`);
  return 1;
}

async function main(): Promise<void> {
  // `shoal logs x | head` closes the pipe early; that is not an error worth a stack trace.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0);
  });
  let exitCode: number;
  try {
    await (await buildProgram(process.argv.slice(2))).parseAsync(process.argv);
    exitCode = lastExitCode();
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version exit 0; flag errors exit 125 like docker's.
      exitCode = e.exitCode === 0 ? 0 : 125;
    } else {
      exitCode = await report(e);
    }
  }
  // Attach and wait connections may still be open; stdout writes to pipes, files and TTYs
  // are synchronous on Linux, so exiting now loses no output.
  process.exit(exitCode);
}

void main();
