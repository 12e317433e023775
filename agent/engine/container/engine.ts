import { detectCapabilities } from "../runtime/capabilities.js";
import { readHostRlimits } from "../runtime/spec-resources.js";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { conflict, internal, invalid, messageOf, notFound, notModified } from "../../../shared/errors.js";
import { dirSize, ensureDir } from "../../../shared/fsutil.js";
import type { Logger } from "../../../shared/logging.js";
import { enginePaths, type EngineConfig } from "../config.js";
import type { ImageStoreApi } from "../image/api.js";
import { detectCgroupVersion, hasSwapAccounting } from "../runtime/cgroups.js";
import { exitCodeForStartError } from "../runtime/conmon.js";
import { ExitWatcher } from "../runtime/exit-watch.js";
import { readLogFiles } from "../runtime/log-read.js";
import { Runtime } from "../runtime/runc.js";
import { parseSignal, SIGKILL, SIGTERM } from "../runtime/signals.js";
import { unmountRootfs } from "../snapshot/rootfs.js";
import type {
  ContainerEngineApi,
  CreateContainerRequest,
  ListContainersOptions,
  WaitCondition,
} from "./api.js";
import { attachSocketPath, containerPaths, type EngineContext } from "./context.js";
import { createContainer } from "./create.js";
import { isUp, listContainers, pruneMatcher } from "./filters.js";
import { KeyedMutex } from "./mutex.js";
import { nextBackoff, wantsRestart } from "./restart-policy.js";
import {
  cleanupRun,
  pidAlive,
  readConmonPid,
  readExitCode,
  startRun,
  wasOomKilled,
  watchLogRotation,
} from "./run.js";
import { ContainerStore, nameInUse } from "./store.js";
import type { ContainerRecord, LogLine, LogOptions } from "./types.js";
import { validateName } from "./validate.js";
import { removeAnonymousVolumes, volumeUsers } from "./mounts.js";
import { VolumeStore } from "../volume/store.js";
import type { VolumeStoreApi } from "../volume/types.js";
import { HostNetworks } from "../network/host-networks.js";
import type { AttachedContainer } from "../network/types.js";
import type { EndpointSettings } from "./types.js";
import { EventLog } from "../events.js";
import { pauseContainer, thawAfterSignal, unpauseContainer } from "./pause.js";
import { updateContainer, type UpdateRequest } from "./update.js";
import { streamStats, type StatsOptions } from "./stats.js";
import { topContainer, type TopResult } from "./top.js";
import type { ContainerStats } from "../runtime/stats-types.js";
import { attachStdio, resizeContainer, type PendingAttach } from "./attach.js";
import { containerEvent, exitedEvents, networkEvent, startedEvents } from "./events.js";
import { HealthMonitors } from "./health.js";
import { restartsAtDaemonStart } from "./restart-policy.js";
import { ExecEngine } from "../exec/engine.js";
import { ContainerFiles } from "../files/files.js";

/** In-memory facts about a container that do not belong on disk. */
interface Live {
  id: string;
  /** Exits recorded since the engine opened; waiters compare against it. */
  exits: number;
  removed: boolean;
  /** Set while a run is being started, so an exit event waits for the start to finish. */
  starting?: Promise<void>;
  /** The exit being recorded, so watcher and poll never record it twice. */
  handling?: Promise<void>;
  restartTimer?: NodeJS.Timeout;
  backoffMs: number;
  startedAtMs: number;
  conmonPid: number;
  /** Ticks in a row the container's pid was gone with no exit file. */
  missing: number;
}

const NEVER = "0001-01-01T00:00:00Z";
const KILL_WAIT_MS = 30_000;

/**
 * The container engine: containers run under conmon and the OCI runtime and outlive the daemon;
 * records live on disk; an exit watcher records exits and applies AutoRemove and restart policies.
 * Operations on one container are serialised; recording an exit is not (a stop waits for it).
 */
export class ContainerEngine implements ContainerEngineApi {
  private readonly live = new Map<string, Live>();
  private readonly locks = new KeyedMutex();
  private readonly listeners = new Map<string, Set<() => void>>();
  private readonly watcher: ExitWatcher;
  private closed = false;
  private recoveredOnce = false;
  private readonly health: HealthMonitors;
  /**
   * Starts and removals that recovery asks for wait until open() has reconciled the networks
   * (dockerd waits for its restore the same way); they queue here until then.
   */
  private opened = false;
  private readonly afterOpen: Array<() => void> = [];
  /** `docker exec` sessions (agent/engine/exec/). */
  readonly exec: ExecEngine;
  private filesApi?: ContainerFiles;

  private constructor(private readonly ctx: EngineContext) {
    this.health = new HealthMonitors(ctx);
    this.exec = new ExecEngine(ctx);
    this.watcher = new ExitWatcher(
      ctx.paths.exitsDir,
      (id) => this.onExitFile(id),
      () => void this.tick(),
      ctx.log,
    );
  }

  /** Open the engine on its folders and recover what a previous daemon left running. */
  static async open(
    config: EngineConfig,
    images: ImageStoreApi,
    log: Logger,
    events: EventLog = new EventLog(),
  ): Promise<ContainerEngine> {
    const paths = enginePaths(config);
    for (const dir of [paths.containersRoot, paths.runtimeRoot, paths.exitsDir, paths.conmonDir])
      await ensureDir(dir);
    const cgroupVersion = await detectCgroupVersion();
    const store = new ContainerStore(paths.containersRoot);
    const volumes = await VolumeStore.open(
      paths.volumesRoot,
      log.child({ module: "volumes" }),
      (name) => volumeUsers(store, name),
      events,
    );
    const ctx: EngineContext = {
      config,
      paths,
      images,
      store,
      volumes,
      runtime: new Runtime(config.runtimePath, paths.runtimeRoot),
      log: log.child({ module: "containers" }),
      cgroupVersion,
      swapAccounting: await hasSwapAccounting(cgroupVersion),
      capabilities: await detectCapabilities(),
      hostRlimits: await readHostRlimits(),
      network: await HostNetworks.open({
        dir: paths.networkRoot,
        bridgeName: config.bridgeName,
        bridgeIp: config.bridgeIp,
        ipForward: config.ipForward,
        resolvConfPath: config.resolvConfPath,
        firewallTable: config.firewallTable,
        dnsPort: 53,
        log: log.child({ module: "network" }),
        events,
      }),
      events,
    };
    const engine = new ContainerEngine(ctx);
    ctx.network.setContainersLookup((networkId) => engine.attachedTo(networkId));
    await engine.recover();
    await engine.exec.sweep();
    await ctx.network.reconcile(ctx.store.all().filter((r) => isUp(r)));
    engine.watcher.start();
    engine.opened = true;
    for (const fn of engine.afterOpen.splice(0)) fn();
    return engine;
  }

  // ---- waiting --------------------------------------------------------------------------

  private notify(id: string): void {
    for (const fn of [...(this.listeners.get(id) ?? [])]) fn();
  }

  /** Resolve true once `done()` holds, false on timeout; reject on abort. */
  private waitFor(
    id: string,
    done: () => boolean,
    timeoutMs?: number,
    signal?: AbortSignal,
  ): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    return new Promise((resolve, reject) => {
      const set = this.listeners.get(id) ?? new Set<() => void>();
      this.listeners.set(id, set);
      let timer: NodeJS.Timeout | undefined;
      const finish = (ok: boolean, err?: unknown): void => {
        set.delete(check);
        if (set.size === 0 && this.listeners.get(id) === set) this.listeners.delete(id);
        if (timer) clearTimeout(timer);
        clearInterval(poll);
        signal?.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else resolve(ok);
      };
      const check = (): void => {
        if (done()) finish(true);
      };
      const onAbort = (): void =>
        finish(false, signal?.reason ?? new DOMException("The operation was aborted", "AbortError"));
      set.add(check);
      if (timeoutMs !== undefined) timer = setTimeout(() => finish(false), timeoutMs);
      // Do not rely on inotify alone while someone waits: look for the exit file often.
      const poll = setInterval(() => this.onExitFile(id), 500);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  private liveOf(rec: ContainerRecord): Live {
    let l = this.live.get(rec.Id);
    if (!l) {
      l = {
        id: rec.Id,
        exits: 0,
        removed: false,
        backoffMs: 0,
        startedAtMs: Date.parse(rec.State.StartedAt) || 0,
        conmonPid: 0,
        missing: 0,
      };
      this.live.set(rec.Id, l);
    }
    return l;
  }

  // ---- exits ----------------------------------------------------------------------------

  private onExitFile(id: string): void {
    const rec = this.ctx.store.find(id);
    if (!rec || rec.Id !== id) return;
    void this.handleExit(this.liveOf(rec));
  }

  /** Record the exit conmon wrote for the current run, once. */
  private handleExit(l: Live, fallbackCode?: number, error?: string): Promise<void> {
    if (l.handling) return l.handling;
    const job = (async () => {
      if (l.starting) await l.starting.catch(() => undefined);
      const rec = this.ctx.store.find(l.id);
      if (!rec || rec.Id !== l.id || l.removed) return;
      if (rec.State.Status !== "running" && rec.State.Status !== "paused") {
        // A file from a run that failed to start, already dealt with.
        if (rec.State.Status !== "removing")
          await rm(containerPaths(this.ctx, l.id).exitFile, { force: true });
        return;
      }
      const code = (await readExitCode(this.ctx, l.id)) ?? fallbackCode;
      if (code === undefined) return;
      await this.recordExit(l, rec, code, error ?? "");
    })()
      .catch((e: unknown) =>
        this.ctx.log.error({ id: l.id, err: messageOf(e) }, "recording a container exit failed"),
      )
      .finally(() => {
        l.handling = undefined;
      });
    l.handling = job;
    return job;
  }

  private async recordExit(l: Live, rec: ContainerRecord, code: number, error: string): Promise<void> {
    this.health.end(rec);
    const oom = await wasOomKilled(this.ctx, rec.Id);
    await cleanupRun(this.ctx, rec.Id);
    rec.State = {
      ...rec.State,
      Status: "exited",
      Pid: 0,
      ExitCode: code,
      OOMKilled: oom,
      Error: error,
      FinishedAt: new Date().toISOString(),
    };
    l.conmonPid = 0;
    l.missing = 0;
    await this.ctx.store.save(rec);
    exitedEvents(this.ctx, rec, code, l.startedAtMs);
    l.exits++;
    void this.exec.containerExited(rec.Id);
    this.notify(rec.Id);
    this.ctx.log.info({ id: rec.Id, exitCode: code, oomKilled: oom }, "container exited");
    this.afterExit(l, rec);
  }

  /** AutoRemove, or the restart policy with Docker's growing delay. */
  private afterExit(l: Live, rec: ContainerRecord): void {
    if (this.closed) return;
    if (rec.HostConfig.AutoRemove) {
      if (!this.opened) return void this.afterOpen.push(() => this.afterExit(l, rec));
      void this.locks
        .run(rec.Id, async () => {
          // Like Docker's --rm: the container's anonymous volumes go too.
          if (this.ctx.store.find(rec.Id) === rec && !isUp(rec))
            await this.removeLocked(l, rec, false, rec.Id, true);
        })
        .catch((e: unknown) =>
          this.ctx.log.error({ id: rec.Id, err: messageOf(e) }, "auto-removing a container failed"),
        );
      return;
    }
    if (!wantsRestart(rec)) return;
    l.backoffMs = nextBackoff(l.backoffMs, Date.now() - l.startedAtMs);
    rec.State = { ...rec.State, Status: "restarting" };
    void this.ctx.store.save(rec).catch(() => undefined);
    this.notify(rec.Id);
    this.scheduleRestart(l, rec, l.backoffMs);
  }

  private scheduleRestart(l: Live, rec: ContainerRecord, delayMs: number): void {
    if (l.restartTimer) clearTimeout(l.restartTimer);
    l.restartTimer = setTimeout(() => {
      l.restartTimer = undefined;
      if (!this.opened) return void this.afterOpen.push(() => this.scheduleRestart(l, rec, 0));
      void this.locks
        .run(rec.Id, async () => {
          if (this.closed || this.ctx.store.find(rec.Id) !== rec || rec.State.Status !== "restarting") return;
          rec.RestartCount++;
          try {
            await this.startLocked(l, rec);
          } catch (e) {
            this.ctx.log.warn({ id: rec.Id, err: messageOf(e) }, "restarting a container failed");
            this.afterExit(l, rec);
          }
        })
        .catch(() => undefined);
    }, delayMs);
  }

  /** Slow path of exit detection: a container whose process and conmon are both gone without an exit file. */
  private async tick(): Promise<void> {
    for (const rec of this.ctx.store.all()) {
      if (rec.State.Status !== "running") continue;
      const l = this.liveOf(rec);
      if (l.handling || l.starting || (await pidAlive(rec.State.Pid))) {
        l.missing = 0;
        continue;
      }
      if (++l.missing < 2) continue;
      const conmon = l.conmonPid || (await readConmonPid(this.ctx, rec.Id));
      if (conmon > 0 && (await pidAlive(conmon))) continue;
      void this.handleExit(l, 255, "conmon exited without recording the container's exit code");
    }
  }

  // ---- recovery -------------------------------------------------------------------------

  async recover(): Promise<void> {
    const { loaded, orphans, broken } = await this.ctx.store.load();
    for (const b of broken)
      this.ctx.log.error(
        { id: b.id, err: messageOf(b.error) },
        "cannot read a container record; leaving it alone",
      );
    const atDaemonStart = !this.recoveredOnce;
    if (atDaemonStart) {
      // A folder without a record is a create that died halfway: undo it as create would have.
      for (const id of orphans) {
        const p = containerPaths(this.ctx, id);
        try {
          await unmountRootfs(p.rootfs);
          await rm(p.dir, { recursive: true, force: true });
          this.ctx.log.warn({ id }, "removed the remains of an unfinished container create");
        } catch (e) {
          this.ctx.log.error({ id, err: messageOf(e) }, "cannot remove the remains of an unfinished create");
        }
      }
    }
    this.recoveredOnce = true;
    for (const id of loaded) {
      const rec = this.ctx.store.find(id);
      if (!rec) continue;
      const l = this.liveOf(rec);
      try {
        await this.recoverOne(l, rec, atDaemonStart);
      } catch (e) {
        this.ctx.log.error({ id, err: messageOf(e) }, "recovering a container failed");
      }
    }
    await this.removeStrayExitFiles();
  }

  private async recoverOne(l: Live, rec: ContainerRecord, atDaemonStart: boolean): Promise<void> {
    const s = rec.State.Status;
    if (s === "removing") {
      await this.locks.run(rec.Id, () => this.removeLocked(l, rec, true));
      return;
    }
    if (s === "restarting") {
      this.scheduleRestart(l, rec, 0);
      return;
    }
    if (s === "exited" && atDaemonStart) {
      // dockerd's restore: a --rm container that exited unseen goes; a policy may start one again.
      if (rec.HostConfig.AutoRemove)
        await this.locks.run(rec.Id, () => this.removeLocked(l, rec, false, rec.Id, true));
      else if (restartsAtDaemonStart(rec)) this.afterOpen.push(() => this.startForPolicy(l, rec));
      return;
    }
    if (s !== "running" && s !== "paused") return;
    const code = await readExitCode(this.ctx, rec.Id);
    if (code !== undefined) {
      await this.handleExit(l);
      return;
    }
    l.conmonPid = await readConmonPid(this.ctx, rec.Id);
    const state = await this.ctx.runtime.state(rec.Id);
    if (state && (state.status === "running" || state.status === "paused")) {
      const moved = state.pid > 0 && state.pid !== rec.State.Pid;
      if (moved) rec.State = { ...rec.State, Pid: state.pid };
      // As dockerd's restore: the health check starts over ("starting"), its log kept.
      this.health.begin(rec);
      if (moved || rec.State.Health) await this.ctx.store.save(rec);
      watchLogRotation(this.ctx, rec);
      return;
    }
    // Gone, or never started. conmon may be writing the exit file right now.
    if (l.conmonPid > 0 && (await pidAlive(l.conmonPid))) return;
    await this.handleExit(l, 255, "the container ended while the daemon was down and its exit code was lost");
  }

  /** dockerd's restore: a stopped container whose policy says so starts again (RestartCount unchanged). */
  private startForPolicy(l: Live, rec: ContainerRecord): void {
    const policy = rec.HostConfig.RestartPolicy.Name;
    this.ctx.log.info({ id: rec.Id, policy }, "starting a container as its restart policy asks");
    void this.locks
      .run(rec.Id, async () => {
        if (this.closed || l.removed || this.ctx.store.find(rec.Id) !== rec || isUp(rec)) return;
        await this.startLocked(l, rec);
      })
      .catch((e: unknown) =>
        this.ctx.log.error({ id: rec.Id, err: messageOf(e) }, "starting a container at daemon start failed"),
      );
  }

  private async removeStrayExitFiles(): Promise<void> {
    try {
      for (const name of await readdir(this.ctx.paths.exitsDir)) {
        if (/^[0-9a-f]{64}$/.test(name) && !this.ctx.store.find(name)) {
          await rm(join(this.ctx.paths.exitsDir, name), { force: true });
        }
      }
    } catch {
      // Nothing to tidy.
    }
  }

  // ---- lifecycle ------------------------------------------------------------------------

  async create(request: CreateContainerRequest): Promise<{ Id: string; Warnings: string[] }> {
    if (this.closed) throw internal("the container engine is closed");
    const out = await createContainer(this.ctx, request);
    const rec = this.ctx.store.find(out.Id);
    if (rec) {
      this.liveOf(rec);
      containerEvent(this.ctx, rec, "create");
    }
    return out;
  }

  async start(ref: string): Promise<void> {
    const rec = this.ctx.store.resolve(ref);
    const l = this.liveOf(rec);
    await this.locks.run(rec.Id, async () => {
      try {
        await this.startLocked(l, rec, ref);
      } catch (e) {
        // As dockerd: a --rm container that cannot start is removed (the docker CLI, which waits
        // for its removal, would otherwise wait for ever).
        if (rec.HostConfig.AutoRemove && !l.removed && !isUp(rec) && rec.State.Status !== "removing")
          await this.removeLocked(l, rec, true, rec.Id, true).catch((err: unknown) =>
            this.ctx.log.warn(
              { id: rec.Id, err: messageOf(err) },
              "removing a --rm container that failed to start failed",
            ),
          );
        throw e;
      }
    });
  }

  private async startLocked(l: Live, rec: ContainerRecord, ref = rec.Id): Promise<void> {
    if (l.removed) throw this.notFoundAfterRemove(ref);
    const s = rec.State.Status;
    if (s === "paused") throw conflict("cannot start a paused container, try unpause instead");
    if (s === "running") throw notModified(`Container ${ref} is already running`);
    if (s === "removing") throw conflict(`Container ${ref} is being removed and cannot be started`);
    if (l.restartTimer) {
      clearTimeout(l.restartTimer);
      l.restartTimer = undefined;
    }
    let done!: () => void;
    l.starting = new Promise<void>((r) => (done = r));
    try {
      const { pid, conmonPid } = await startRun(this.ctx, rec);
      l.conmonPid = conmonPid;
      l.startedAtMs = Date.now();
      l.missing = 0;
      rec.HasBeenManuallyStopped = false;
      rec.State = {
        Status: "running",
        Pid: pid,
        ExitCode: 0,
        Error: "",
        OOMKilled: false,
        StartedAt: new Date().toISOString(),
        FinishedAt: rec.State.FinishedAt || NEVER,
        Health: rec.State.Health,
      };
      this.health.begin(rec);
      await this.ctx.store.save(rec);
      this.ctx.log.info({ id: rec.Id, pid }, "container started");
      startedEvents(this.ctx, rec);
    } catch (e) {
      const message = messageOf(e);
      // Like Docker: a never-started container stays "created", with the reason and 127/126.
      rec.State = {
        ...rec.State,
        Status: s === "restarting" ? "exited" : s,
        Pid: 0,
        ExitCode: exitCodeForStartError(message),
        Error: message,
      };
      await this.ctx.store.save(rec).catch(() => undefined);
      throw e;
    } finally {
      l.starting = undefined;
      done();
      this.notify(rec.Id);
    }
  }

  async stop(ref: string, options: { signal?: string; timeoutSec?: number } = {}): Promise<void> {
    const rec = this.ctx.store.resolve(ref);
    const l = this.liveOf(rec);
    await this.locks.run(rec.Id, () => this.stopLocked(l, rec, ref, options));
  }

  private async stopLocked(
    l: Live,
    rec: ContainerRecord,
    ref: string,
    options: { signal?: string; timeoutSec?: number },
  ): Promise<void> {
    const signal = parseSignal(options.signal || rec.Config.StopSignal || "SIGTERM");
    if (rec.State.Status === "restarting") {
      this.cancelRestart(l, rec);
      await this.ctx.store.save(rec);
      this.notify(rec.Id);
      return;
    }
    if (rec.State.Status !== "running" && rec.State.Status !== "paused")
      throw notModified(`Container ${ref} is not running`);
    rec.HasBeenManuallyStopped = true;
    await this.ctx.store.save(rec);
    const timeoutSec = options.timeoutSec ?? rec.Config.StopTimeout ?? 10;
    const seen = l.exits;
    const exited = (): boolean => l.exits > seen || l.removed;
    await this.signal(rec, signal);
    const graceful = await this.waitFor(rec.Id, exited, timeoutSec < 0 ? undefined : timeoutSec * 1000);
    if (graceful) return containerEvent(this.ctx, rec, "stop");
    this.ctx.log.info({ id: rec.Id, timeoutSec }, "container ignored its stop signal; killing it");
    await this.signal(rec, SIGKILL);
    if (!(await this.waitFor(rec.Id, exited, KILL_WAIT_MS))) {
      throw internal(`container ${ref} did not exit ${KILL_WAIT_MS / 1000} s after SIGKILL`);
    }
    containerEvent(this.ctx, rec, "stop");
  }

  /** Send a signal; a container that is already on its way out is not an error. */
  private async signal(rec: ContainerRecord, signal: number): Promise<void> {
    try {
      await this.ctx.runtime.kill(rec.Id, signal);
      containerEvent(this.ctx, rec, "kill", { signal: String(signal) });
    } catch (e) {
      if (!/not running|does not exist|process already finished|no such process/i.test(messageOf(e))) throw e;
    }
    await thawAfterSignal(this.ctx, rec);
  }

  private cancelRestart(l: Live, rec: ContainerRecord): void {
    if (l.restartTimer) clearTimeout(l.restartTimer);
    l.restartTimer = undefined;
    rec.HasBeenManuallyStopped = true;
    rec.State = { ...rec.State, Status: "exited" };
  }

  async kill(ref: string, signal = "SIGKILL"): Promise<void> {
    const rec = this.ctx.store.resolve(ref);
    const sig = parseSignal(signal);
    const l = this.liveOf(rec);
    if (rec.State.Status === "restarting" && (sig === SIGKILL || sig === SIGTERM)) {
      await this.locks.run(rec.Id, async () => {
        this.cancelRestart(l, rec);
        await this.ctx.store.save(rec);
        this.notify(rec.Id);
      });
      return;
    }
    if (rec.State.Status !== "running" && rec.State.Status !== "paused") {
      throw conflict(`Cannot kill container: ${ref}: Container ${rec.Id} is not running`);
    }
    const stopSignal = parseSignal(rec.Config.StopSignal || "SIGTERM");
    if (sig === SIGKILL || sig === SIGTERM || sig === stopSignal) {
      // A user who kills a container does not want its restart policy to bring it back.
      rec.HasBeenManuallyStopped = true;
      await this.ctx.store.save(rec);
    }
    if (sig !== SIGKILL) {
      await this.signal(rec, sig);
      return;
    }
    await this.killAndWait(l, rec, ref);
  }

  /**
   * dockerd's kill: SIGKILL, then return only once the exit is recorded; if none comes within
   * 10 s, SIGKILL the process directly and wait 2 s more.
   */
  private async killAndWait(l: Live, rec: ContainerRecord, ref: string): Promise<void> {
    const seen = l.exits;
    const exited = (): boolean => l.exits > seen || l.removed || !isUp(rec);
    await this.signal(rec, SIGKILL);
    if (await this.waitFor(rec.Id, exited, 10_000)) return;
    this.ctx.log.warn(
      { id: rec.Id },
      "container did not exit 10 s after SIGKILL; killing its process directly",
    );
    if (rec.State.Pid > 0) {
      try {
        process.kill(rec.State.Pid, "SIGKILL");
      } catch {
        // Gone meanwhile.
      }
    }
    if (!(await this.waitFor(rec.Id, exited, 2_000)))
      throw internal(`tried to kill container ${ref}, but did not receive an exit event; try again`);
  }

  async restart(ref: string, options: { signal?: string; timeoutSec?: number } = {}): Promise<void> {
    const rec = this.ctx.store.resolve(ref);
    const l = this.liveOf(rec);
    await this.locks.run(rec.Id, async () => {
      if (rec.State.Status === "running" || rec.State.Status === "paused")
        await this.stopLocked(l, rec, ref, options);
      if (rec.State.Status === "restarting") this.cancelRestart(l, rec);
      await this.startLocked(l, rec, ref);
      containerEvent(this.ctx, rec, "restart");
    });
  }

  async remove(ref: string, options: { force: boolean; volumes?: boolean }): Promise<void> {
    const rec = this.ctx.store.resolve(ref);
    const l = this.liveOf(rec);
    await this.locks.run(rec.Id, () =>
      this.removeLocked(l, rec, options.force, ref, options.volumes === true),
    );
  }

  private async removeLocked(
    l: Live,
    rec: ContainerRecord,
    force: boolean,
    ref = rec.Id,
    removeVolumes = false,
  ): Promise<void> {
    if (l.removed) return;
    const s = rec.State.Status;
    if ((s === "running" || s === "paused" || s === "restarting") && !force) {
      throw conflict(
        `You cannot remove a ${s === "restarting" ? "restarting" : "running"} container ${rec.Id}. Stop the container before attempting removal or force remove`,
      );
    }
    if (s === "restarting") this.cancelRestart(l, rec);
    if (s === "running" || s === "paused") {
      rec.HasBeenManuallyStopped = true;
      const seen = l.exits;
      await this.signal(rec, SIGKILL);
      if (!(await this.waitFor(rec.Id, () => l.exits > seen, KILL_WAIT_MS))) {
        throw internal(`container ${ref} did not exit after SIGKILL; try again`);
      }
    }
    if (l.restartTimer) clearTimeout(l.restartTimer);
    rec.State = { ...rec.State, Status: "removing" };
    await this.ctx.store.save(rec);
    this.notify(rec.Id);
    const p = containerPaths(this.ctx, rec.Id);
    await this.exec.containerRemoved(rec.Id);
    await cleanupRun(this.ctx, rec.Id);
    // Never delete the folder through a live mount: unmountRootfs throws when it cannot unmount.
    await unmountRootfs(p.rootfs);
    await rm(p.dir, { recursive: true, force: true });
    this.ctx.store.drop(rec.Id);
    if (removeVolumes) await removeAnonymousVolumes(this.ctx, rec);
    containerEvent(this.ctx, rec, "destroy");
    l.removed = true;
    this.live.delete(rec.Id);
    this.notify(rec.Id);
    this.ctx.log.info({ id: rec.Id }, "container removed");
  }

  private notFoundAfterRemove(ref: string): Error {
    return notFound(`No such container: ${ref}`);
  }

  // ---- queries --------------------------------------------------------------------------

  list(options: ListContainersOptions): ContainerRecord[] {
    return listContainers(this.ctx.store, this.ctx.images, options).map((r) => structuredClone(r));
  }

  get(ref: string): ContainerRecord {
    return structuredClone(this.ctx.store.resolve(ref));
  }

  async wait(
    ref: string,
    condition: WaitCondition,
    signal?: AbortSignal,
  ): Promise<{ StatusCode: number; Error?: { Message: string } }> {
    const rec = this.ctx.store.resolve(ref);
    const l = this.liveOf(rec);
    const seen = l.exits;
    const result = (): { StatusCode: number; Error?: { Message: string } } =>
      rec.State.Error
        ? { StatusCode: rec.State.ExitCode, Error: { Message: rec.State.Error } }
        : { StatusCode: rec.State.ExitCode };
    if (condition === "removed") {
      await this.waitFor(rec.Id, () => l.removed, undefined, signal);
    } else if (condition === "next-exit") {
      await this.waitFor(rec.Id, () => l.exits > seen || l.removed, undefined, signal);
    } else if (condition === "not-running") {
      await this.waitFor(
        rec.Id,
        () => l.exits > seen || l.removed || (!isUp(rec) && !l.starting),
        undefined,
        signal,
      );
    } else {
      throw invalid(`invalid condition "${String(condition)}": use not-running, next-exit or removed`);
    }
    return result();
  }

  logs(ref: string, options: LogOptions): AsyncIterable<LogLine> {
    const rec = this.ctx.store.resolve(ref);
    return this.followLog(rec, this.liveOf(rec), options);
  }

  private async *followLog(rec: ContainerRecord, l: Live, options: LogOptions): AsyncGenerator<LogLine> {
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const seen = l.exits;
    const untilExit = options.follow
      ? this.waitFor(
          rec.Id,
          () => l.exits > seen || l.removed || (!isUp(rec) && !l.starting),
          undefined,
          stop.signal,
        ).catch(() => false)
      : Promise.resolve(true);
    try {
      yield* readLogFiles(rec.LogPath, options, { untilExit });
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      stop.abort();
    }
  }

  async rename(ref: string, newName: string): Promise<void> {
    const rec = this.ctx.store.resolve(ref);
    const name = validateName(newName);
    await this.locks.run(rec.Id, async () => {
      if (name === rec.Name)
        throw invalid(`Renaming a container with the same name as its current name: ${name}`);
      const holder = this.ctx.store.find(name);
      if (holder && holder.Name === name) throw nameInUse(name, holder.Id);
      const old = rec.Name;
      this.ctx.store.reserveName(name, rec.Id);
      rec.Name = name;
      try {
        await this.ctx.store.save(rec);
      } catch (e) {
        rec.Name = old;
        this.ctx.store.releaseName(name, rec.Id);
        throw e;
      }
      this.ctx.store.releaseName(old, rec.Id);
      this.ctx.network.renamed(rec);
      containerEvent(this.ctx, rec, "rename", { oldName: old });
    });
  }

  async prune(
    filters?: Record<string, string[]>,
  ): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }> {
    const match = pruneMatcher(filters);
    const deleted: string[] = [];
    let space = 0;
    for (const rec of this.ctx.store.all()) {
      if (isUp(rec) || rec.State.Status === "removing" || !match(rec)) continue;
      const size = await dirSize(containerPaths(this.ctx, rec.Id).upper);
      try {
        await this.locks.run(rec.Id, async () => {
          if (isUp(rec)) return;
          await this.removeLocked(this.liveOf(rec), rec, false);
          deleted.push(rec.Id);
          space += size;
        });
      } catch (e) {
        this.ctx.log.warn({ id: rec.Id, err: messageOf(e) }, "prune could not remove a container");
      }
    }
    return { ContainersDeleted: deleted, SpaceReclaimed: space };
  }

  /**
   * conmon's attach socket for a container's current run (SOCK_SEQPACKET; output packets start
   * with a byte naming the stream: 2 stdout, 3 stderr; input is written as is). Not part of the
   * API interface yet: attach comes later.
   */
  attachSocket(ref: string): string {
    return attachSocketPath(this.ctx, this.ctx.store.resolve(ref).Id);
  }

  // ---- resources: pause, update, stats, top (container/pause.ts, update.ts, stats.ts, top.ts) ----

  async pause(ref: string): Promise<void> {
    const rec = this.ctx.store.resolve(ref);
    await this.locks.run(rec.Id, () => pauseContainer(this.ctx, rec));
  }

  async unpause(ref: string): Promise<void> {
    const rec = this.ctx.store.resolve(ref);
    await this.locks.run(rec.Id, () => unpauseContainer(this.ctx, rec));
  }

  async update(ref: string, body: UpdateRequest): Promise<{ Warnings: string[] }> {
    const rec = this.ctx.store.resolve(ref);
    return this.locks.run(rec.Id, () => updateContainer(this.ctx, rec, body));
  }

  stats(ref: string, options: StatsOptions): AsyncIterable<ContainerStats> {
    const id = this.ctx.store.resolve(ref).Id;
    const current = (): ContainerRecord | undefined => {
      const rec = this.ctx.store.find(id);
      return rec && rec.Id === id ? rec : undefined;
    };
    return streamStats(this.ctx, current, options);
  }

  top(ref: string, psArgs: string): Promise<TopResult> {
    return topContainer(this.ctx, this.ctx.store.resolve(ref), psArgs);
  }

  attachStdio(ref: string, signal: AbortSignal): PendingAttach {
    return attachStdio(this.ctx, this.ctx.store.resolve(ref), ref, signal);
  }

  resize(ref: string, height: number, width: number): Promise<void> {
    return resizeContainer(this.ctx, this.ctx.store.resolve(ref), ref, height, width);
  }

  // ---- networks -------------------------------------------------------------------------

  /** The engine's event log (`docker events`). */
  get events(): EventLog {
    return this.ctx.events;
  }

  get networks(): HostNetworks {
    return this.ctx.network;
  }

  /** Containers (any state) that have an endpoint on a network. */
  attachedTo(networkId: string): AttachedContainer[] {
    const out: AttachedContainer[] = [];
    for (const rec of this.ctx.store.all()) {
      for (const ep of Object.values(rec.NetworkSettings?.Networks ?? {})) {
        if (ep.NetworkID === networkId)
          out.push({ id: rec.Id, name: rec.Name, endpoint: structuredClone(ep) });
      }
    }
    return out;
  }

  private runningNetns(
    rec: ContainerRecord,
  ): { pid: number; etc: ReturnType<typeof containerPaths>["etc"] } | undefined {
    return isUp(rec) && rec.State.Pid > 0
      ? { pid: rec.State.Pid, etc: containerPaths(this.ctx, rec.Id).etc }
      : undefined;
  }

  async connectNetwork(ref: string, networkRef: string, request?: Partial<EndpointSettings>): Promise<void> {
    const rec = this.ctx.store.resolve(ref);
    await this.locks.run(rec.Id, async () => {
      const running = this.runningNetns(rec);
      await this.ctx.network.connect(rec, networkRef, request, running);
      await this.ctx.store.save(rec);
      if (running) networkEvent(this.ctx, rec, "connect", networkRef);
    });
  }

  async disconnectNetwork(ref: string, networkRef: string): Promise<void> {
    const rec = this.ctx.store.resolve(ref);
    await this.locks.run(rec.Id, async () => {
      const running = this.runningNetns(rec);
      await this.ctx.network.disconnect(rec, networkRef, running);
      await this.ctx.store.save(rec);
      if (running) networkEvent(this.ctx, rec, "disconnect", networkRef);
    });
  }

  /** The volume store, for the volume routes. */
  get volumes(): VolumeStoreApi {
    return this.ctx.volumes;
  }

  /** cp's archive API, export, diff, commit and sizes (agent/engine/files/). */
  get files(): ContainerFiles {
    return (this.filesApi ??= new ContainerFiles(this.ctx, (id, fn) => this.locks.run(id, fn)));
  }

  /** A container's changes to its image (the rootfs's upper folder): what a build step commits. */
  changesDir(ref: string): string {
    return containerPaths(this.ctx, this.ctx.store.resolve(ref).Id).upper;
  }

  usersOfImage(imageId: string): string[] {
    return this.ctx.store
      .all()
      .filter((r) => r.ImageId === imageId)
      .map((r) => r.Id);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher.close();
    await this.health.close();
    this.exec.close();
    for (const l of this.live.values()) {
      if (l.restartTimer) clearTimeout(l.restartTimer);
      l.restartTimer = undefined;
    }
    // Let exits being recorded finish writing, so the next engine reads whole records.
    await Promise.all([...this.live.values()].map((l) => l.handling ?? Promise.resolve()));
    await this.ctx.network.close();
  }
}
