import { invalid, notImplemented } from "../../../shared/errors.js";

// What a container's LogConfig (`--log-driver`, `--log-opt`) asks of shoal. conmon writes every
// log (k8s-file format); json-file and local are the same thing to a user: a file `docker logs`
// reads back, optionally rotated at max-size into at most max-file files. "none" keeps nothing.

export interface LogPolicy {
  /** "file": conmon writes the log; "none": conmon writes nothing. */
  kind: "file" | "none";
  /** Bytes a file may hold before the next one is started; undefined: one file, unbounded. */
  maxSize?: number;
  /** Files kept, the one being written included (1 = truncate at max-size, like Docker). */
  maxFile: number;
}

/** Drivers whose semantics shoal gives; "" and k8s-file (the old default name) mean json-file. */
const FILE_DRIVERS = new Set(["", "json-file", "local", "k8s-file"]);
const OPTS = new Set(["max-size", "max-file", "compress"]);

/** Docker's defaults for the local driver; json-file's default is one unbounded file. */
const LOCAL_MAX_SIZE = 20 * 1024 * 1024;
const LOCAL_MAX_FILE = 5;

/** Docker's RAMInBytes: a number with an optional k/m/g/t suffix (powers of 1024), optional "b". */
export function parseLogSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(text);
  if (!m) return undefined;
  const power = ["", "k", "m", "g", "t"].indexOf(m[2].toLowerCase());
  return Math.floor(Number(m[1]) * 1024 ** power);
}

function refuse(what: string, fix: string): never {
  throw invalid(`${what} is not supported by shoal (LogConfig): ${fix}`);
}

/** The policy for a LogConfig, or a 400 naming the driver or option shoal does not implement. */
export function logPolicy(config: { Type?: unknown; Config?: unknown } | null | undefined): LogPolicy {
  const type = typeof config?.Type === "string" ? config.Type : "";
  const raw = config?.Config;
  const opts: Record<string, string> =
    raw !== null && typeof raw === "object" ? (raw as Record<string, string>) : {};
  if (type === "none") {
    const keys = Object.keys(opts);
    if (keys.length > 0)
      throw invalid(`unknown log opt '${keys[0]}' for none log driver: the none driver takes no --log-opt`);
    return { kind: "none", maxFile: 1 };
  }
  if (!FILE_DRIVERS.has(type))
    refuse(
      `--log-driver ${type}`,
      "shoal keeps logs in a file read back by `docker logs`; use --log-driver json-file, local or none",
    );
  for (const key of Object.keys(opts)) {
    if (!OPTS.has(key))
      refuse(`--log-opt ${key}`, "shoal's log files take only max-size, max-file and compress=false");
  }
  const local = type === "local";
  let maxSize: number | undefined = local ? LOCAL_MAX_SIZE : undefined;
  let maxFile = local ? LOCAL_MAX_FILE : 1;
  if (opts["max-size"] !== undefined && opts["max-size"] !== "-1") {
    const n = parseLogSize(String(opts["max-size"]));
    if (n === undefined || n <= 0)
      throw invalid(`invalid --log-opt max-size=${opts["max-size"]}: use a size such as 10k, 20m or 1g`);
    maxSize = n;
  }
  if (opts["max-file"] !== undefined) {
    const text = String(opts["max-file"]);
    const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!(n >= 1)) throw invalid(`invalid --log-opt max-file=${text}: max-file cannot be less than 1`);
    if (maxSize === undefined && n > 1)
      throw invalid(
        `--log-opt max-file=${text} needs --log-opt max-size: files rotate when they reach max-size`,
      );
    maxFile = n;
  }
  const compress = opts.compress;
  if (compress !== undefined && !/^(false|0|f)$/i.test(String(compress)))
    refuse(
      `--log-opt compress=${String(compress)}`,
      "rotated log files are kept uncompressed; use --log-opt compress=false or leave it out",
    );
  return { kind: "file", maxSize, maxFile };
}

/** `docker logs` of a container that keeps no log: Docker's 501. */
export function assertLogsReadable(config: { Type?: unknown } | null | undefined, name: string): void {
  if (config?.Type === "none")
    throw notImplemented(
      `configured logging driver does not support reading: container ${name} runs with --log-driver none, so no log is kept; recreate it with --log-driver json-file to read its output`,
    );
}
