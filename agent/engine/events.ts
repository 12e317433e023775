// The engine's event log: what `docker events` streams. Every part of the engine (containers,
// exec, health checks, images, networks, volumes, the daemon) emits here; the /events route
// replays what is kept (for --since) and follows what comes. Bounded by count and by age, so a
// busy host keeps a window of its recent history, never an unbounded one.

/** Docker's event types; shoal's engine emits the local ones. */
export type EventType =
  | "container"
  | "image"
  | "network"
  | "volume"
  | "daemon"
  | "plugin"
  | "builder"
  | "node"
  | "service"
  | "secret"
  | "config";

/** One event in the Engine API's shape (Docker's events.Message, without the deprecated fields). */
export interface EngineEvent {
  Type: EventType;
  /** Docker's action name: create, start, die, exec_start: sh, health_status: healthy, pull, ... */
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: "local" | "swarm";
  /** Unix seconds. */
  time: number;
  /**
   * Unix nanoseconds (a double: exact to about 256 ns at today's dates, which is finer than the
   * clock it comes from). Order within the log is `seq`'s, not this.
   */
  timeNano: number;
  /** Position in this log: strictly increasing, so replay and follow never repeat or skip one. */
  seq: number;
}

export type EventListener = (event: EngineEvent) => void;

export const DEFAULT_EVENT_LIMIT = 10_000;
/** How long an event is kept for `--since` (Docker keeps only its last 256, of any age). */
export const DEFAULT_EVENT_MAX_AGE_MS = 24 * 3_600_000;

export interface EventLogOptions {
  limit?: number;
  maxAgeMs?: number;
  /** The clock, in Unix milliseconds (tests pass their own). */
  now?: () => number;
}

export class EventLog {
  private readonly kept: EngineEvent[] = [];
  private readonly listeners = new Set<EventListener>();
  private seq = 0;
  private lastNano = 0;
  private readonly limit: number;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(options: EventLogOptions | number = {}) {
    const o = typeof options === "number" ? { limit: options } : options;
    this.limit = o.limit ?? DEFAULT_EVENT_LIMIT;
    this.maxAgeMs = o.maxAgeMs ?? DEFAULT_EVENT_MAX_AGE_MS;
    this.now = o.now ?? Date.now;
  }

  emit(type: EventType, action: string, id: string, attributes: Record<string, string> = {}): EngineEvent {
    const ms = this.now();
    // Never backwards, even if the wall clock steps back: since/until compare against it.
    const nano = Math.max(ms * 1_000_000, this.lastNano);
    this.lastNano = nano;
    const event: EngineEvent = {
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: { ...attributes } },
      scope: "local",
      time: Math.floor(nano / 1_000_000_000),
      timeNano: nano,
      seq: ++this.seq,
    };
    this.kept.push(event);
    this.trim(ms);
    for (const fn of [...this.listeners]) {
      try {
        fn(event);
      } catch {
        // A listener's failure is its own (a closed client); others still get the event.
      }
    }
    return event;
  }

  private trim(nowMs: number): void {
    let drop = Math.max(0, this.kept.length - this.limit);
    const oldest = (nowMs - this.maxAgeMs) * 1_000_000;
    while (drop < this.kept.length && this.kept[drop].timeNano < oldest) drop++;
    if (drop > 0) this.kept.splice(0, drop);
  }

  /** The kept events, oldest first. */
  history(): readonly EngineEvent[] {
    this.trim(this.now());
    return this.kept;
  }

  /** Call fn for every event from now on; returns the function that stops it. */
  subscribe(fn: EventListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * The kept events with timeNano in [sinceNano, untilNano] that `include` accepts, and a
   * subscription to every later one. Both happen in one synchronous step, so an event is either
   * in the replay or given to `fn`, never both and never neither.
   */
  replayAndFollow(
    window: { sinceNano?: number; untilNano?: number },
    include: (e: EngineEvent) => boolean,
    fn: EventListener,
  ): { replay: EngineEvent[]; stop: () => void } {
    const replay =
      window.sinceNano === undefined && window.untilNano === undefined
        ? []
        : this.history().filter(
            (e) =>
              (window.sinceNano === undefined || e.timeNano >= window.sinceNano) &&
              (window.untilNano === undefined || e.timeNano <= window.untilNano) &&
              include(e),
          );
    const stop = this.subscribe((e) => {
      if (include(e)) fn(e);
    });
    return { replay, stop };
  }

  /** How many clients follow the log (/info's NEventsListener). */
  get listenerCount(): number {
    return this.listeners.size;
  }
}
