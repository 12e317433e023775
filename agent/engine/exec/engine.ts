// `docker exec`: sessions created against a running container, started under conmon in exec
// mode (runtime/conmon-exec.ts), inspected for their exit code, resized through conmon's ctl
// fifo. Each session's files live in <exec-root>/exec/<id>/ from its start until its process
// ended; a start that fails leaves neither that folder nor a process behind.
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { conflict, internal, messageOf, notFound } from "../../../shared/errors.js";
import { newId } from "../../../shared/ids.js";
import { containerPaths, type EngineContext } from "../container/context.js";
import { pidAlive } from "../container/run.js";
import type { ContainerRecord } from "../container/types.js";
import { connectAttachSocket, resizeTerminal, type AttachSocket } from "../runtime/attach-socket.js";
import { exitCodeForStartError } from "../runtime/conmon.js";
import { ConmonExec, execAttachPath, execConmonPidFile } from "../runtime/conmon-exec.js";
import { readPidFile } from "../runtime/pid-file.js";
import { resolveUser } from "../runtime/user.js";
import type { ExecEngineApi, ExecRun } from "./api.js";
import { buildExecProcess } from "./process-spec.js";
import { ExecSessions, newSession, type ExecSession } from "./sessions.js";
import type { ExecInspect, ExecStartRequest } from "./types.js";
import { parseExecCreate } from "./validate.js";

const RESIZE_WAIT_MS = 10_000;
/** How long inspect waits for the exit code of a session whose output already ended. */
const EXIT_WAIT_MS = 5_000;
const GC_INTERVAL_MS = 60_000;

/** Docker's container event attributes: the container's labels, its image and name. */
function containerAttributes(rec: ContainerRecord): Record<string, string> {
  return { ...(rec.Config.Labels ?? {}), image: rec.Config.Image, name: rec.Name };
}

/** dockerd's action text: the entrypoint, a space, the arguments (so "exec_start: true " for no arguments). */
const commandText = (cmd: string[]): string => `${cmd[0]} ${cmd.slice(1).join(" ")}`;

/** Whether a process still runs and is in the container's cgroup (so a reused pid is never signalled). */
async function inContainer(pid: number, containerId: string): Promise<boolean> {
  if (pid <= 0) return false;
  try {
    return (await readFile(`/proc/${pid}/cgroup`, "utf8")).includes(containerId);
  } catch {
    return false;
  }
}

/** Wait for a process to end (a zombie counts as ended: its parent may be slow to reap it). */
async function pidGone(pid: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while ((await pidAlive(pid)) && Date.now() < until) await sleep(20);
}

export class ExecEngine implements ExecEngineApi {
  private readonly sessions = new ExecSessions();
  private readonly gcTimer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly ctx: EngineContext) {
    this.gcTimer = setInterval(() => {
      this.sessions.trimAll(Date.now());
      void this.sweep();
    }, GC_INTERVAL_MS);
    this.gcTimer.unref();
  }

  private get root(): string {
    return join(this.ctx.config.execRoot, "exec");
  }

  private sessionDir(id: string): string {
    return join(this.root, id);
  }

  /** The attach link's name: short (socket paths must fit in 108 bytes) and unlike a container's. */
  private attachName(id: string): string {
    return `x${id.slice(0, 15)}`;
  }

  private socketDir(containerId: string): string {
    return containerPaths(this.ctx, containerId).socketDir;
  }

  /** dockerd's checks and messages for a container an exec is made in or started in. */
  private requireRunning(rec: ContainerRecord): void {
    const s = rec.State.Status;
    if (s === "paused") throw conflict(`Container ${rec.Id} is paused, unpause the container before exec`);
    if (s === "restarting")
      throw conflict(`Container ${rec.Id} is restarting, wait until the container is running`);
    if (s !== "running") throw conflict(`container ${rec.Id} is not running`);
  }

  private session(id: string): ExecSession {
    const s = this.sessions.get(id);
    if (!s) throw notFound(`No such exec instance: ${id}`);
    return s;
  }

  private containerOf(s: ExecSession): ContainerRecord {
    const rec = this.ctx.store.find(s.containerId);
    if (!rec || rec.Id !== s.containerId) throw notFound(`No such container: ${s.containerId}`);
    return rec;
  }

  async create(containerRef: string, body: unknown): Promise<{ Id: string }> {
    const rec = this.ctx.store.resolve(containerRef);
    this.requireRunning(rec);
    const config = parseExecCreate(body);
    // As dockerd: a user that does not exist is refused now, not when the exec starts.
    if (config.User) await resolveUser(containerPaths(this.ctx, rec.Id).rootfs, config.User);
    const id = newId();
    this.sessions.add(newSession(id, rec.Id, config));
    this.ctx.events.emit("container", `exec_create: ${commandText(config.Cmd)}`, rec.Id, {
      ...containerAttributes(rec),
      execID: id,
    });
    return { Id: id };
  }

  checkStart(execId: string): void {
    const s = this.session(execId);
    this.requireRunning(this.containerOf(s));
    if (s.state === "exited") throw conflict(`exec command ${s.id} has already run`);
    if (s.state !== "created") throw conflict(`exec command ${s.id} is already running`);
  }

  async start(execId: string, request: ExecStartRequest): Promise<ExecRun> {
    this.checkStart(execId);
    const s = this.session(execId);
    const rec = this.containerOf(s);
    s.state = "starting";
    this.ctx.events.emit("container", `exec_start: ${commandText(s.config.Cmd)}`, rec.Id, {
      ...containerAttributes(rec),
      execID: s.id,
    });
    const dir = this.sessionDir(s.id);
    s.dir = dir;
    let socket: AttachSocket | undefined;
    let conmon: ConmonExec | undefined;
    try {
      const p = containerPaths(this.ctx, rec.Id);
      const processSpec = await buildExecProcess({
        record: rec,
        specPath: p.spec,
        rootfs: p.rootfs,
        exec: s.config,
        consoleSize: request.ConsoleSize,
        capabilities: this.ctx.capabilities,
      });
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await mkdir(p.socketDir, { recursive: true, mode: 0o700 });
      const specPath = join(dir, "process.json");
      await writeFile(specPath, JSON.stringify(processSpec), { mode: 0o600 });
      conmon = new ConmonExec({
        conmonPath: this.ctx.config.conmonPath,
        runtimePath: this.ctx.config.runtimePath,
        runtimeRoot: this.ctx.paths.runtimeRoot,
        containerId: rec.Id,
        attachName: this.attachName(s.id),
        sessionDir: dir,
        socketDir: p.socketDir,
        processSpecPath: specPath,
        tty: s.config.Tty,
        stdin: s.config.AttachStdin,
      });
      s.conmon = conmon;
      await conmon.launch();
      // Connected before the process runs, so none of its output is missed.
      if (!request.Detach) {
        const attached = await connectAttachSocket(execAttachPath(p.socketDir, this.attachName(s.id)));
        socket = attached;
        // The docker CLI asks for the exit code the moment its stream closes: from then on an
        // inspect waits for it (conmon hands it over as it exits).
        void attached.ended.then(() => (s.streamEnded = true));
      }
      s.pid = await conmon.run();
    } catch (e) {
      socket?.close();
      await this.failStart(s, conmon, e);
      throw e;
    }
    s.state = "running";
    s.markStarted();
    const exited = conmon.exitCode.then(async (code) => {
      // A daemon going down drops conmon's pipes: that is no exit (the process runs on).
      if (this.closed) return code;
      await this.recordExit(s, rec, code);
      return code;
    });
    return { socket, exited };
  }

  /** A start that did not get its process running: Docker's 126/127, and nothing left behind. */
  private async failStart(s: ExecSession, conmon: ConmonExec | undefined, e: unknown): Promise<void> {
    s.state = "exited";
    s.exitCode = exitCodeForStartError(messageOf(e));
    s.finishedAtMs = Date.now();
    s.markStarted();
    s.markFinished();
    conmon?.abort();
    await this.removeSessionFiles(s);
    this.ctx.log.info({ id: s.containerId, execID: s.id, err: messageOf(e) }, "exec failed to start");
  }

  private async recordExit(s: ExecSession, rec: ContainerRecord, code: number): Promise<void> {
    s.state = "exited";
    s.exitCode = code;
    s.finishedAtMs = Date.now();
    this.ctx.events.emit("container", "exec_die", rec.Id, {
      ...containerAttributes(rec),
      execID: s.id,
      exitCode: String(code),
    });
    s.markFinished();
    await this.removeSessionFiles(s).catch(() => undefined);
    this.sessions.trim(s.containerId, Date.now());
  }

  /** The session's folder and attach link, once its conmon is gone (it writes its last files on the way out). */
  private async removeSessionFiles(s: ExecSession): Promise<void> {
    const dir = s.dir ?? this.sessionDir(s.id);
    const conmonPid = s.conmon?.conmonPid || (await readPidFile(execConmonPidFile(dir)));
    await pidGone(conmonPid, 5_000);
    await rm(join(this.socketDir(s.containerId), this.attachName(s.id)), { force: true });
    await rm(dir, { recursive: true, force: true });
    s.conmon?.dispose();
  }

  async inspect(execId: string): Promise<ExecInspect> {
    const s = this.session(execId);
    if (!this.ctx.store.find(s.containerId)) throw notFound(`No such exec instance: ${execId}`);
    // The docker CLI asks for the exit code the moment the stream closed; conmon may still be
    // handing it over. Wait a little for it rather than answer "still running".
    if (s.streamEnded && s.state === "running") await Promise.race([s.finished, sleep(EXIT_WAIT_MS)]);
    const c = s.config;
    return {
      ID: s.id,
      Running: s.state === "running" || s.state === "starting",
      ExitCode: s.exitCode,
      ProcessConfig: {
        tty: c.Tty,
        entrypoint: c.Cmd[0],
        arguments: c.Cmd.slice(1),
        privileged: c.Privileged,
        ...(c.User ? { user: c.User } : {}),
      },
      OpenStdin: c.AttachStdin,
      OpenStderr: c.AttachStderr,
      OpenStdout: c.AttachStdout,
      CanRemove: false,
      ContainerID: s.containerId,
      DetachKeys: null,
      Pid: s.state === "running" ? s.pid : 0,
    };
  }

  async resize(execId: string, height: number, width: number): Promise<void> {
    const s = this.session(execId);
    this.requireRunning(this.containerOf(s));
    if (s.state === "created" || s.state === "starting") {
      const ready = await Promise.race([s.started.then(() => true), sleep(RESIZE_WAIT_MS).then(() => false)]);
      if (!ready)
        throw conflict(
          `exec ${execId} was not started within ${RESIZE_WAIT_MS / 1000} s: start it before resizing it`,
        );
    }
    // As dockerd (containerd ignores it): resizing an exec without a terminal does nothing.
    if (!s.tty) return;
    if (s.state !== "running" || !s.dir)
      throw conflict(`exec ${execId} is not running: its terminal is gone`);
    try {
      await resizeTerminal(s.dir, height, width);
    } catch (e) {
      if (s.state !== "running") throw conflict(`exec ${execId} is not running: its terminal is gone`);
      throw internal(`cannot resize the terminal of exec ${execId}: ${messageOf(e)}`, e);
    }
  }

  detachKeys(execId: string): string {
    return this.session(execId).config.DetachKeys;
  }

  idsOf(containerId: string): string[] {
    return this.sessions
      .ofContainer(containerId)
      .filter((s) => s.state !== "exited")
      .map((s) => s.id);
  }

  detached(execId: string): void {
    const s = this.sessions.get(execId);
    const rec = s && this.ctx.store.find(s.containerId);
    if (!s || !rec) return;
    this.ctx.events.emit("container", "exec_detach", rec.Id, { ...containerAttributes(rec), execID: s.id });
  }

  /** The container stopped: its exec processes end with it (a pid namespace does that; without one, we do). */
  async containerExited(containerId: string): Promise<void> {
    for (const s of this.sessions.ofContainer(containerId)) {
      if (s.state !== "running") continue;
      if (await inContainer(s.pid, containerId)) {
        try {
          process.kill(s.pid, "SIGKILL");
        } catch {
          // gone meanwhile
        }
      }
    }
  }

  /** The container is gone: so are its sessions. */
  async containerRemoved(containerId: string): Promise<void> {
    await this.containerExited(containerId);
    const running = this.sessions.dropContainer(containerId).filter((s) => s.state === "running");
    await Promise.all(running.map((s) => Promise.race([s.finished, sleep(EXIT_WAIT_MS)])));
  }

  /**
   * At open: folders of sessions a previous daemon ran. Their processes keep running (like
   * containers); the folders go once their conmon is gone.
   */
  async sweep(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch {
      return;
    }
    for (const name of names) {
      if (this.sessions.get(name)) continue;
      const dir = join(this.root, name);
      const pid = await readPidFile(execConmonPidFile(dir));
      if (!(await pidAlive(pid))) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.gcTimer);
    for (const s of this.sessions.all()) s.conmon?.dispose();
  }
}
