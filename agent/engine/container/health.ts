// Health monitors: one per running container that has a health check. Each runs the check inside
// the container (runtime exec, runtime/exec-capture.ts) on Docker's schedule and keeps
// `.State.Health` on the record as dockerd does (daemon/health.go): starting until the first
// success, healthy after one, unhealthy after `retries` failures in a row (failures inside the
// start period do not count while starting), the last five results, and a `health_status: <status>`
// event at every change. The engine begins a monitor at start and at recovery and ends it at exit.
import { messageOf } from "../../../shared/errors.js";
import { execCapture } from "../runtime/exec-capture.js";
import { containerPaths, type EngineContext } from "./context.js";
import { containerEvent } from "./events.js";
import {
  goDuration,
  HEALTH_LOG_ENTRIES,
  HEALTH_OUTPUT_BYTES,
  probeOf,
  type HealthProbe,
} from "./health-config.js";
import type { ContainerRecord, HealthResult, HealthState } from "./types.js";

interface Monitor {
  id: string;
  probe: HealthProbe;
  /** When this run started (Docker counts the start period from State.StartedAt). */
  startedAtMs: number;
  timer?: NodeJS.Timeout;
  /** Aborts the check being run when the monitor ends. */
  abort: AbortController;
  stopped: boolean;
}

export class HealthMonitors {
  private readonly monitors = new Map<string, Monitor>();

  constructor(private readonly ctx: EngineContext) {}

  /**
   * A run begins (start, policy restart, or a running container found at recovery): status
   * "starting", failing streak 0, earlier results kept, as dockerd's initHealthMonitor. Call it
   * before the record is saved, so the saved start carries the health state.
   */
  begin(rec: ContainerRecord): void {
    this.stopMonitor(rec.Id);
    const probe = probeOf(rec.Config.Healthcheck);
    if (!probe) return;
    rec.State.Health = { Status: "starting", FailingStreak: 0, Log: rec.State.Health?.Log ?? [] };
    const m: Monitor = {
      id: rec.Id,
      probe,
      startedAtMs: Date.parse(rec.State.StartedAt) || Date.now(),
      abort: new AbortController(),
      stopped: false,
    };
    this.monitors.set(rec.Id, m);
    this.schedule(m, rec.State.Health);
  }

  /** The run ended: the monitor stops and the status reads "unhealthy" (dockerd's choice for a stopped monitor). */
  end(rec: ContainerRecord): void {
    this.stopMonitor(rec.Id);
    if (rec.State.Health) rec.State.Health.Status = "unhealthy";
  }

  /**
   * The daemon closes: checks stop; the containers and their health stay as they are, written
   * down so the next daemon starts from the latest results (between status changes they live
   * only in memory).
   */
  async close(): Promise<void> {
    const saves: Array<Promise<void>> = [];
    for (const [id, m] of [...this.monitors]) {
      const rec = this.current(m);
      this.stopMonitor(id);
      if (rec) saves.push(this.ctx.store.save(rec).catch(() => undefined));
    }
    await Promise.all(saves);
  }

  private stopMonitor(id: string): void {
    const m = this.monitors.get(id);
    if (!m) return;
    m.stopped = true;
    if (m.timer) clearTimeout(m.timer);
    m.abort.abort();
    this.monitors.delete(id);
  }

  /** Docker 25's interval rule: start-interval while starting inside the start period, else interval. */
  private delay(m: Monitor, h: HealthState): number {
    const inStartPeriod = Date.now() - m.startedAtMs < m.probe.startPeriodMs;
    return inStartPeriod && h.Status === "starting" ? m.probe.startIntervalMs : m.probe.intervalMs;
  }

  private schedule(m: Monitor, h: HealthState): void {
    if (m.stopped) return;
    m.timer = setTimeout(() => void this.tick(m), this.delay(m, h));
  }

  private current(m: Monitor): ContainerRecord | undefined {
    const rec = this.ctx.store.find(m.id);
    return !m.stopped && rec && rec.Id === m.id && this.monitors.get(m.id) === m ? rec : undefined;
  }

  private async tick(m: Monitor): Promise<void> {
    const before = this.current(m);
    if (!before || !before.State.Health) return;
    // A paused container is not checked (dockerd stops its monitor while paused); any other
    // state means this run is over and the engine has not said so yet.
    if (before.State.Status === "paused") return this.schedule(m, before.State.Health);
    if (before.State.Status !== "running") return;
    const result = await this.runCheck(m);
    const rec = this.current(m);
    // Ended while the check ran: its result belongs to no run (dockerd drops it too).
    if (!rec || !rec.State.Health) return;
    this.apply(m, rec, rec.State.Health, result);
    this.schedule(m, rec.State.Health);
  }

  private async runCheck(m: Monitor): Promise<HealthResult> {
    const start = new Date();
    const p = containerPaths(this.ctx, m.id);
    let exitCode: number;
    let output: string;
    try {
      const r = await execCapture({
        runtimePath: this.ctx.runtime.binary,
        runtimeRoot: this.ctx.runtime.root,
        id: m.id,
        specPath: p.spec,
        workDir: p.run,
        argv: m.probe.argv,
        timeoutMs: m.probe.timeoutMs,
        maxBytes: HEALTH_OUTPUT_BYTES,
        signal: m.abort.signal,
      });
      exitCode = r.exitCode;
      output = r.output;
      if (r.timedOut) {
        const limit = goDuration(m.probe.timeoutMs);
        output = output
          ? `Health check exceeded timeout (${limit}): ${output}`
          : `Health check exceeded timeout (${limit})`;
      }
    } catch (e) {
      exitCode = -1;
      output = messageOf(e);
    }
    return { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: exitCode, Output: output };
  }

  private apply(m: Monitor, rec: ContainerRecord, h: HealthState, result: HealthResult): void {
    const old = h.Status;
    h.Log = [...h.Log, result].slice(-HEALTH_LOG_ENTRIES);
    if (result.ExitCode === 0) {
      h.FailingStreak = 0;
      h.Status = "healthy";
    } else {
      // Still starting and inside the start period: a failure does not count yet.
      const grace =
        h.Status === "starting" && Date.parse(result.Start) - m.startedAtMs < m.probe.startPeriodMs;
      if (!grace) {
        h.FailingStreak++;
        if (h.FailingStreak >= m.probe.retries) h.Status = "unhealthy";
      }
    }
    if (h.Status === old) return;
    this.ctx.log.info(
      { id: rec.Id, health: h.Status, failingStreak: h.FailingStreak },
      "container health changed",
    );
    containerEvent(this.ctx, rec, `health_status: ${h.Status}`);
    // Results in between live in memory (inspect reads it); a change of status is written down.
    void this.ctx.store
      .save(rec)
      .catch((e: unknown) =>
        this.ctx.log.warn({ id: rec.Id, err: messageOf(e) }, "saving health state failed"),
      );
  }
}
