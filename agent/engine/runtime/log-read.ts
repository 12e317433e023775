import { open, stat } from "node:fs/promises";
import type { LogLine, LogOptions } from "../container/types.js";
import { logFiles, type LogFile } from "./log-files.js";
import { setTimeout as sleep } from "node:timers/promises";
import { readLog, tailStart, type FollowControl } from "./logs.js";

// `docker logs` over a log that may be split into rotated files: oldest first, `--tail` counted
// across files, `--follow` moving on to the next file when conmon switches.

async function inoOf(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.ino,
    () => -1,
  );
}

/** Where to start: the file index and byte offset that leave the last `tail` lines. */
async function tailPlan(files: LogFile[], tail: number): Promise<{ index: number; offset: number }> {
  let remaining = tail;
  for (let i = files.length - 1; i >= 0; i--) {
    let fh;
    try {
      fh = await open(files[i].path, "r");
    } catch {
      continue;
    }
    try {
      const { size } = await fh.stat();
      const { offset, lines } = await tailStart(fh, size, remaining);
      remaining -= lines;
      if (remaining <= 0 || i === 0) return { index: i, offset };
    } finally {
      await fh.close();
    }
  }
  return { index: 0, offset: 0 };
}

export async function* readLogFiles(
  logPath: string,
  options: LogOptions,
  follow?: FollowControl,
): AsyncGenerator<LogLine> {
  const files = await logFiles(logPath);
  if (files.length === 1 && files[0].path === logPath) {
    // One plain file: nothing rotates (max-file 1 truncates in place of the same path).
    yield* readLog(logPath, options, follow);
    return;
  }
  const plan = options.tail === undefined ? { index: 0, offset: 0 } : await tailPlan(files, options.tail);
  const following = options.follow === true && follow !== undefined;
  const control: FollowControl | undefined = following
    ? { untilExit: follow.untilExit, moved: async (ino) => (await inoOf(logPath)) !== ino }
    : undefined;
  if (!following) {
    for (const [i, f] of files.slice(plan.index).entries())
      yield* readLog(f.path, options, undefined, i === 0 ? plan.offset : undefined);
    return;
  }
  // Following: after each file, the next is the first whose key is past the one just read
  // (a recycled file is read first as the oldest, later again under its new number).
  let list = files.slice(plan.index);
  let offset: number | undefined = plan.offset;
  let lastKey = Number.NEGATIVE_INFINITY;
  let exited = false;
  void follow.untilExit.finally(() => (exited = true));
  for (;;) {
    const next = list.find((f) => f.key > lastKey);
    if (!next) {
      if (exited || options.signal?.aborted) return;
      await sleep(100);
      list = await logFiles(logPath);
      continue;
    }
    lastKey = next.key;
    const end = yield* readLog(next.path, options, control, offset);
    offset = undefined;
    if (end === "end") return;
    list = await logFiles(logPath);
  }
}
