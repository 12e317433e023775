// `shoal exec`: docker exec's flags and flow (create, start with the connection hijacked,
// exit code from the exec's inspect). With -t the local terminal goes raw and its size follows
// the window (SIGWINCH → /exec/{id}/resize); the detach keys are the daemon's to watch for.
import { readFile } from "node:fs/promises";
import type { Socket } from "node:net";
import type { Command } from "commander";
import type { ApiClient } from "../client.js";
import { act, apiClient, collect, type CommandContext } from "../command.js";
import { CliError, UsageError } from "../errors.js";

interface ExecFlags {
  interactive?: boolean;
  tty?: boolean;
  detach?: boolean;
  env?: string[];
  envFile?: string[];
  user?: string;
  workdir?: string;
  privileged?: boolean;
  detachKeys?: string;
}

/** Declares `exec` on the command `add(parent, "exec")` made (undefined: not on this command line). */
export function execCommand(cmd: Command | undefined): void {
  cmd
    ?.description("Execute a command in a running container")
    .argument("<container>")
    .argument("<command...>")
    .passThroughOptions()
    .option("-i, --interactive", "Keep STDIN open even if not attached")
    .option("-t, --tty", "Allocate a pseudo-TTY")
    .option("-d, --detach", "Detached mode: run command in the background")
    .option("-e, --env <list>", "Set environment variables", collect)
    .option("--env-file <list>", "Read in a file of environment variables", collect)
    .option("-u, --user <string>", "Username or UID (format: <name|uid>[:<group|gid>])")
    .option("-w, --workdir <string>", "Working directory inside the container")
    .option("--privileged", "Give extended privileges to the command")
    .option("--detach-keys <string>", "Override the key sequence for detaching a container")
    .action(act(execHandler));
}

async function envOf(flags: ExecFlags): Promise<string[]> {
  const { parseEnvFile, parseEnvFlag } = await import("../options.js");
  const lookup = (k: string): string | undefined => process.env[k];
  const env: string[] = [];
  for (const path of flags.envFile ?? []) {
    const text = await readFile(path, "utf8").catch((e: unknown) => {
      throw new UsageError(`cannot read env file ${path}: ${(e as Error).message}`);
    });
    env.push(...parseEnvFile(text, path, lookup));
  }
  for (const e of flags.env ?? []) env.push(parseEnvFlag(e, lookup));
  return env;
}

async function execHandler(ctx: CommandContext<ExecFlags>): Promise<number> {
  const [container, command] = ctx.args as [string, string[]];
  const f = ctx.flags;
  const tty = f.tty === true;
  const stdin = f.interactive === true && !f.detach;
  if (!f.detach && tty && !process.stdin.isTTY && f.interactive)
    throw new UsageError("the input device is not a TTY");
  const client = await apiClient(ctx.host);
  const size: [number, number] | undefined =
    tty && process.stdout.isTTY ? [process.stdout.rows, process.stdout.columns] : undefined;
  const created = await client.json<{ Id: string }>(
    "POST",
    `/containers/${encodeURIComponent(container)}/exec`,
    {
      body: {
        User: f.user ?? "",
        Privileged: f.privileged === true,
        Tty: tty,
        ...(size ? { ConsoleSize: size } : {}),
        AttachStdin: stdin,
        AttachStdout: !f.detach,
        AttachStderr: !f.detach,
        Detach: f.detach === true,
        DetachKeys: f.detachKeys ?? "",
        Env: await envOf(f),
        WorkingDir: f.workdir ?? "",
        Cmd: command,
      },
    },
  );
  const id = created.Id;
  if (f.detach) {
    await client.call("POST", `/exec/${id}/start`, { body: { Detach: true, Tty: tty } });
    return 0;
  }
  const socket = await client.hijackJson(`/exec/${id}/start`, {
    Detach: false,
    Tty: tty,
    ...(size ? { ConsoleSize: size } : {}),
  });
  await stream(client, id, socket, { tty, stdin });
  const info = await client.json<{ ExitCode: number | null; Running: boolean }>("GET", `/exec/${id}/json`);
  return info.ExitCode ?? 0;
}

async function stream(
  client: ApiClient,
  id: string,
  socket: Socket,
  o: { tty: boolean; stdin: boolean },
): Promise<void> {
  const raw = o.tty && process.stdin.isTTY;
  const resize = (): void => {
    if (!process.stdout.isTTY) return;
    void client
      .call("POST", `/exec/${id}/resize`, {
        query: { h: String(process.stdout.rows), w: String(process.stdout.columns) },
      })
      .catch(() => undefined);
  };
  if (raw) {
    process.stdin.setRawMode(true);
    process.on("SIGWINCH", resize);
    resize();
  }
  if (o.stdin) {
    process.stdin.on("data", (c: Buffer) => socket.write(c));
    // Without a TTY the end of our input closes the process's stdin (the daemon does on our half-close).
    process.stdin.on("end", () => socket.end());
    process.stdin.resume();
  }
  try {
    if (o.tty) {
      const { copyRaw } = await import("../stdcopy.js");
      await copyRaw(socket, process.stdout);
    } else {
      const { demuxTo } = await import("../stdcopy.js");
      await demuxTo(socket, process.stdout, process.stderr);
    }
  } catch (e) {
    throw new CliError((e as Error).message);
  } finally {
    if (raw) {
      process.stdin.setRawMode(false);
      process.off("SIGWINCH", resize);
    }
    process.stdin.pause();
    process.stdin.unref?.();
    socket.destroy();
  }
}
