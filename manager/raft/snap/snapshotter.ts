/*
 * Snapshot files (version 1), one per snapshot, in their own folder:
 *     <term:016x>-<index:016x>.snap
 * content (integers little-endian; u64 = low u32 then high u32):
 *     "SHOALSNP" (8)  u32 version  u32 crc  u64 bodyLength  body
 *     crc = CRC-32 (IEEE) of body
 *     body = u64 index  u64 term  u32 nVoters  u64 voter...  u32 nLearners  u64 learner...  data (the rest)
 * Written as "<name>.tmp", fsynced, renamed, and the folder fsynced: a crash leaves either no file
 * of that name or a complete one (a leftover .tmp is deleted at the next load). A file that fails
 * its checks is renamed "<name>.broken" and the next older one is used.
 */

import { posix } from "node:path";
import { diskErrorCode, warningLogger, type Disk, type PersistLogger } from "../disk.js";
import type { Snapshot } from "../core/types.js";
import { crc32 } from "../wal/crc.js";
import type { SnapshotMarker } from "../wal/record.js";

const MAGIC = new TextEncoder().encode("SHOALSNP");
const VERSION = 1;
const HEADER = 8 + 4 + 4 + 8;
const TWO32 = 2 ** 32;
const NAME_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

const DEFAULT_SNAPSHOTS_KEPT = 5;

export interface SnapshotterOptions {
  /** How many snapshot files to keep (newest first); older ones are deleted after each save. */
  keep?: number;
  logger?: PersistLogger;
}

export class SnapshotCorruptError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`snapshot ${file} is unusable: ${reason}`);
    this.name = "SnapshotCorruptError";
  }
}

interface SnapFile {
  name: string;
  term: number;
  index: number;
}

const hex16 = (n: number): string => n.toString(16).padStart(16, "0");

export function snapshotFileName(term: number, index: number): string {
  return `${hex16(term)}-${hex16(index)}.snap`;
}

function putU64(view: DataView, pos: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0)
    throw new RangeError(`snapshot: ${v} is not a non-negative safe integer`);
  view.setUint32(pos, v % TWO32, true);
  view.setUint32(pos + 4, Math.floor(v / TWO32), true);
}

function getU64(view: DataView, pos: number): number {
  const hi = view.getUint32(pos + 4, true);
  if (hi >= 2 ** 21) throw new RangeError("integer beyond 2^53");
  return hi * TWO32 + view.getUint32(pos, true);
}

function encodeSnapshot(s: Snapshot): Uint8Array {
  const { index, term, confState } = s.metadata;
  const metaLen = 8 + 8 + 4 + 8 * confState.voters.length + 4 + 8 * confState.learners.length;
  const bodyLen = metaLen + s.data.length;
  const out = new Uint8Array(HEADER + bodyLen);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint32(8, VERSION, true);
  putU64(view, 16, bodyLen);
  let p = HEADER;
  putU64(view, p, index);
  putU64(view, p + 8, term);
  p += 16;
  for (const ids of [confState.voters, confState.learners]) {
    view.setUint32(p, ids.length, true);
    p += 4;
    for (const id of ids) {
      putU64(view, p, id);
      p += 8;
    }
  }
  out.set(s.data, p);
  view.setUint32(12, crc32(out.subarray(HEADER)), true);
  return out;
}

/** Throws a plain Error naming what is wrong; the caller adds the file name. */
function decodeSnapshot(buf: Uint8Array): Snapshot {
  if (buf.length < HEADER) throw new Error(`only ${buf.length} bytes`);
  if (!MAGIC.every((b, i) => buf[i] === b)) throw new Error("bad magic");
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const version = view.getUint32(8, true);
  if (version !== VERSION) throw new Error(`unsupported version ${version}`);
  const bodyLen = getU64(view, 16);
  if (bodyLen !== buf.length - HEADER)
    throw new Error(`body is ${buf.length - HEADER} bytes, header says ${bodyLen}`);
  if (crc32(buf.subarray(HEADER)) !== view.getUint32(12, true)) throw new Error("CRC mismatch");
  let p = HEADER;
  const need = (n: number): void => {
    if (p + n > buf.length) throw new Error("metadata runs past the end");
  };
  need(16);
  const index = getU64(view, p);
  const term = getU64(view, p + 8);
  p += 16;
  const lists: number[][] = [];
  for (let l = 0; l < 2; l++) {
    need(4);
    const n = view.getUint32(p, true);
    p += 4;
    need(8 * n);
    const ids: number[] = [];
    for (let i = 0; i < n; i++, p += 8) ids.push(getU64(view, p));
    lists.push(ids);
  }
  return {
    metadata: { index, term, confState: { voters: lists[0], learners: lists[1] } },
    data: buf.slice(p),
  };
}

export class Snapshotter {
  private readonly keep: number;
  private readonly logger: PersistLogger;

  constructor(
    private readonly disk: Disk,
    readonly dir: string,
    opts: SnapshotterOptions = {},
  ) {
    this.keep = Math.max(1, opts.keep ?? DEFAULT_SNAPSHOTS_KEPT);
    this.logger = opts.logger ?? warningLogger;
  }

  /** Writes the snapshot durably (see the format comment), then deletes all but the newest `keep`. */
  async save(snapshot: Snapshot): Promise<void> {
    await this.disk.mkdir(this.dir);
    const { index, term } = snapshot.metadata;
    const path = posix.join(this.dir, snapshotFileName(term, index));
    const tmp = `${path}.tmp`;
    const file = await this.disk.open(tmp, "create");
    try {
      await file.write(encodeSnapshot(snapshot), 0);
      await file.sync();
    } finally {
      await file.close();
    }
    await this.disk.rename(tmp, path);
    await this.disk.syncDir(this.dir);
    // Deleting old snapshots needs no folder sync: one that reappears after a crash is harmless.
    for (const old of (await this.list()).slice(this.keep))
      await this.disk.unlink(posix.join(this.dir, old.name));
  }

  /**
   * The newest snapshot that reads back intact, or undefined. With `walMarkers`, only snapshots the
   * WAL has a marker for are considered (a snapshot file whose marker never reached the WAL is
   * ignored, not deleted). Corrupt files are renamed *.broken, with a warning.
   */
  async loadNewestAvailable(walMarkers?: readonly SnapshotMarker[]): Promise<Snapshot | undefined> {
    await this.removeTemps();
    for (const f of await this.list()) {
      if (walMarkers && !walMarkers.some((m) => m.index === f.index && m.term === f.term)) continue;
      const path = posix.join(this.dir, f.name);
      try {
        return await this.load(path);
      } catch (e) {
        if (!(e instanceof SnapshotCorruptError)) throw e;
        this.logger.warn({ file: path, reason: e.message }, "raft snapshot: corrupt file set aside");
        await this.disk.rename(path, `${path}.broken`);
        await this.disk.syncDir(this.dir);
      }
    }
    return undefined;
  }

  /** Reads and verifies one snapshot file; SnapshotCorruptError if it fails a check. */
  async load(path: string): Promise<Snapshot> {
    const buf = await this.disk.readFile(path);
    let snap: Snapshot;
    try {
      snap = decodeSnapshot(buf);
    } catch (e) {
      throw new SnapshotCorruptError(path, e instanceof Error ? e.message : String(e));
    }
    const m = NAME_RE.exec(posix.basename(path));
    if (m && (parseInt(m[1], 16) !== snap.metadata.term || parseInt(m[2], 16) !== snap.metadata.index)) {
      throw new SnapshotCorruptError(path, "content does not match the file name");
    }
    return snap;
  }

  /** Snapshot files, newest (highest index, then term) first. */
  async list(): Promise<SnapFile[]> {
    const files: SnapFile[] = [];
    for (const name of await this.names()) {
      const m = NAME_RE.exec(name);
      if (m) files.push({ name, term: parseInt(m[1], 16), index: parseInt(m[2], 16) });
    }
    return files.sort((a, b) => b.index - a.index || b.term - a.term);
  }

  private async names(): Promise<string[]> {
    try {
      return await this.disk.readdir(this.dir);
    } catch (e) {
      if (diskErrorCode(e) === "ENOENT") return [];
      throw e;
    }
  }

  private async removeTemps(): Promise<void> {
    for (const n of await this.names()) {
      if (n.endsWith(".snap.tmp")) await this.disk.unlink(posix.join(this.dir, n));
    }
  }
}
