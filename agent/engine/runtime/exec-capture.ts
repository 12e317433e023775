// One non-interactive process run inside a running container with `runtime exec`, its output
// captured up to a limit: what a health check needs. It joins the container's namespaces and
// cgroup (runc does both for exec), runs as the container's process spec says (user, env, cwd,
// capabilities), and is killed when it outlives its timeout. `docker exec` is built elsewhere.
import { spawn } from "node:child_process";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { constants } from "node:os";
import { join } from "node:path";
import type { Process, Spec } from "./oci-types.js";
import { runtimeMessage } from "./runc.js";
import { readPidFile } from "./pid-file.js";

export interface CaptureOptions {
  runtimePath: string;
  runtimeRoot: string;
  id: string;
  /** The container's config.json: the process spec the command runs with. */
  specPath: string;
  /** A private folder of this container's run for the process file and pid file. */
  workDir: string;
  argv: string[];
  timeoutMs: number;
  /** Output kept (stdout and stderr interleaved, as they come); the rest is dropped and "..." added. */
  maxBytes: number;
  signal?: AbortSignal;
}

export interface CaptureResult {
  /** The command's exit code; -1 when it could not be started or was killed at its timeout. */
  exitCode: number;
  output: string;
  timedOut: boolean;
  /** Set when the runtime could not start the command (its reason is in output). */
  startFailed: boolean;
}

/** Bytes up to a limit; more is counted as lost, as dockerd's limitedBuffer does. */
class LimitedBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly max: number) {}
  write(b: Buffer): void {
    const keep = Math.min(this.max - this.size, b.length);
    if (keep > 0) {
      this.chunks.push(b.subarray(0, keep));
      this.size += keep;
    }
    if (keep < b.length) this.truncated = true;
  }
  toString(): string {
    return Buffer.concat(this.chunks).toString("utf8") + (this.truncated ? "..." : "");
  }
}

/** After the runtime exits, how long its pipes may stay open (a child left behind holds them). */
const DRAIN_MS = 200;

/** The processes below pid, found through /proc before anything is killed (orphans would be reparented). */
async function descendants(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for (const name of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = parents.get(ppid) ?? [];
      list.push(Number(name));
      parents.set(ppid, list);
    } catch {
      // Gone meanwhile.
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of parents.get(queue.shift() as number) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

function kill(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

export async function execCapture(o: CaptureOptions): Promise<CaptureResult> {
  const spec = JSON.parse(await readFile(o.specPath, "utf8")) as Spec;
  const proc: Process = { ...spec.process, terminal: false, args: o.argv };
  const processFile = join(o.workDir, "exec-capture.json");
  const pidFile = join(o.workDir, "exec-capture.pid");
  await rm(pidFile, { force: true });
  await writeFile(processFile, JSON.stringify(proc), { mode: 0o600 });
  const out = new LimitedBuffer(o.maxBytes);
  const child = spawn(
    o.runtimePath,
    ["--root", o.runtimeRoot, "exec", "--process", processFile, "--pid-file", pidFile, o.id],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout.on("data", (b: Buffer) => out.write(b));
  child.stderr.on("data", (b: Buffer) => out.write(b));
  let timedOut = false;
  let aborted = false;
  const stopIt = async (): Promise<void> => {
    // The command and what it started, not only the runtime: runc exec does not kill them when
    // it dies, and a `sleep` left by a shell would live on in the container.
    const pid = await readPidFile(pidFile);
    if (pid > 0) {
      const below = await descendants(pid);
      kill(pid);
      for (const p of below) kill(p);
    }
    if (child.pid) kill(child.pid);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    void stopIt();
  }, o.timeoutMs);
  const onAbort = (): void => {
    aborted = true;
    void stopIt();
  };
  o.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const code = await new Promise<number>((resolve) => {
      child.once("error", () => resolve(-1));
      child.once("exit", (c, sig) => resolve(c ?? (sig ? 128 + (constants.signals[sig] ?? 0) : -1)));
    });
    await drain(child.stdout, child.stderr);
    const started = (await readPidFile(pidFile)) > 0;
    if (timedOut || aborted) return { exitCode: -1, output: out.toString(), timedOut, startFailed: false };
    if (!started)
      return {
        exitCode: -1,
        output: `OCI runtime exec failed: ${runtimeMessage(out.toString())}`,
        timedOut: false,
        startFailed: true,
      };
    return { exitCode: code, output: out.toString(), timedOut: false, startFailed: false };
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener("abort", onAbort);
    await Promise.all([rm(processFile, { force: true }), rm(pidFile, { force: true })]);
  }
}

/** Wait for both pipes to end, but not for ever: a process the command left running may hold them. */
async function drain(...streams: NodeJS.ReadableStream[]): Promise<void> {
  const ended = streams.map(
    (s) =>
      new Promise<void>((resolve) => {
        const r = s as NodeJS.ReadableStream & { readableEnded?: boolean; destroyed?: boolean };
        if (r.readableEnded || r.destroyed) return resolve();
        s.once("end", () => resolve());
        s.once("close", () => resolve());
      }),
  );
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(ended),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, DRAIN_MS))),
  ]);
  if (timer) clearTimeout(timer);
  for (const s of streams) (s as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
}
