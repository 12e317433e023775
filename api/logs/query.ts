// The query of a logs request, as `GET /containers/{id}/logs` and `GET /services/{id}/logs` both
// take it: which streams, how many lines from the end, from when, follow or not, and how to prefix.
import { invalid } from "../../shared/errors.js";
import { qBool, qString, type Query } from "../../shared/query.js";

export interface LogQuery {
  follow: boolean;
  stdout: boolean;
  stderr: boolean;
  /** The last N lines; undefined: all of them. */
  tail?: number;
  /** Unix seconds; undefined: from the start. */
  since?: number;
  /** Prefix each line with its time (Docker's RFC 3339 with nanoseconds). */
  timestamps: boolean;
  /** Prefix each line with its context (service logs: the task's node, service and task ids). */
  details: boolean;
}

/** Docker's `since`/`until` for logs: Unix seconds, possibly fractional ("1700000000.5"). */
export function unixSeconds(q: Query, key: string): number | undefined {
  const v = qString(q, key);
  if (v === undefined || v === "" || v === "0") return undefined;
  const n = Number(v);
  if (!Number.isFinite(n))
    throw invalid(`invalid value "${v}" for ${key}: expected a Unix timestamp in seconds`);
  return n;
}

/** Reads and checks a logs query; a bad value is a 400 that says what to pass instead. */
export function parseLogQuery(q: Query): LogQuery {
  const stdout = qBool(q, "stdout");
  const stderr = qBool(q, "stderr");
  if (!stdout && !stderr) throw invalid("you must choose at least one stream: pass stdout=1 and/or stderr=1");
  const tailText = qString(q, "tail");
  const tail = tailText === undefined || tailText === "all" || tailText === "" ? undefined : Number(tailText);
  if (tail !== undefined && (!Number.isInteger(tail) || tail < 0))
    throw invalid(`invalid value "${tailText}" for tail: use a number of lines or "all"`);
  return {
    follow: qBool(q, "follow"),
    stdout,
    stderr,
    tail,
    since: unixSeconds(q, "since"),
    timestamps: qBool(q, "timestamps"),
    details: qBool(q, "details"),
  };
}
