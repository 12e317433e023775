import { execFile } from "node:child_process";

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** A failed helper binary: keeps its exit code and stderr so callers can show the tool's own words. */
export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly stdout: string,
  ) {
    super(`${command} failed (exit ${exitCode ?? "signal"}): ${stderr.trim() || stdout.trim()}`);
    this.name = "CommandError";
  }
}

/**
 * Run a helper binary (runc, mount, ip, ...) without blocking the event loop. Rejects with a
 * CommandError when it exits non-zero or cannot be started.
 */
export function runCommand(
  file: string,
  args: string[],
  options: { cwd?: string; timeoutMs?: number; input?: string } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        cwd: options.cwd,
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: 16 * 1024 * 1024,
        encoding: "utf8",
      },
      (error, stdout, stderr) => {
        if (error) {
          const code = typeof error.code === "number" ? error.code : null;
          const spawnProblem = typeof error.code === "string" ? `${error.code}: ${error.message}` : "";
          reject(new CommandError([file, ...args].join(" "), code, stderr || spawnProblem, stdout));
          return;
        }
        resolve({ stdout, stderr });
      },
    );
    if (options.input !== undefined) {
      // A child that exits before reading its input (nsenter into a namespace that just went
      // away) makes the write fail with EPIPE; its exit status already says what went wrong,
      // and an unhandled stream error would take the whole daemon down.
      child.stdin?.on("error", () => undefined);
      child.stdin?.end(options.input);
    }
  });
}
