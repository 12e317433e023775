// A container's health check settings: Docker's merge of --health-* with the image's HEALTHCHECK,
// the checks dockerd makes at create, and the defaults the monitor runs with.
import { invalid } from "../../../shared/errors.js";
import type { HealthConfig } from "../image/types.js";

const NS_PER_MS = 1_000_000;

/** dockerd's defaults (daemon/health.go). */
export const HEALTH_DEFAULTS = {
  intervalMs: 30_000,
  timeoutMs: 30_000,
  startPeriodMs: 0,
  startIntervalMs: 5_000,
  retries: 3,
} as const;

/** The log keeps this many results, oldest first. */
export const HEALTH_LOG_ENTRIES = 5;
/** A check's output is cut at this many bytes ("..." marks the cut). */
export const HEALTH_OUTPUT_BYTES = 4096;

/**
 * Docker's merge (daemon/commit.go): no Healthcheck from the user takes the image's; one with
 * some fields left zero takes those from the image. Test ["NONE"] from either side disables it.
 */
export function mergeHealthcheck(
  user: HealthConfig | null | undefined,
  image: HealthConfig | null | undefined,
): HealthConfig | undefined {
  if (!user) return image ? structuredClone(image) : undefined;
  const out: HealthConfig = { Test: [...(user.Test ?? [])] };
  if (out.Test.length === 0 && image) out.Test = [...image.Test];
  for (const key of HEALTH_FIELDS) {
    const v = user[key] || image?.[key];
    // Zero means "not set" (Go's omitempty): inspect shows only what is set, as dockerd does.
    if (v) out[key] = v;
  }
  return out;
}

const HEALTH_FIELDS = ["Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"] as const;

const DURATIONS = [
  ["Interval", "--health-interval"],
  ["Timeout", "--health-timeout"],
  ["StartPeriod", "--health-start-period"],
  ["StartInterval", "--health-start-interval"],
] as const;

/** dockerd's checks at create (validateHealthCheck), plus a test shoal can run. */
export function validateHealthcheck(h: HealthConfig | undefined): void {
  if (!h) return;
  for (const [key, flag] of DURATIONS) {
    const v = h[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== "number" || !Number.isFinite(v))
      throw invalid(`${key} in Healthcheck must be a duration in nanoseconds: fix ${flag}`);
    if (v !== 0 && v < NS_PER_MS)
      throw invalid(`${key} in Healthcheck cannot be less than 1ms: raise ${flag}`);
  }
  if (h.Retries !== undefined && h.Retries !== null && (!Number.isInteger(h.Retries) || h.Retries < 0))
    throw invalid("Retries in Healthcheck cannot be negative: fix --health-retries");
  // The docker CLI sends Test null when only other --health-* flags are given: the image's test then.
  if (h.Test === null || h.Test === undefined) return;
  if (!Array.isArray(h.Test) || h.Test.some((w) => typeof w !== "string"))
    throw invalid(
      'Healthcheck.Test must be a list of strings: ["CMD", ...], ["CMD-SHELL", "command"] or ["NONE"]',
    );
  const kind = h.Test[0];
  if (h.Test.length === 0 || kind === "NONE") return;
  if (kind !== "CMD" && kind !== "CMD-SHELL")
    throw invalid(
      `unknown health check type "${kind}" in Healthcheck.Test: use CMD, CMD-SHELL or NONE (--health-cmd gives CMD-SHELL)`,
    );
  if (h.Test.length < 2 || (kind === "CMD-SHELL" && h.Test[1].trim() === ""))
    throw invalid(`the health check ${kind} has no command: give one with --health-cmd`);
}

/** What the monitor runs, with defaults applied; undefined when there is nothing to run. */
export interface HealthProbe {
  argv: string[];
  intervalMs: number;
  timeoutMs: number;
  startPeriodMs: number;
  startIntervalMs: number;
  retries: number;
}

const ms = (ns: number | undefined, fallback: number): number => (ns ? ns / NS_PER_MS : fallback);

/** Docker's getProbe: CMD runs as given, CMD-SHELL under /bin/sh -c; NONE or no test runs nothing. */
export function probeOf(h: HealthConfig | undefined): HealthProbe | undefined {
  if (!h || !Array.isArray(h.Test) || h.Test.length < 2) return undefined;
  const [kind, ...rest] = h.Test;
  let argv: string[];
  if (kind === "CMD") argv = rest;
  else if (kind === "CMD-SHELL") argv = ["/bin/sh", "-c", ...rest];
  else return undefined;
  return {
    argv,
    intervalMs: ms(h.Interval, HEALTH_DEFAULTS.intervalMs),
    timeoutMs: ms(h.Timeout, HEALTH_DEFAULTS.timeoutMs),
    startPeriodMs: ms(h.StartPeriod, HEALTH_DEFAULTS.startPeriodMs),
    startIntervalMs: ms(h.StartInterval, HEALTH_DEFAULTS.startIntervalMs),
    retries: h.Retries && h.Retries > 0 ? h.Retries : HEALTH_DEFAULTS.retries,
  };
}

/** Go's time.Duration String() for the timeout message ("1s", "500ms", "1m30s"), as dockerd prints it. */
export function goDuration(msValue: number): string {
  if (msValue === 0) return "0s";
  if (msValue < 1000) return `${msValue}ms`;
  const totalSec = msValue / 1000;
  const h = Math.floor(totalSec / 3600);
  const m = Math.floor((totalSec % 3600) / 60);
  const s = totalSec - h * 3600 - m * 60;
  const sec = `${Number(s.toFixed(9))}s`;
  if (h > 0) return `${h}h${m}m${sec}`;
  if (m > 0) return `${m}m${sec}`;
  return sec;
}
