// Shared setup for the image store tests: a private store root per test, a sentinel folder next
// to it that hostile archives aim at, and small stream helpers.
import { mkdir, mkdtemp, readdir, rm, lstat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { silentLogger } from "../../shared/logging.js";
import { ImageStore } from "../../agent/engine/image/store.js";

export interface TestStore {
  base: string;
  root: string;
  sentinel: string;
  store: ImageStore;
  reopen(): Promise<ImageStore>;
  cleanup(): Promise<void>;
}

export async function tempStore(): Promise<TestStore> {
  const base = await mkdtemp(join(tmpdir(), "shoal-image-"));
  const root = join(base, "image");
  const sentinel = join(base, "sentinel");
  await mkdir(sentinel);
  await writeFile(join(sentinel, "victim"), "victim\n");
  const store = await ImageStore.open(root, silentLogger());
  return {
    base,
    root,
    sentinel,
    store,
    reopen: () => ImageStore.open(root, silentLogger()),
    cleanup: () => rm(base, { recursive: true, force: true }),
  };
}

export const noUsers = (): string[] => [];

export const streamOf = (buf: Buffer): Readable => Readable.from([buf]);

/** Every path under dir with its type, size and link count: a fingerprint to compare before/after. */
export async function tree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(dir, prefix))).sort()) {
    const rel = join(prefix, name);
    const st = await lstat(join(dir, rel));
    out.push(`${rel} ${st.mode.toString(8)} ${st.size} ${st.nlink}`);
    if (st.isDirectory()) out.push(...(await tree(dir, rel)));
  }
  return out;
}

export async function ls(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

/** A Writable that gathers everything written to it. */
export function sink(): { stream: Writable; data: () => Buffer } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  return { stream, data: () => Buffer.concat(chunks) };
}

/** Like sink, but every write waits until open() is called: a slow client. */
export function gatedSink(): {
  stream: Writable;
  data: () => Buffer;
  open: () => void;
  started: Promise<void>;
} {
  const chunks: Buffer[] = [];
  let opened = false;
  const waiting: Array<() => void> = [];
  let signalStarted = (): void => {};
  const started = new Promise<void>((resolve) => (signalStarted = resolve));
  const stream = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      signalStarted();
      if (opened) cb();
      else waiting.push(() => cb());
    },
  });
  const open = (): void => {
    opened = true;
    for (const w of waiting.splice(0)) w();
  };
  return { stream, data: () => Buffer.concat(chunks), open, started };
}

/** The status of a rejected promise's ShoalError, and its message. */
export async function failure(p: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { status?: number; message: string };
    return { status: err.status ?? 0, message: err.message };
  }
  throw new Error("expected the operation to fail, but it succeeded");
}
