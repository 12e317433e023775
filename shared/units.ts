import { invalid } from "./errors.js";

const sizeUnits: Record<string, number> = { "": 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/**
 * Parse a size as the docker CLI does for --memory and friends: `512m`, `1g`, `1024`, `1.5g`, `64kb`.
 * `flag` names the option in the error so the user knows what to fix.
 */
export function parseBytes(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/i.exec(value.trim());
  if (!m)
    throw invalid(
      `invalid value "${value}" for ${flag}: use a number with an optional unit b, k, m, g or t (for example 512m)`,
    );
  return Math.round(Number(m[1]) * sizeUnits[m[2].toLowerCase()]);
}

/** Parse --cpus: a positive decimal number of CPUs; returns nano-CPUs as the Engine API carries them. */
export function parseNanoCpus(value: string, flag = "--cpus"): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || value.trim() === "") {
    throw invalid(`invalid value "${value}" for ${flag}: use a positive number of CPUs such as 0.5 or 2`);
  }
  return Math.round(n * 1e9);
}

const durationUnits: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Parse a Go-style duration (`10s`, `1m30s`, `500ms`) into milliseconds. */
export function parseDurationMs(value: string, flag: string): number {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  for (const m of value.matchAll(re)) {
    total += Number(m[1]) * durationUnits[m[2]];
    consumed += m[0].length;
  }
  if (consumed !== value.length || value.length === 0) {
    throw invalid(`invalid duration "${value}" for ${flag}: use a number with a unit such as 10s, 5m or 1h`);
  }
  return total;
}
