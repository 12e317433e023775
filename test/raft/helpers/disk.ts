import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NodeDisk, type Disk, type PersistLogger } from "../../../manager/raft/disk.js";
import { FakeDisk } from "./fake-disk.js";
import type { Entry } from "../../../manager/raft/core/types.js";

export interface DiskEnv {
  disk: Disk;
  /** A folder for the test, on that disk. */
  dir: string;
  cleanup(): Promise<void>;
}

/** The two disks every persistence test runs on. */
export const diskKinds: { name: string; make(): Promise<DiskEnv> }[] = [
  {
    name: "NodeDisk",
    async make() {
      const dir = await mkdtemp(join(tmpdir(), "shoal-raft-"));
      return { disk: new NodeDisk(), dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: "FakeDisk",
    async make() {
      const disk = new FakeDisk();
      await disk.mkdir("/data");
      return { disk, dir: "/data", cleanup: async () => undefined };
    },
  },
];

export function entry(index: number, term: number, data?: Uint8Array): Entry {
  return { index, term, type: "normal", data: data ?? new TextEncoder().encode(`e${index}t${term}`) };
}

/** Entries lo..hi inclusive, all of `term`. */
export function entries(lo: number, hi: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = lo; i <= hi; i++) out.push(entry(i, term));
  return out;
}

export interface CapturedLogger extends PersistLogger {
  warnings: { fields: Record<string, unknown>; msg: string }[];
}

export function captureLogger(): CapturedLogger {
  const warnings: CapturedLogger["warnings"] = [];
  return { warnings, warn: (fields, msg) => void warnings.push({ fields, msg }) };
}

export async function readBytes(disk: Disk, path: string): Promise<Uint8Array> {
  return disk.readFile(path);
}

/** Replaces a file's content (not durably: tests reopen without crashing). */
export async function writeBytes(disk: Disk, path: string, bytes: Uint8Array): Promise<void> {
  const f = await disk.open(path, "create");
  await f.write(bytes, 0);
  await f.sync();
  await f.close();
}
