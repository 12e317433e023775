// The few file operations the WAL and the snapshotter need, behind an interface so that the
// deterministic simulator can run the same persistence code on an in-memory disk that loses
// what was not synced when it "crashes" (FakeDisk, in test/raft/helpers/fake-disk.ts).

import { open, readdir, readFile, rename, unlink, mkdir, type FileHandle } from "node:fs/promises";

/** pino-compatible subset, so the daemon can pass its logger without manager/raft importing it. */
export interface PersistLogger {
  warn(fields: Record<string, unknown>, msg: string): void;
}

/** Used when the caller gives no logger: a repaired WAL tail must not go unnoticed. */
export const warningLogger: PersistLogger = {
  warn(fields, msg) {
    process.emitWarning(`${msg} ${JSON.stringify(fields)}`, { code: "SHOAL_RAFT_PERSIST" });
  },
};

export interface DiskFile {
  readonly path: string;
  /** Writes all of `data` at `position` (short writes are retried). */
  write(data: Uint8Array, position: number): Promise<void>;
  /** fdatasync: the content (and size) is durable once this resolves. */
  datasync(): Promise<void>;
  /** fsync: content and all metadata. */
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface Disk {
  /** "create" makes the file or empties an existing one; "existing" fails with ENOENT if absent. */
  open(path: string, mode: "create" | "existing"): Promise<DiskFile>;
  readFile(path: string): Promise<Uint8Array>;
  /** Names in the folder, sorted. */
  readdir(dir: string): Promise<string[]>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Recursive; no error when it exists. */
  mkdir(dir: string): Promise<void>;
  /** Makes creations, renames and removals of the folder's entries durable. */
  syncDir(dir: string): Promise<void>;
}

export class DiskError extends Error {
  constructor(
    readonly code: "ENOENT" | "EEXIST" | "EBADF" | "EIO" | "ENOTDIR",
    path: string,
    what: string,
  ) {
    super(`${code}: ${what} '${path}'`);
    this.name = "DiskError";
  }
}

/** The errno code of an error from either implementation (undefined if it has none). */
export function diskErrorCode(e: unknown): string | undefined {
  if (typeof e === "object" && e !== null && "code" in e && typeof e.code === "string") return e.code;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// NodeDisk

class NodeFile implements DiskFile {
  constructor(
    readonly path: string,
    private readonly fh: FileHandle,
  ) {}

  async write(data: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, position + done);
      if (bytesWritten === 0) throw new DiskError("EIO", this.path, "write made no progress on");
      done += bytesWritten;
    }
  }
  datasync(): Promise<void> {
    return this.fh.datasync();
  }
  sync(): Promise<void> {
    return this.fh.sync();
  }
  truncate(length: number): Promise<void> {
    return this.fh.truncate(length);
  }
  async size(): Promise<number> {
    return (await this.fh.stat()).size;
  }
  close(): Promise<void> {
    return this.fh.close();
  }
}

export class NodeDisk implements Disk {
  async open(path: string, mode: "create" | "existing"): Promise<DiskFile> {
    return new NodeFile(path, await open(path, mode === "create" ? "w+" : "r+", 0o600));
  }
  async readFile(path: string): Promise<Uint8Array> {
    const b = await readFile(path);
    // A plain Uint8Array: Buffers would leak into decoded entries and compare unequal to them.
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }
  async readdir(dir: string): Promise<string[]> {
    return (await readdir(dir)).sort();
  }
  rename(from: string, to: string): Promise<void> {
    return rename(from, to);
  }
  unlink(path: string): Promise<void> {
    return unlink(path);
  }
  async mkdir(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  }
  async syncDir(dir: string): Promise<void> {
    const fh = await open(dir, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}
