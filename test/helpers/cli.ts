import { execFile } from "node:child_process";
import { shoalPath } from "./daemon.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runProcess(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  input?: Buffer,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { env, maxBuffer: 256 * 1024 * 1024, encoding: "buffer" },
      (err, stdout, stderr) => {
        const code =
          err && typeof (err as { code?: unknown }).code === "number"
            ? (err as { code: number }).code
            : err
              ? 1
              : 0;
        if (err && typeof (err as { code?: unknown }).code === "string") return reject(err);
        resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
      },
    );
    if (input) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

/** Run the shoal CLI against a test daemon's socket. */
export function shoal(
  socket: string,
  args: string[],
  input?: Buffer,
  env: NodeJS.ProcessEnv = {},
): Promise<CliResult> {
  return runProcess(
    process.execPath,
    [shoalPath, "-H", `unix://${socket}`, ...args],
    { ...process.env, NO_COLOR: "1", ...env },
    input,
  );
}

/** Run the real docker CLI against a test daemon's socket. */
export function docker(
  socket: string,
  args: string[],
  input?: Buffer,
  env: NodeJS.ProcessEnv = {},
): Promise<CliResult> {
  return runProcess(
    "docker",
    args,
    { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: "/tmp/shoal-docker-config", ...env },
    input,
  );
}
