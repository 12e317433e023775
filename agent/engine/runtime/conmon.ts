import { spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { internal, invalid, ShoalError } from "../../../shared/errors.js";
import { runtimeMessage } from "./runc.js";
import { readPidFile } from "./pid-file.js";

export interface ConmonOptions {
  conmonPath: string;
  runtimePath: string;
  runtimeRoot: string;
  id: string;
  name: string;
  bundlePath: string;
  /** k8s-file log written by conmon; undefined: keep no log (`--log-driver none`). */
  logPath?: string;
  /** conmon starts a new file before one would pass this many bytes (`--log-opt max-size`). */
  logSizeMax?: number;
  /** conmon writes `<exitDir>/<id>` holding the exit code when the container ends. */
  exitDir: string;
  /** Per-run folder: conmon's own pid file, the container pid file, `exit` and `oom` markers. */
  runDir: string;
  /** Folder of attach socket links; the socket itself lives in the bundle (`<bundle>/attach`). */
  socketDir: string;
  /** Short, unique name of the attach link: `<socketDir>/<attachName>/attach` must fit in 108 bytes. */
  attachName: string;
  tty: boolean;
  stdin: boolean;
  /**
   * Docker's StdinOnce: the first attached client's end of input closes the process's stdin.
   * Otherwise conmon gets --leave-stdin-open and stdin outlives every client (`run -dit`).
   */
  stdinOnce?: boolean;
  timeoutMs?: number;
}

export interface ConmonStarted {
  /** The container's init process, as the host sees it. */
  pid: number;
  conmonPid: number;
}

export const conmonPidFile = (runDir: string): string => `${runDir}/conmon.pid`;
const containerPidFile = (runDir: string): string => `${runDir}/pidfile`;

function conmonArgs(o: ConmonOptions): string[] {
  const args = [
    "--api-version",
    "1",
    "-c",
    o.id,
    "-u",
    o.attachName,
    "-n",
    o.name,
    "-r",
    o.runtimePath,
    "-b",
    o.bundlePath,
    "-p",
    containerPidFile(o.runDir),
    "-P",
    conmonPidFile(o.runDir),
    "-l",
    o.logPath === undefined ? "none" : `k8s-file:${o.logPath}`,
    "--exit-dir",
    o.exitDir,
    "--persist-dir",
    o.runDir,
    "--socket-dir-path",
    o.socketDir,
    "--log-level",
    "error",
    // The `=` form: glib would otherwise read "--root" as an option of conmon's own.
    `--runtime-arg=--root=${o.runtimeRoot}`,
  ];
  if (o.logPath !== undefined && o.logSizeMax !== undefined)
    args.push("--log-size-max", String(o.logSizeMax));
  // With a TTY conmon's stdin is the terminal: no -i, or a client's disconnect would make it
  // close the terminal itself (dockerd never closes a TTY's input when a client goes). Without
  // one, -i gives the process a stdin pipe.
  if (o.tty) args.push("-t");
  else if (o.stdin) {
    args.push("-i");
    if (!o.stdinOnce) args.push("--leave-stdin-open");
  }
  return args;
}

/** The first JSON line conmon writes on the sync pipe: `{"data": pid}` or `{"data": -1, "message": ...}`. */
interface SyncMessage {
  data?: number;
  pid?: number;
  message?: string;
}

function readFirstLine(stream: Readable, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(
      () => finish(new Error(`no answer from conmon within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("error", onError);
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString("utf8");
      const nl = buf.indexOf("\n");
      if (nl >= 0) {
        buf = buf.slice(0, nl);
        finish();
      }
    };
    const onEnd = (): void => finish();
    const onError = (e: Error): void => finish(e);
    stream.on("data", onData);
    stream.on("end", onEnd);
    stream.on("error", onError);
  });
}

/** Errors a user can fix by changing the command or image answer 400, like Docker; the rest are ours. */
function classifyRuntimeError(message: string): ShoalError {
  const text = `OCI runtime create failed: ${message}`;
  if (
    /executable file not found|no such file or directory|permission denied|not a directory|exec format error/i.test(
      message,
    )
  ) {
    return invalid(text);
  }
  return internal(text);
}

/** Docker's exit codes for a command that could not be run: 127 not found, 126 not executable. */
export function exitCodeForStartError(message: string): number {
  if (/executable file not found|no such file or directory/i.test(message)) return 127;
  if (/permission denied|exec format error|is a directory/i.test(message)) return 126;
  return 128;
}

/**
 * Start conmon for a container. conmon forks into its own session (so the container outlives the
 * daemon), runs `runtime create`, and reports the container pid or the runtime's error on the sync
 * pipe (fd 3). The container is left in the runtime's "created" state; `runtime start` runs it.
 */
export async function conmonCreate(o: ConmonOptions): Promise<ConmonStarted> {
  const child = spawn(o.conmonPath, conmonArgs(o), {
    cwd: o.runDir,
    detached: true,
    stdio: ["ignore", "pipe", "pipe", "pipe"],
    env: {
      PATH: process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      _OCI_SYNCPIPE: "3",
    },
  });
  let output = "";
  child.stdout?.on("data", (c: Buffer) => (output += c.toString("utf8")));
  child.stderr?.on("data", (c: Buffer) => (output += c.toString("utf8")));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    // Not "close": conmon's daemonised half keeps the sync pipe open for its whole life.
    child.once("exit", (code) => resolve(code));
  });
  const sync = child.stdio[3] as Readable;
  try {
    const [line, code] = await Promise.all([
      readFirstLine(sync, o.timeoutMs ?? 90_000),
      exited.catch((e: unknown) => {
        throw internal(`cannot run conmon (${o.conmonPath}): ${String(e)}`, e);
      }),
    ]);
    if (line === "") {
      throw internal(
        `conmon exited (code ${code}) without starting container ${o.id}: ${output.trim() || "no message"}`,
      );
    }
    let msg: SyncMessage;
    try {
      msg = JSON.parse(line) as SyncMessage;
    } catch {
      throw internal(`conmon sent an unreadable answer for container ${o.id}: ${line}`);
    }
    const pid = msg.data ?? msg.pid ?? -1;
    if (pid <= 0) throw classifyRuntimeError(runtimeMessage(msg.message ?? "unknown error"));
    const conmonPid = await readPidFile(conmonPidFile(o.runDir));
    return { pid, conmonPid };
  } finally {
    sync.destroy();
    child.stdout?.destroy();
    child.stderr?.destroy();
  }
}
