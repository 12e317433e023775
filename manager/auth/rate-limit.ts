// Per-source limits for what anyone who can reach the cluster port may do: token buckets for
// failed joins (a guessed token costs the guesser, not the cluster) and a "once per interval"
// gate so a source that keeps failing fills the log with one line per interval, not one per try.
// Both forget idle sources, so a flood of addresses cannot grow them without bound.

export interface Clock {
  now(): number;
}

const systemClock: Clock = { now: () => Date.now() };

/** The address part of a gRPC peer string ("1.2.3.4:5678", "[::1]:5678", "ipv4:..."). */
export function sourceOf(peer: string): string {
  const bare = peer.replace(/^ipv[46]:/, "");
  const m = /^\[(.*)\]:\d+$/.exec(bare) ?? /^(.*?):\d+$/.exec(bare);
  return m ? m[1] : bare;
}

/** Token buckets per source: `burst` tokens, one back every `refillMs`. */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly o: { burst: number; refillMs: number; maxSources?: number },
    private readonly clock: Clock = systemClock,
  ) {}

  private current(source: string): { tokens: number; at: number } {
    const now = this.clock.now();
    const b = this.buckets.get(source);
    if (!b) return { tokens: this.o.burst, at: now };
    const refilled = Math.min(this.o.burst, b.tokens + (now - b.at) / this.o.refillMs);
    return { tokens: refilled, at: now };
  }

  /** Whether `source` has a token left (nothing is taken). */
  has(source: string): boolean {
    return this.current(source).tokens >= 1;
  }

  /** Take a token from `source`; false when it had none. */
  take(source: string): boolean {
    const b = this.current(source);
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    this.buckets.delete(source);
    this.buckets.set(source, b);
    this.prune();
    return ok;
  }

  /** Milliseconds until `source` has a token again (0 if it has one). */
  waitMs(source: string): number {
    const b = this.current(source);
    return b.tokens >= 1 ? 0 : Math.ceil((1 - b.tokens) * this.o.refillMs);
  }

  private prune(): void {
    const max = this.o.maxSources ?? 10_000;
    // Oldest first (Map keeps insertion order; take() re-inserts).
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= max) break;
      this.buckets.delete(key);
    }
  }
}

/** Says yes once per `intervalMs` for each key: for log lines about a source that keeps failing. */
export class OncePer {
  private readonly last = new Map<string, number>();
  private readonly held = new Map<string, number>();

  constructor(
    private readonly intervalMs: number,
    private readonly clock: Clock = systemClock,
    private readonly maxKeys = 10_000,
  ) {}

  /** True the first time and then once per interval; how many were held back in between. */
  due(key: string): { due: boolean; suppressed: number } {
    const now = this.clock.now();
    const prev = this.last.get(key);
    if (prev !== undefined && now - prev < this.intervalMs) {
      this.held.set(key, (this.held.get(key) ?? 0) + 1);
      return { due: false, suppressed: 0 };
    }
    this.last.delete(key);
    this.last.set(key, now);
    const suppressed = this.held.get(key) ?? 0;
    this.held.delete(key);
    for (const k of this.last.keys()) {
      if (this.last.size <= this.maxKeys) break;
      this.last.delete(k);
      this.held.delete(k);
    }
    return { due: true, suppressed };
  }
}
