// An in-memory Disk (manager/raft/disk.ts) for the deterministic simulator and the persistence
// tests: it loses what was not synced when it "crashes".
import { posix } from "node:path";
import { DiskError, type Disk, type DiskFile } from "../../../manager/raft/disk.js";

type FileOp = { kind: "write"; position: number; bytes: Uint8Array } | { kind: "truncate"; length: number };

interface Inode {
  id: number;
  data: Uint8Array;
  /** The content a crash falls back to. */
  durable: Uint8Array;
  /** Operations since the last sync, in order; a crash keeps some prefix of them. */
  pending: FileOp[];
}

type DirOp =
  | { kind: "link"; name: string; inode: Inode }
  | { kind: "unlink"; name: string }
  | { kind: "rename"; from: string; to: string; inode: Inode };

interface Dir {
  entries: Map<string, Inode>;
  durable: Map<string, Inode>;
  pending: DirOp[];
}

export interface FakeDiskStats {
  writes: number;
  datasyncs: number;
  fsyncs: number;
  dirSyncs: number;
}

function applyFileOp(data: Uint8Array, op: FileOp): Uint8Array {
  if (op.kind === "truncate") {
    if (op.length <= data.length) return data.slice(0, op.length);
    const grown = new Uint8Array(op.length);
    grown.set(data);
    return grown;
  }
  const end = op.position + op.bytes.length;
  const out = end > data.length ? new Uint8Array(end) : data;
  if (out !== data) out.set(data);
  out.set(op.bytes, op.position);
  return out;
}

function applyDirOp(entries: Map<string, Inode>, op: DirOp): void {
  if (op.kind === "link") entries.set(op.name, op.inode);
  else if (op.kind === "unlink") entries.delete(op.name);
  else {
    entries.delete(op.from);
    entries.set(op.to, op.inode);
  }
}

class FakeFile implements DiskFile {
  constructor(
    readonly path: string,
    private readonly disk: FakeDisk,
    private readonly inode: Inode,
  ) {}

  private live(): Inode {
    this.disk.checkAlive(this.path);
    return this.inode;
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    const inode = this.live();
    this.disk.stats.writes++;
    const op: FileOp = { kind: "write", position, bytes: data.slice() };
    inode.data = applyFileOp(inode.data, op);
    inode.pending.push(op);
  }
  datasync(): Promise<void> {
    this.disk.stats.datasyncs++;
    return this.flush();
  }
  sync(): Promise<void> {
    this.disk.stats.fsyncs++;
    return this.flush();
  }
  private async flush(): Promise<void> {
    const inode = this.live();
    // Only what was written before the call is guaranteed durable: a write racing the sync may miss it.
    const content = inode.data.slice();
    const covered = inode.pending.length;
    await this.disk.syncHook?.(this.path);
    this.disk.checkAlive(this.path);
    if (this.disk.failSync?.(this.path)) throw new DiskError("EIO", this.path, "sync failed for");
    inode.durable = content;
    inode.pending = inode.pending.slice(covered);
  }
  async truncate(length: number): Promise<void> {
    const inode = this.live();
    const op: FileOp = { kind: "truncate", length };
    inode.data = applyFileOp(inode.data, op);
    inode.pending.push(op);
  }
  async size(): Promise<number> {
    return this.live().data.length;
  }
  async close(): Promise<void> {
    // Closing never syncs, as on Linux; closing a handle of a crashed process is harmless.
  }
}

interface FakeState {
  dirs: Map<string, Dir>;
  nextInode: number;
}

/**
 * An in-memory disk for the deterministic simulator and the tests. It remembers, per file and per
 * folder, what the last sync made durable. `crash(rand)` is a power loss: each file and folder
 * keeps its synced state plus a random prefix of the operations since (the last kept write
 * possibly torn: a random prefix of it, the rest absent or zeros). It returns the disk as the
 * restarted process sees it; this object, and every handle opened through it, then fails with
 * EIO, so code of the dead process that is still awaiting cannot write any more.
 * Folders themselves are durable once made. Deterministic: the only randomness is `rand`.
 */
export class FakeDisk implements Disk {
  /** Counted per process (per FakeDisk object). */
  readonly stats: FakeDiskStats = { writes: 0, datasyncs: 0, fsyncs: 0, dirSyncs: 0 };
  /** Awaited inside every file sync (tests use it to hold syncs in flight). */
  syncHook: ((path: string) => Promise<void>) | undefined;
  /** Returns true to make a file sync fail with EIO (fault injection). */
  failSync: ((path: string) => boolean) | undefined;
  private dead = false;
  private readonly st: FakeState;

  constructor(state?: FakeState) {
    this.st = state ?? {
      dirs: new Map([["/", { entries: new Map(), durable: new Map(), pending: [] }]]),
      nextInode: 1,
    };
  }

  /** @internal */
  checkAlive(path: string): void {
    if (this.dead) throw new DiskError("EIO", path, "disk of a crashed process:");
  }

  private norm(path: string): string {
    return posix.resolve("/", path);
  }

  private dirOf(path: string, what: string): { dir: Dir; name: string } {
    this.checkAlive(path);
    const p = this.norm(path);
    const dir = this.st.dirs.get(posix.dirname(p));
    if (!dir) throw new DiskError("ENOENT", path, `${what} (no folder)`);
    return { dir, name: posix.basename(p) };
  }

  async open(path: string, mode: "create" | "existing"): Promise<DiskFile> {
    const { dir, name } = this.dirOf(path, "open");
    if (this.st.dirs.has(this.norm(path))) throw new DiskError("EIO", path, "open of a folder");
    let inode = dir.entries.get(name);
    if (!inode) {
      if (mode === "existing") throw new DiskError("ENOENT", path, "open");
      inode = { id: this.st.nextInode++, data: new Uint8Array(0), durable: new Uint8Array(0), pending: [] };
      dir.entries.set(name, inode);
      dir.pending.push({ kind: "link", name, inode });
    } else if (mode === "create") {
      const op: FileOp = { kind: "truncate", length: 0 };
      inode.data = applyFileOp(inode.data, op);
      inode.pending.push(op);
    }
    return new FakeFile(this.norm(path), this, inode);
  }

  async readFile(path: string): Promise<Uint8Array> {
    const { dir, name } = this.dirOf(path, "read");
    const inode = dir.entries.get(name);
    if (!inode) throw new DiskError("ENOENT", path, "read");
    return inode.data.slice();
  }

  async readdir(path: string): Promise<string[]> {
    this.checkAlive(path);
    const p = this.norm(path);
    const dir = this.st.dirs.get(p);
    if (!dir) throw new DiskError("ENOENT", path, "readdir");
    const names = [...dir.entries.keys()];
    for (const d of this.st.dirs.keys())
      if (d !== "/" && posix.dirname(d) === p) names.push(posix.basename(d));
    return names.sort();
  }

  async rename(from: string, to: string): Promise<void> {
    const src = this.dirOf(from, "rename");
    const dst = this.dirOf(to, "rename to");
    const inode = src.dir.entries.get(src.name);
    if (!inode) throw new DiskError("ENOENT", from, "rename");
    if (src.dir === dst.dir) {
      const op: DirOp = { kind: "rename", from: src.name, to: dst.name, inode };
      applyDirOp(src.dir.entries, op);
      src.dir.pending.push(op);
    } else {
      src.dir.entries.delete(src.name);
      src.dir.pending.push({ kind: "unlink", name: src.name });
      dst.dir.entries.set(dst.name, inode);
      dst.dir.pending.push({ kind: "link", name: dst.name, inode });
    }
  }

  async unlink(path: string): Promise<void> {
    const { dir, name } = this.dirOf(path, "unlink");
    if (!dir.entries.has(name)) throw new DiskError("ENOENT", path, "unlink");
    dir.entries.delete(name);
    dir.pending.push({ kind: "unlink", name });
  }

  async mkdir(path: string): Promise<void> {
    this.checkAlive(path);
    const p = this.norm(path);
    if (this.st.dirs.has(p)) return;
    await this.mkdir(posix.dirname(p));
    const parent = this.st.dirs.get(posix.dirname(p));
    if (parent?.entries.has(posix.basename(p))) throw new DiskError("ENOTDIR", path, "mkdir over a file");
    this.st.dirs.set(p, { entries: new Map(), durable: new Map(), pending: [] });
  }

  async syncDir(path: string): Promise<void> {
    this.checkAlive(path);
    const dir = this.st.dirs.get(this.norm(path));
    if (!dir) throw new DiskError("ENOENT", path, "sync folder");
    this.stats.dirSyncs++;
    dir.durable = new Map(dir.entries);
    dir.pending = [];
  }

  /** The bytes a crash that keeps nothing unsynced would leave (undefined: the name is not durable). */
  durableContent(path: string): Uint8Array | undefined {
    const { dir, name } = this.dirOf(path, "inspect");
    return dir.durable.get(name)?.durable.slice();
  }

  /** Power loss; see the class comment. Returns the disk for the restarted process. */
  crash(rand: () => number): FakeDisk {
    this.checkAlive("/");
    this.dead = true;
    const pick = (n: number): number => Math.min(n, Math.floor(rand() * (n + 1)));
    for (const path of [...this.st.dirs.keys()].sort()) {
      const dir = this.st.dirs.get(path)!;
      const kept = new Map(dir.durable);
      for (const op of dir.pending.slice(0, pick(dir.pending.length))) applyDirOp(kept, op);
      dir.entries = kept;
      dir.durable = new Map(kept);
      dir.pending = [];
    }
    for (const inode of this.allInodes()) {
      let data = inode.durable;
      const n = pick(inode.pending.length);
      for (let i = 0; i < n; i++) {
        const op = inode.pending[i];
        if (i === n - 1 && op.kind === "write" && rand() < 0.5) {
          const keep = Math.floor(rand() * op.bytes.length);
          let torn = op.bytes.slice(0, keep);
          if (rand() < 0.5) {
            // The file grew but the end of the write never reached the platter: zeros.
            torn = new Uint8Array(op.bytes.length);
            torn.set(op.bytes.subarray(0, keep));
          }
          data = applyFileOp(data, { kind: "write", position: op.position, bytes: torn });
        } else {
          data = applyFileOp(data, op);
        }
      }
      inode.data = data;
      inode.durable = data.slice();
      inode.pending = [];
    }
    return new FakeDisk(this.st);
  }

  /** A separate disk holding only what is durable now (the strictest crash); this one is unchanged. */
  durableCopy(): FakeDisk {
    const clones = new Map<Inode, Inode>();
    const clone = (i: Inode): Inode => {
      let c = clones.get(i);
      if (!c) {
        c = { id: i.id, data: i.durable.slice(), durable: i.durable.slice(), pending: [] };
        clones.set(i, c);
      }
      return c;
    };
    const dirs = new Map<string, Dir>();
    for (const [path, dir] of this.st.dirs) {
      const entries = new Map<string, Inode>();
      for (const [name, inode] of dir.durable) entries.set(name, clone(inode));
      dirs.set(path, { entries, durable: new Map(entries), pending: [] });
    }
    return new FakeDisk({ dirs, nextInode: this.st.nextInode });
  }

  private allInodes(): Inode[] {
    const seen = new Map<number, Inode>();
    for (const dir of this.st.dirs.values()) {
      for (const i of dir.entries.values()) seen.set(i.id, i);
      for (const i of dir.durable.values()) seen.set(i.id, i);
    }
    return [...seen.values()].sort((a, b) => a.id - b.id);
  }
}
