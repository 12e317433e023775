// Exec sessions kept in memory, as dockerd keeps them: by exact id, and per container so a
// removed container's sessions go with it. Finished sessions stay inspectable for a while (the
// docker CLI reads the exit code right after the stream ends; scripts may look later), then go:
// at most FINISHED_PER_CONTAINER of them per container and none older than FINISHED_KEEP_MS.
// Sessions never started are kept while their container lives, at most UNSTARTED_PER_CONTAINER.
import type { ConmonExec } from "../runtime/conmon-exec.js";
import type { ExecCreateRequest, ExecState } from "./types.js";

export const FINISHED_KEEP_MS = 5 * 60_000;
export const FINISHED_PER_CONTAINER = 100;
export const UNSTARTED_PER_CONTAINER = 1000;

export interface ExecSession {
  id: string;
  containerId: string;
  config: ExecCreateRequest;
  state: ExecState;
  exitCode: number | null;
  pid: number;
  /** Set from the start on: the session's folder (conmon's bundle, process.json, pid files). */
  dir?: string;
  conmon?: ConmonExec;
  tty: boolean;
  finishedAtMs: number;
  /** Resolves once the session reached "exited". */
  finished: Promise<void>;
  markFinished: () => void;
  /** Resolves once the process runs (or failed to); resizes wait for it. */
  started: Promise<void>;
  markStarted: () => void;
  /** A client's stream of this session ended: the exit code is about to be asked for. */
  streamEnded: boolean;
}

export function newSession(id: string, containerId: string, config: ExecCreateRequest): ExecSession {
  let markFinished!: () => void;
  let markStarted!: () => void;
  const finished = new Promise<void>((r) => (markFinished = r));
  const started = new Promise<void>((r) => (markStarted = r));
  return {
    id,
    containerId,
    config,
    state: "created",
    exitCode: null,
    pid: 0,
    tty: config.Tty,
    finishedAtMs: 0,
    finished,
    markFinished,
    started,
    markStarted,
    streamEnded: false,
  };
}

export class ExecSessions {
  private readonly byId = new Map<string, ExecSession>();
  private readonly byContainer = new Map<string, Set<string>>();

  get(id: string): ExecSession | undefined {
    return this.byId.get(id);
  }

  add(s: ExecSession): void {
    this.byId.set(s.id, s);
    const set = this.byContainer.get(s.containerId) ?? new Set<string>();
    this.byContainer.set(s.containerId, set);
    set.add(s.id);
    this.trim(s.containerId, Date.now());
  }

  ofContainer(containerId: string): ExecSession[] {
    return [...(this.byContainer.get(containerId) ?? [])].flatMap((id) => {
      const s = this.byId.get(id);
      return s ? [s] : [];
    });
  }

  all(): ExecSession[] {
    return [...this.byId.values()];
  }

  delete(id: string): void {
    const s = this.byId.get(id);
    if (!s) return;
    this.byId.delete(id);
    const set = this.byContainer.get(s.containerId);
    set?.delete(id);
    if (set && set.size === 0) this.byContainer.delete(s.containerId);
  }

  dropContainer(containerId: string): ExecSession[] {
    const gone = this.ofContainer(containerId);
    for (const s of gone) this.byId.delete(s.id);
    this.byContainer.delete(containerId);
    return gone;
  }

  /** Forget finished sessions past their time, and the oldest beyond the per-container bounds. */
  trim(containerId: string, nowMs: number): void {
    const sessions = this.ofContainer(containerId);
    const finished = sessions.filter((s) => s.state === "exited");
    const stale = finished.filter((s) => nowMs - s.finishedAtMs > FINISHED_KEEP_MS);
    const fresh = finished.filter((s) => !stale.includes(s)).sort((a, b) => a.finishedAtMs - b.finishedAtMs);
    const unstarted = sessions.filter((s) => s.state === "created");
    const drop = [
      ...stale,
      ...fresh.slice(0, Math.max(0, fresh.length - FINISHED_PER_CONTAINER)),
      // Map order is insertion order: the first ones are the oldest.
      ...unstarted.slice(0, Math.max(0, unstarted.length - UNSTARTED_PER_CONTAINER)),
    ];
    for (const s of drop) this.delete(s.id);
  }

  trimAll(nowMs: number): void {
    for (const containerId of [...this.byContainer.keys()]) this.trim(containerId, nowMs);
  }
}
