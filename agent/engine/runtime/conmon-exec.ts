// conmon in exec mode (`conmon --exec --exec-attach --exec-process-spec ...`), as podman runs it
// (libpod/oci_conmon_exec_common.go): conmon runs `runc exec --detach` for the process, receives
// the terminal's console fd from runc when there is one, serves the process's stdio on its own
// attach socket, takes resizes through its own ctl fifo, and reports the process's pid and then
// its exit code on the sync pipe. Three pipes drive it:
//   fd 3 sync:   {"data": pid} once runc exec ran (or {"data": -1, "message": ...}), then {"data": exit code};
//   fd 4 start:  written once so conmon goes on past its set-up, and once more to let runc exec run;
//   fd 5 attach: {"data": 0} once the attach socket listens, so a client can connect before any output.
import { spawn, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { internal, invalid, type ShoalError } from "../../../shared/errors.js";
import { runtimeMessage } from "./runc.js";
import { readPidFile } from "./pid-file.js";

export interface ConmonExecOptions {
  conmonPath: string;
  runtimePath: string;
  runtimeRoot: string;
  containerId: string;
  /** conmon's -u: names the attach link `<socketDir>/<attachName>`; short, so the socket path fits in 108 bytes. */
  attachName: string;
  /** The session's folder: conmon's bundle (attach socket, ctl fifo), pid files and `exit` marker. */
  sessionDir: string;
  socketDir: string;
  processSpecPath: string;
  tty: boolean;
  stdin: boolean;
  /** Limit for each set-up step (attach socket, runc exec). */
  timeoutMs?: number;
}

interface SyncMessage {
  data?: number;
  message?: string;
}

export const execPidFile = (sessionDir: string): string => join(sessionDir, "pid");
export const execConmonPidFile = (sessionDir: string): string => join(sessionDir, "conmon.pid");
export const execExitFile = (sessionDir: string): string => join(sessionDir, "exit");
/** Where conmon serves the session's stdio (through the short link, as for containers). */
export const execAttachPath = (socketDir: string, attachName: string): string =>
  join(socketDir, attachName, "attach");

function conmonExecArgs(o: ConmonExecOptions): string[] {
  const args = [
    "--api-version",
    "1",
    "-c",
    o.containerId,
    "-u",
    o.attachName,
    "-r",
    o.runtimePath,
    "-b",
    o.sessionDir,
    "-p",
    execPidFile(o.sessionDir),
    "-P",
    execConmonPidFile(o.sessionDir),
    // Docker keeps no log of an exec's output: what nobody is attached to is dropped.
    "-l",
    "none",
    "--persist-dir",
    o.sessionDir,
    "--socket-dir-path",
    o.socketDir,
    "--log-level",
    "error",
    `--runtime-arg=--root=${o.runtimeRoot}`,
    "-e",
    "--exec-attach",
    "--exec-process-spec",
    o.processSpecPath,
  ];
  if (o.tty) args.push("-t");
  if (o.stdin) args.push("-i");
  return args;
}

/** JSON lines from one of conmon's pipes, one at a time. */
class LineReader {
  private buf = "";
  private readonly lines: string[] = [];
  private waiter?: (line: string | undefined) => void;
  private ended = false;

  constructor(stream: Readable) {
    stream.on("data", (c: Buffer) => {
      this.buf += c.toString("utf8");
      let nl: number;
      while ((nl = this.buf.indexOf("\n")) >= 0) {
        this.push(this.buf.slice(0, nl));
        this.buf = this.buf.slice(nl + 1);
      }
    });
    const end = (): void => {
      if (this.ended) return;
      this.ended = true;
      if (this.buf.trim() !== "") this.push(this.buf);
      this.buf = "";
      this.waiter?.(undefined);
      this.waiter = undefined;
    };
    stream.on("end", end);
    stream.on("close", end);
    stream.on("error", end);
  }

  private push(line: string): void {
    if (line.trim() === "") return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(line);
    } else this.lines.push(line);
  }

  /** The next line; undefined when the pipe ended first or the time ran out. */
  next(timeoutMs?: number): Promise<string | undefined> {
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              this.waiter = undefined;
              resolve(undefined);
            }, timeoutMs);
      this.waiter = (line) => {
        if (timer) clearTimeout(timer);
        resolve(line);
      };
    });
  }
}

function parseSync(line: string): SyncMessage {
  try {
    return JSON.parse(line) as SyncMessage;
  } catch {
    return { data: -1, message: `unreadable answer from conmon: ${line}` };
  }
}

/** A runtime failure a user can fix (bad command, not executable, bad folder) is a 400, as in dockerd. */
function execFailure(message: string): ShoalError {
  const text = `OCI runtime exec failed: ${message}`;
  if (
    /executable file not found|no such file or directory|permission denied|not a directory|exec format error|is a directory/i.test(
      message,
    )
  )
    return invalid(text);
  return internal(text);
}

/**
 * One exec session's conmon. `launch()` starts it and waits for its attach socket; the caller
 * may then connect to it (and resize the terminal) before `run()` lets runc exec go on and
 * resolves with the process's pid. `exitCode` resolves when the process ended.
 */
export class ConmonExec {
  private child?: ChildProcess;
  private sync?: LineReader;
  private attachPipe?: LineReader;
  private startPipe?: Writable;
  private output = "";
  private exitResolve!: (code: number) => void;
  /** The process's exit code (128+n for a signal, as conmon reports it). */
  readonly exitCode: Promise<number>;
  conmonPid = 0;

  constructor(private readonly o: ConmonExecOptions) {
    this.exitCode = new Promise((r) => (this.exitResolve = r));
  }

  private get timeoutMs(): number {
    return this.o.timeoutMs ?? 30_000;
  }

  async launch(): Promise<void> {
    const child = spawn(this.o.conmonPath, conmonExecArgs(this.o), {
      cwd: this.o.sessionDir,
      detached: true,
      stdio: ["ignore", "pipe", "pipe", "pipe", "pipe", "pipe"],
      env: {
        PATH: process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        _OCI_SYNCPIPE: "3",
        _OCI_STARTPIPE: "4",
        _OCI_ATTACHPIPE: "5",
      },
    });
    this.child = child;
    child.stdout?.on("data", (c: Buffer) => (this.output += c.toString("utf8")));
    child.stderr?.on("data", (c: Buffer) => (this.output += c.toString("utf8")));
    const spawned = new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", (e) =>
        reject(internal(`cannot run conmon (${this.o.conmonPath}): ${String(e)}`, e)),
      );
    });
    // Node types only five stdio entries; the sixth is there all the same.
    const stdio = child.stdio as unknown as Array<Readable | Writable | null>;
    this.sync = new LineReader(stdio[3] as Readable);
    this.attachPipe = new LineReader(stdio[5] as Readable);
    this.startPipe = stdio[4] as Writable;
    this.startPipe.on("error", () => undefined);
    await spawned;
    // conmon blocks on this first message before it forks (podman moves it into a cgroup here).
    this.startPipe.write("0");
    const line = await this.attachPipe.next(this.timeoutMs);
    if (line === undefined) throw this.failure("conmon did not set up the exec session's attach socket");
    const msg = parseSync(line);
    if ((msg.data ?? -1) < 0) throw execFailure(runtimeMessage(msg.message ?? "unknown error"));
    this.conmonPid = await readPidFile(execConmonPidFile(this.o.sessionDir));
  }

  /** Let runc exec run; resolves with the process's pid (as the host sees it). */
  async run(): Promise<number> {
    if (!this.startPipe || !this.sync) throw internal("exec session not launched");
    this.startPipe.end("0");
    const line = await this.sync.next(this.timeoutMs);
    if (line === undefined) throw this.failure("conmon ended before the exec'd process started");
    const msg = parseSync(line);
    const pid = msg.data ?? -1;
    if (pid <= 0) throw execFailure(runtimeMessage(msg.message ?? "unknown error"));
    void this.followExit();
    return pid;
  }

  private async followExit(): Promise<void> {
    const line = await this.sync?.next();
    let code: number | undefined;
    if (line !== undefined) code = parseSync(line).data;
    // The pipe ended without a code (conmon was killed): its marker file, if it wrote one.
    if (code === undefined) code = await readExitMarker(this.o.sessionDir);
    this.dispose();
    this.exitResolve(code === undefined || code < 0 ? 255 : code);
  }

  private failure(what: string): ShoalError {
    const details = this.output.trim();
    return internal(`${what}${details ? `: ${runtimeMessage(details)}` : ""}`);
  }

  /** Stop conmon (and so runc exec) when the session is abandoned before it ran. */
  abort(): void {
    if (this.conmonPid > 0) {
      try {
        process.kill(this.conmonPid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    this.dispose();
  }

  /** Drop the pipes; conmon goes on by itself. */
  dispose(): void {
    const c = this.child;
    if (!c) return;
    for (const s of c.stdio as unknown as Array<Readable | Writable | null>) s?.destroy();
    c.unref();
  }
}

async function readExitMarker(sessionDir: string): Promise<number | undefined> {
  try {
    const text = (await readFile(execExitFile(sessionDir), "utf8")).trim();
    return /^-?\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}
