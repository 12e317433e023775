// The one seeded PRNG of the Raft tests (mulberry32): every run is reproducible from its seed.

/** Uniform draws in [0, 1) from a seed. */
export function seededRand(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Rand {
  private readonly draw: () => number;
  constructor(readonly seed: number) {
    this.draw = seededRand(seed >>> 0 || 0x9e3779b9);
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.draw();
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
  /** A generator for a sub-system, so adding draws in one place does not shift the others. */
  fork(): Rand {
    return new Rand(Math.floor(this.next() * 4294967296));
  }
}
