// The times `docker events --since/--until` (and `logs --since`) take, as dockerd reads them:
// Unix seconds with an optional fraction ("1700000000.123456789", what the docker CLI sends),
// RFC 3339 and its shorter forms (with a zone, or in local time without one), and Go durations
// counted back from now ("10m", "1h30m", "0s"). Results are Unix nanoseconds as a double, which
// is exact to well under a microsecond: finer than any clock an event is stamped with.
import { invalid } from "./errors.js";
import { parseGoDuration } from "./units.js";

/** "seconds" or "seconds.fraction" in nanoseconds; undefined when it is not one. */
function parseUnix(value: string): number | undefined {
  const m = /^(\d+)(?:\.(\d{0,20}))?$/.exec(value);
  if (!m) return undefined;
  const frac = (m[2] ?? "").padEnd(9, "0").slice(0, 9);
  return Number(m[1]) * 1e9 + Number(frac);
}

/** RFC 3339 and dockerd's shorter forms; local time when no zone is given. */
function parseRfc3339(value: string): number | undefined {
  const m =
    /^(\d{4})-(\d\d)-(\d\d)(?:T(\d\d)(?::(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?)?(Z|z|[+-]\d\d:\d\d)?$/.exec(
      value,
    );
  if (!m) return undefined;
  const [, y, mo, d, h = "0", mi = "0", s = "0", frac = "", zone] = m;
  const fields = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)] as const;
  // Date would roll "2026-13-45T99" over into another date; dockerd refuses it.
  if (fields[1] > 11 || fields[2] < 1 || fields[2] > 31 || fields[3] > 23 || fields[4] > 59 || fields[5] > 60)
    return undefined;
  let ms: number;
  if (zone === undefined) {
    ms = new Date(...fields).getTime();
  } else {
    ms = Date.UTC(...fields);
    if (zone !== "Z" && zone !== "z") {
      const sign = zone[0] === "-" ? -1 : 1;
      ms -= sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
    }
  }
  if (Number.isNaN(ms)) return undefined;
  return ms * 1e6 + Number(frac.padEnd(9, "0"));
}

/**
 * Parse one of dockerd's time forms into Unix nanoseconds. `nowMs` is what durations count back
 * from. A value that is none of them is a 400 naming the parameter and the forms it takes.
 */
export function parseEventTime(value: string, nowMs: number, what = "since"): number {
  const v = value.trim();
  const bad = () =>
    invalid(
      `invalid value "${value}" for ${what}: use Unix seconds (1700000000.5), RFC 3339 (2024-01-02T15:04:05Z) or a duration such as 10m`,
    );
  if (v === "") throw bad();
  if (v !== "0") {
    const d = parseGoDuration(v);
    if (d !== undefined) return nowMs * 1e6 - d;
  }
  const t = parseUnix(v) ?? parseRfc3339(v);
  if (t === undefined) throw bad();
  return t;
}

/** Unix nanoseconds as the docker CLI sends them: "seconds.nanoseconds". */
export function formatUnixNano(nano: number): string {
  const sec = Math.floor(nano / 1e9);
  const ns = Math.max(0, Math.round(nano - sec * 1e9));
  return `${sec}.${String(Math.min(ns, 999_999_999)).padStart(9, "0")}`;
}
