import { watch, type FSWatcher } from "node:fs";
import { link, lstat, mkdir, readdir, readlink, rename, rm, stat, symlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { errnoCode } from "../../../shared/errors.js";
import type { LogPolicy } from "./log-config.js";

// Rotated logs (`--log-opt max-size=… max-file=N`, N ≥ 2) without stopping conmon.
//
// conmon enforces the size itself: with --log-size-max it starts a new file before a record would
// take the current one past the limit, by opening `<log>.tmp` (O_CREAT|O_TRUNC) and renaming it
// over `<log>` (conmon 2.1 src/ctr_logging.c, reopen_k8s_file). Left alone that throws the full
// file away. So the real files live in `<dir>/logs/NNNNNNNN.log`, `<log>` is a symlink to the one
// being written, and shoald keeps `<log>.tmp` a (dangling) symlink to the next number: conmon's
// open follows it and creates the next file, its rename moves the symlink over `<log>`, and the
// full file keeps its own name. A watcher on the folder re-arms `<log>.tmp` and deletes files
// beyond max-file. If shoald is away (or a writer outruns it) conmon's open finds no `.tmp` and
// makes a plain file: the next arm hard-links it into logs/ so it is kept; at worst a file is
// lost, never is the disk filled: conmon's size limit holds whatever shoald does.
// With max-file 1 there is nothing to keep: conmon's own truncation is Docker's behaviour.

const SEQ = /^(\d{8})\.log$/;
const seqName = (n: number): string => `${String(n).padStart(8, "0")}.log`;

export const rotatedDir = (logPath: string): string => join(dirname(logPath), "logs");
const tmpLink = (logPath: string): string => `${logPath}.tmp`;

export function rotates(policy: LogPolicy): boolean {
  return policy.kind === "file" && policy.maxSize !== undefined && policy.maxFile > 1;
}

interface SeqFile {
  seq: number;
  path: string;
}

async function seqFiles(logPath: string): Promise<SeqFile[]> {
  let names: string[];
  try {
    names = await readdir(rotatedDir(logPath));
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return [];
    throw e;
  }
  const out: SeqFile[] = [];
  for (const n of names) {
    const m = SEQ.exec(n);
    if (m) out.push({ seq: Number(m[1]), path: join(rotatedDir(logPath), n) });
  }
  return out.sort((a, b) => a.seq - b.seq);
}

/** The sequence number a symlink names, or undefined when `path` is not one of ours. */
async function linkSeq(path: string): Promise<number | undefined> {
  try {
    const m = SEQ.exec(basename(await readlink(path)));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function lstatOrUndefined(path: string) {
  try {
    return await lstat(path);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    throw e;
  }
}

/** Point `path` at `target` in one step (a reader never sees it missing). */
async function swapLink(target: string, path: string): Promise<void> {
  const next = `${path}.new`;
  await rm(next, { force: true });
  await symlink(target, next);
  await rename(next, path);
}

/**
 * Before a run: conmon gets a fresh, empty file (its size count starts at 0 each run, so an old
 * file would grow past max-size), `<log>.tmp` is armed and old files beyond max-file go.
 */
export async function prepareRotatedLog(logPath: string, policy: LogPolicy): Promise<void> {
  if (!rotates(policy)) {
    // A plain file, as conmon makes it; a former rotated layout of this path is not ours to keep.
    await rm(tmpLink(logPath), { force: true });
    return;
  }
  await mkdir(rotatedDir(logPath), { recursive: true, mode: 0o700 });
  const files = await seqFiles(logPath);
  let last = files.length ? files[files.length - 1].seq : 0;
  const cur = await lstatOrUndefined(logPath);
  if (cur?.isFile()) {
    // A file conmon made while nobody armed the link: keep it as the newest rotated file.
    last++;
    await rename(logPath, join(rotatedDir(logPath), seqName(last)));
  }
  const target = await stat(logPath).catch(() => undefined);
  if (!cur?.isSymbolicLink() || (target?.size ?? 0) > 0 || target === undefined) {
    last++;
    await swapLink(join(rotatedDir(logPath), seqName(last)), logPath);
  }
  await rm(tmpLink(logPath), { force: true });
  await armRotatedLog(logPath, policy);
}

/**
 * Keep what conmon's last switch left: a plain `<log>` is linked into logs/, and `<log>.tmp` is
 * armed. Once max-file files are written, the oldest is not deleted but renamed to the next
 * number and armed: conmon's switch truncates it and writes there, so there are never more than
 * max-file files, and until the switch it is still read as the oldest part of the log.
 */
export async function armRotatedLog(logPath: string, policy: LogPolicy): Promise<void> {
  let files = await seqFiles(logPath);
  let last = files.length ? files[files.length - 1].seq : 0;
  const cur = await lstatOrUndefined(logPath);
  let current = await linkSeq(logPath);
  if (cur?.isFile()) {
    // conmon found no link and made a plain file: give it a number so its replacement keeps it.
    const inos = await Promise.all(
      files.map((f) =>
        stat(f.path).then(
          (s) => s.ino,
          () => -1,
        ),
      ),
    );
    const at = inos.indexOf(cur.ino);
    if (at >= 0) current = files[at].seq;
    else {
      last++;
      await link(logPath, join(rotatedDir(logPath), seqName(last)));
      current = last;
      files = await seqFiles(logPath);
    }
  }
  if (current === undefined) return;
  const tmp = await lstatOrUndefined(tmpLink(logPath));
  const armed = tmp?.isSymbolicLink() ? await linkSeq(tmpLink(logPath)) : undefined;
  const written = files.filter((f) => f.seq <= (current ?? 0));
  // Files after the current one that are not the armed one are leftovers of a missed switch.
  for (const f of files) if (f.seq > current && f.seq !== armed) await rm(f.path, { force: true });
  // The armed file (recycled or still to be made) is the max-file-th: keep one fewer written.
  let extra = written.length - (policy.maxFile - 1);
  if (tmp !== undefined) {
    // Armed already (or conmon is switching right now): only what conmon outran us with goes.
    if (armed !== undefined)
      for (; extra > 0; extra--) await rm(written.shift()?.path ?? "", { force: true });
    return;
  }
  for (; extra > 1; extra--) await rm(written.shift()?.path ?? "", { force: true });
  const next = join(rotatedDir(logPath), seqName(Math.max(current, last) + 1));
  if (extra > 0) {
    const oldest = written.shift();
    if (oldest) await rename(oldest.path, next);
  }
  // Plain symlink(), not a swap: if conmon has just created a real `.tmp` (its open, before its
  // rename) this fails with EEXIST and conmon's file is left alone; the next event re-arms.
  await symlink(next, tmpLink(logPath)).catch((e: unknown) => {
    if (errnoCode(e) !== "EEXIST") throw e;
  });
}

export interface LogFile {
  path: string;
  /** Reading order: the recycled oldest file first (-1), then by number, an unnumbered file last. */
  key: number;
}

/** The files of a log in reading order; the last is the one being written. */
export async function logFiles(logPath: string): Promise<LogFile[]> {
  const files = await seqFiles(logPath);
  if (files.length === 0) return [{ path: logPath, key: Number.POSITIVE_INFINITY }];
  const cur = await lstatOrUndefined(logPath);
  const current = cur?.isSymbolicLink() ? await linkSeq(logPath) : undefined;
  if (current !== undefined) {
    const ahead = files.filter((f) => f.seq > current).map((f) => ({ path: f.path, key: -1 }));
    const written = files.filter((f) => f.seq <= current).map((f) => ({ path: f.path, key: f.seq }));
    return [...ahead, ...written];
  }
  // A plain file conmon made while nobody armed the link: once linked into logs/ it is the
  // current one (a file numbered after it is the recycled oldest); before, it comes last.
  const inos = await Promise.all(
    files.map((f) =>
      stat(f.path).then(
        (s) => s.ino,
        () => -1,
      ),
    ),
  );
  const at = cur ? inos.indexOf(cur.ino) : -1;
  if (at >= 0) {
    const linked = files[at].seq;
    const ahead = files.filter((f) => f.seq > linked).map((f) => ({ path: f.path, key: -1 }));
    const written = files.filter((f) => f.seq <= linked).map((f) => ({ path: f.path, key: f.seq }));
    return [...ahead, ...written];
  }
  const out: LogFile[] = files.map((f) => ({ path: f.path, key: f.seq }));
  if (cur) out.push({ path: logPath, key: Number.POSITIVE_INFINITY });
  return out;
}

/** Watches one running container's log folder and re-arms after each of conmon's switches. */
export class LogRotation {
  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;
  private running = false;
  private again = false;
  private closed = false;

  constructor(
    private readonly logPath: string,
    private readonly policy: LogPolicy,
    private readonly onError: (e: unknown) => void,
  ) {}

  start(): void {
    const name = basename(this.logPath);
    try {
      this.watcher = watch(dirname(this.logPath), { persistent: false }, (_event, file) => {
        if (file === null || String(file).startsWith(name)) this.kick();
      });
      this.watcher.on("error", () => undefined);
    } catch (e) {
      this.onError(e);
    }
    // inotify can drop events under load: look again now and then.
    this.timer = setInterval(() => this.kick(), 2000);
    this.timer.unref();
    this.kick();
  }

  private kick(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void armRotatedLog(this.logPath, this.policy)
      .catch((e: unknown) => this.onError(e))
      .finally(() => {
        this.running = false;
        if (this.again && !this.closed) {
          this.again = false;
          this.kick();
        }
      });
  }

  stop(): void {
    this.closed = true;
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
  }
}

const rotations = new Map<string, LogRotation>();

/** Start (or restart) the watcher of a container's rotated log; a no-op for other policies. */
export function watchRotatedLog(
  id: string,
  logPath: string,
  policy: LogPolicy,
  onError: (e: unknown) => void,
): void {
  unwatchRotatedLog(id);
  if (!rotates(policy)) return;
  const r = new LogRotation(logPath, policy, onError);
  rotations.set(id, r);
  r.start();
}

export function unwatchRotatedLog(id: string): void {
  rotations.get(id)?.stop();
  rotations.delete(id);
}
