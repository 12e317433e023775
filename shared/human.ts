// Human wording of durations, sizes and container states, as Docker prints them (go-units).
// The daemon uses it for the STATUS of `ps`; the CLI for its columns.

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** go-units HumanDuration: "Less than a second", "About a minute", "3 hours", "2 weeks"... */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / SECOND);
  if (seconds < 1) return "Less than a second";
  if (seconds === 1) return "1 second";
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / MINUTE);
  if (minutes === 1) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;
  // Go rounds half away from zero here; Math.round does the same for positive durations.
  const hours = Math.round(ms / HOUR);
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(Math.trunc(ms / HOUR) / 24 / 365)} years`;
}

function parseTime(value: string | undefined): number | undefined {
  if (!value || value.startsWith("0001-01-01")) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

export interface StateFields {
  Status: string;
  ExitCode?: number;
  StartedAt?: string;
  FinishedAt?: string;
  Paused?: boolean;
}

/**
 * The STATUS wording Docker's daemon computes ("Up 3 seconds", "Exited (0) 2 seconds ago"),
 * for when the API leaves it empty.
 */
export function describeState(s: StateFields, nowMs: number = Date.now()): string {
  const started = parseTime(s.StartedAt);
  const finished = parseTime(s.FinishedAt);
  switch (s.Status) {
    case "running":
      return started === undefined ? "Up" : `Up ${humanDuration(nowMs - started)}`;
    case "paused":
      return started === undefined ? "Up (Paused)" : `Up ${humanDuration(nowMs - started)} (Paused)`;
    case "restarting":
      return `Restarting (${s.ExitCode ?? 0}) ${humanDuration(nowMs - (finished ?? nowMs))} ago`;
    case "removing":
      return "Removal In Progress";
    case "dead":
      return "Dead";
    case "created":
      return "Created";
    case "exited":
      if (started === undefined) return "Created";
      return `Exited (${s.ExitCode ?? 0}) ${humanDuration(nowMs - (finished ?? nowMs))} ago`;
    default:
      return s.Status;
  }
}

/** Go's %.<precision>g: shortest form, exponent once the number has more digits than precision. */
export function goFormatG(v: number, precision: number): string {
  if (v === 0) return "0";
  const exp = Math.floor(Math.log10(Math.abs(Number(v.toPrecision(precision)))));
  if (exp < -4 || exp >= precision) {
    const [mantissa, e] = v.toExponential(precision - 1).split("e");
    const m = mantissa.includes(".") ? mantissa.replace(/\.?0+$/, "") : mantissa;
    const n = Number(e);
    return `${m}e${n < 0 ? "-" : "+"}${String(Math.abs(n)).padStart(2, "0")}`;
  }
  const s = v.toPrecision(precision);
  return s.includes(".") ? s.replace(/\.?0+$/, "") : s;
}

/**
 * go-units HumanSizeWithPrecision, as the docker CLI prints sizes: decimal units and
 * `precision` significant digits without trailing zeros ("1.98MB", "1MB", "4.268MB").
 */
export function dockerSize(bytes: number, precision = 3): string {
  const units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${goFormatG(v, precision)}${units[i]}`;
}
