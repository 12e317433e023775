// The engine's event log: what `docker events` streams. Every part of the engine (containers,
// exec, health checks, images, networks, volumes, the daemon) emits here; the /events route
// replays what is kept (for --since) and follows what comes. Bounded by count, so a busy host
// keeps a window of its recent history, never an unbounded one.

/** Docker's event types; shoal's engine emits the local ones. */
export type EventType = "container" | "image" | "network" | "volume" | "daemon" | "plugin" | "builder";

/** One event in the Engine API's shape (Docker's events.Message, without the deprecated fields). */
export interface EngineEvent {
  Type: EventType;
  /** Docker's action name: create, start, die, exec_start: sh, health_status: healthy, pull, ... */
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: "local" | "swarm";
  /** Unix seconds. */
  time: number;
  /** Unix nanoseconds; unique and increasing within one log, so replay and follow never repeat or skip one. */
  timeNano: number;
}

export type EventListener = (event: EngineEvent) => void;

export const DEFAULT_EVENT_LIMIT = 10_000;

export class EventLog {
  private readonly kept: EngineEvent[] = [];
  private readonly listeners = new Set<EventListener>();
  private lastNano = 0;

  constructor(private readonly limit = DEFAULT_EVENT_LIMIT) {}

  emit(type: EventType, action: string, id: string, attributes: Record<string, string> = {}): EngineEvent {
    // Date.now() has millisecond grain; nanoseconds only order events, so they are made strictly increasing.
    const nano = Math.max(Date.now() * 1_000_000, this.lastNano + 1);
    this.lastNano = nano;
    const event: EngineEvent = {
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: { ...attributes } },
      scope: "local",
      time: Math.floor(nano / 1_000_000_000),
      timeNano: nano,
    };
    this.kept.push(event);
    if (this.kept.length > this.limit) this.kept.splice(0, this.kept.length - this.limit);
    for (const fn of [...this.listeners]) {
      try {
        fn(event);
      } catch {
        // A listener's failure is its own (a closed client); others still get the event.
      }
    }
    return event;
  }

  /** The kept events, oldest first. */
  history(): readonly EngineEvent[] {
    return this.kept;
  }

  /** Call fn for every event from now on; returns the function that stops it. */
  subscribe(fn: EventListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
