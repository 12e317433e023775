import { watch, type FSWatcher } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { errnoCode } from "../../../shared/errors.js";
import type { LogLine, LogOptions } from "../container/types.js";

// Reader for conmon's k8s-file log: one record per line, `<RFC3339Nano> <stdout|stderr> <F|P> <text>`,
// where P marks a piece of a longer line that the following records of that stream continue.

export interface LogRecord extends LogLine {
  /** false for a P (partial) record: the line goes on in a later record. */
  complete: boolean;
  /** Unix seconds, fractional. */
  seconds: number;
}

/** RFC 3339 with nanoseconds → Unix seconds (Date keeps only milliseconds, so add the rest by hand). */
export function parseLogTime(time: string): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)$/.exec(time);
  if (!m) return Number.NaN;
  const whole = Date.parse(`${m[1]}${m[3]}`) / 1000;
  return whole + (m[2] ? Number(`0.${m[2]}`) : 0);
}

export function parseLogRecord(line: Buffer): LogRecord | undefined {
  const s1 = line.indexOf(0x20);
  const s2 = s1 < 0 ? -1 : line.indexOf(0x20, s1 + 1);
  const s3 = s2 < 0 ? -1 : line.indexOf(0x20, s2 + 1);
  if (s3 < 0) {
    // A record with empty text may lack the last space.
    if (s2 < 0) return undefined;
  }
  const time = line.subarray(0, s1).toString("latin1");
  const stream = line.subarray(s1 + 1, s2).toString("latin1");
  if (stream !== "stdout" && stream !== "stderr") return undefined;
  const tag = line.subarray(s2 + 1, s3 < 0 ? line.length : s3).toString("latin1");
  const complete = !tag.split(":").includes("P");
  const text = s3 < 0 ? Buffer.alloc(0) : line.subarray(s3 + 1);
  const data = complete ? Buffer.concat([text, Buffer.from("\n")]) : Buffer.from(text);
  return { time, stream, data, complete, seconds: parseLogTime(time) };
}

function wanted(r: LogRecord, o: LogOptions): boolean {
  if (r.stream === "stdout" ? !o.stdout : !o.stderr) return false;
  if (o.since !== undefined && o.since > 0 && r.seconds < o.since) return false;
  if (o.until !== undefined && o.until > 0 && r.seconds > o.until) return false;
  return true;
}

const CHUNK = 64 * 1024;

/**
 * Where the last `tail` lines start, reading backwards in chunks so a big log costs only what is
 * shown. A line is a run of records ending with a complete (F) one.
 */
export async function tailOffset(fh: FileHandle, size: number, tail: number): Promise<number> {
  return (await tailStart(fh, size, tail)).offset;
}

/** Where the last `tail` lines start and how many of them the file has (fewer when it is short). */
export async function tailStart(
  fh: FileHandle,
  size: number,
  tail: number,
): Promise<{ offset: number; lines: number }> {
  if (tail <= 0) return { offset: size, lines: 0 };
  let completes = 0;
  let pos = size;
  let carry = Buffer.alloc(0);
  // A record still being written at the end of the file is not a line yet: skip it.
  let trimmed = false;
  while (pos > 0) {
    const len = Math.min(CHUNK, pos);
    pos -= len;
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, pos);
    const data = carry.length ? Buffer.concat([buf, carry]) : buf;
    let recEnd = data.length;
    if (!trimmed) {
      const lastNl = data.lastIndexOf(0x0a);
      if (lastNl < 0) {
        carry = data;
        continue;
      }
      recEnd = lastNl + 1;
      trimmed = true;
    }
    while (recEnd > 0) {
      const prevNl = recEnd >= 2 ? data.lastIndexOf(0x0a, recEnd - 2) : -1;
      // The record's start is in an earlier chunk.
      if (prevNl < 0 && pos > 0) break;
      const recStart = prevNl + 1;
      const rec = parseLogRecord(data.subarray(recStart, recEnd - 1));
      if (rec?.complete && ++completes > tail) return { offset: pos + recEnd, lines: tail };
      recEnd = recStart;
    }
    carry = data.subarray(0, recEnd);
  }
  return { offset: 0, lines: completes };
}

export interface FollowControl {
  /** Resolves when the container has stopped; the reader then drains what is left and ends. */
  untilExit: Promise<unknown>;
  /**
   * Rotated logs: whether the file being read is no longer the one written (its inode is given).
   * The reader then drains what is left of it and returns "moved".
   */
  moved?: (ino: number) => Promise<boolean>;
}

/**
 * Read a container's log as LogLines. With follow, keep reading while the file grows until
 * `untilExit` settles (or the signal aborts), then drain the rest.
 */
export async function* readLog(
  path: string,
  options: LogOptions,
  follow?: FollowControl,
  /** Byte offset to start at; overrides options.tail. */
  startAt?: number,
): AsyncGenerator<LogLine, "end" | "moved"> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (e) {
    if (errnoCode(e) !== "ENOENT") throw e;
    if (!options.follow || !follow) return "end";
    // No output yet: wait for conmon to create the file or for the container to stop.
    await Promise.race([follow.untilExit, waitForFile(path, options.signal)]);
    try {
      fh = await open(path, "r");
    } catch {
      return "end";
    }
  }
  let watcher: FSWatcher | undefined;
  try {
    const { size, ino } = await fh.stat();
    let pos = startAt ?? (options.tail === undefined ? 0 : await tailOffset(fh, size, options.tail));
    let draining = false;
    let pending = Buffer.alloc(0);
    let exited = !options.follow || !follow;
    let wake: (() => void) | undefined;
    const poke = (): void => {
      wake?.();
    };
    if (!exited && follow) {
      void follow.untilExit.finally(() => {
        exited = true;
        poke();
      });
      try {
        watcher = watch(path, poke);
        watcher.on("error", () => undefined);
      } catch {
        watcher = undefined;
      }
      options.signal?.addEventListener("abort", poke, { once: true });
    }
    const buf = Buffer.alloc(CHUNK);
    for (;;) {
      if (options.signal?.aborted) return "end";
      // Decide before reading: anything written before the exit is seen by the read below.
      const last = exited;
      const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
      if (bytesRead > 0) {
        pos += bytesRead;
        pending = pending.length
          ? Buffer.concat([pending, buf.subarray(0, bytesRead)])
          : Buffer.from(buf.subarray(0, bytesRead));
        let start = 0;
        let nl = pending.indexOf(0x0a, start);
        while (nl >= 0) {
          const rec = parseLogRecord(pending.subarray(start, nl));
          if (rec && wanted(rec, options)) yield { stream: rec.stream, time: rec.time, data: rec.data };
          start = nl + 1;
          nl = pending.indexOf(0x0a, start);
        }
        pending = pending.subarray(start);
        continue;
      }
      if (draining) return "moved";
      if (follow?.moved && (await follow.moved(ino))) {
        // conmon flushed this file before switching: one more read gets the rest of it.
        draining = true;
        continue;
      }
      if (last) return "end";
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, 250);
        function done(): void {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    }
  } finally {
    watcher?.close();
    await fh.close();
  }
}

function waitForFile(path: string, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      void open(path, "r").then(
        (f) => {
          void f.close();
          finish();
        },
        () => undefined,
      );
    }, 200);
    const finish = (): void => {
      clearInterval(timer);
      resolve();
    };
    signal?.addEventListener("abort", finish, { once: true });
  });
}
