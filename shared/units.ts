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

const GO_DURATION_UNIT_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** A Go duration ("1h30m", "1.5s", "-2m") in nanoseconds, as time.ParseDuration; undefined when it is not one. */
export function parseGoDuration(value: string): number | undefined {
  const m = /^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/.exec(value);
  if (!m) return undefined;
  let total = 0;
  for (const part of value.slice(m[1].length).matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g))
    total += Number(part[1]) * GO_DURATION_UNIT_NS[part[2]];
  return m[1] === "-" ? -total : total;
}

/** Parse a Go-style duration (`10s`, `1m30s`, `500ms`, no sign) into milliseconds. */
export function parseDurationMs(value: string, flag: string): number {
  const ns = /^[+-]/.test(value) ? undefined : parseGoDuration(value);
  if (ns === undefined) {
    throw invalid(`invalid duration "${value}" for ${flag}: use a number with a unit such as 10s, 5m or 1h`);
  }
  return ns / 1e6;
}
