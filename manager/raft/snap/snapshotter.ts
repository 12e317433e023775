/*
 * Snapshot files (version 1), one per snapshot, in their own folder:
 *     <term:016x>-<index:016x>.snap
 * content (integers little-endian; u64 = low u32 then high u32):
 *     "SHOALSNP" (8)  u32 version  u32 crc  u64 bodyLength  body
 *     crc = CRC-32 (IEEE) of body
 *     body = u64 index  u64 term  u32 nVoters  u64 voter...  u32 nLearners  u64 learner...  data (the rest)
 * Version 2 is the same with the body sealed: body = AES-256-GCM (../encryption.ts) of the
 * version 1 body, with associated data "SHOALSNP" u32 version; the CRC covers the sealed bytes.
 * With a cipher, every snapshot is written as version 2 and plain files found at load are
 * rewritten sealed (each through a temporary file, as a save). Without one, version 2 is refused.
 * Written as "<name>.tmp", fsynced, renamed, and the folder fsynced: a crash leaves either no file
 * of that name or a complete one (a leftover .tmp is deleted at the next load). A file that fails
 * its checks is renamed "<name>.broken" and the next older one is used.
 */

import { posix } from "node:path";
import { diskErrorCode, warningLogger, type Disk, type PersistLogger } from "../disk.js";
import type { Snapshot } from "../core/types.js";
import { crc32 } from "../wal/crc.js";
import type { SnapshotMarker } from "../wal/record.js";
import { DecryptError, type RecordCipher } from "../encryption.js";

const MAGIC = new TextEncoder().encode("SHOALSNP");
const VERSION_PLAIN = 1;
const VERSION_SEALED = 2;
const HEADER = 8 + 4 + 4 + 8;
const TWO32 = 2 ** 32;
const NAME_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

const DEFAULT_SNAPSHOTS_KEPT = 5;

export interface SnapshotterOptions {
  /** How many snapshot files to keep (newest first); older ones are deleted after each save. */
  keep?: number;
  logger?: PersistLogger;
  /** Seal snapshot files with this data key (see the format comment). */
  cipher?: RecordCipher;
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

/** The version 1 body: metadata then data. */
function encodeBody(s: Snapshot): Uint8Array {
  const { index, term, confState } = s.metadata;
  const metaLen = 8 + 8 + 4 + 8 * confState.voters.length + 4 + 8 * confState.learners.length;
  const out = new Uint8Array(metaLen + s.data.length);
  const view = new DataView(out.buffer);
  putU64(view, 0, index);
  putU64(view, 8, term);
  let p = 16;
  for (const ids of [confState.voters, confState.learners]) {
    view.setUint32(p, ids.length, true);
    p += 4;
    for (const id of ids) {
      putU64(view, p, id);
      p += 8;
    }
  }
  out.set(s.data, p);
  return out;
}

function sealedAad(version: number): Uint8Array {
  const aad = new Uint8Array(MAGIC.length + 4);
  aad.set(MAGIC, 0);
  new DataView(aad.buffer).setUint32(MAGIC.length, version, true);
  return aad;
}

function encodeFile(version: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER + body.length);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint32(8, version, true);
  putU64(view, 16, body.length);
  out.set(body, HEADER);
  view.setUint32(12, crc32(body), true);
  return out;
}

function encodeSnapshot(s: Snapshot, cipher: RecordCipher | undefined): Uint8Array {
  const body = encodeBody(s);
  return cipher
    ? encodeFile(VERSION_SEALED, cipher.seal(body, sealedAad(VERSION_SEALED)))
    : encodeFile(VERSION_PLAIN, body);
}

/** Checks the framing; throws a plain Error naming what is wrong (the caller adds the file name). */
function decodeFile(buf: Uint8Array): { version: number; body: Uint8Array } {
  if (buf.length < HEADER) throw new Error(`only ${buf.length} bytes`);
  if (!MAGIC.every((b, i) => buf[i] === b)) throw new Error("bad magic");
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const version = view.getUint32(8, true);
  if (version !== VERSION_PLAIN && version !== VERSION_SEALED)
    throw new Error(`unsupported version ${version}`);
  const bodyLen = getU64(view, 16);
  if (bodyLen !== buf.length - HEADER)
    throw new Error(`body is ${buf.length - HEADER} bytes, header says ${bodyLen}`);
  const body = buf.subarray(HEADER);
  if (crc32(body) !== view.getUint32(12, true)) throw new Error("CRC mismatch");
  return { version, body };
}

/** Throws a plain Error naming what is wrong; the caller adds the file name. */
function decodeBody(buf: Uint8Array): Snapshot {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let p = 0;
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
  private readonly cipher: RecordCipher | undefined;

  constructor(
    private readonly disk: Disk,
    readonly dir: string,
    opts: SnapshotterOptions = {},
  ) {
    this.keep = Math.max(1, opts.keep ?? DEFAULT_SNAPSHOTS_KEPT);
    this.logger = opts.logger ?? warningLogger;
    this.cipher = opts.cipher;
  }

  /** Writes the snapshot durably (see the format comment), then deletes all but the newest `keep`. */
  async save(snapshot: Snapshot): Promise<void> {
    await this.disk.mkdir(this.dir);
    const { index, term } = snapshot.metadata;
    await this.writeFile(posix.join(this.dir, snapshotFileName(term, index)), snapshot);
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
    if (this.cipher) await this.sealPlainFiles();
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
    const { snap } = await this.read(path);
    const m = NAME_RE.exec(posix.basename(path));
    if (m && (parseInt(m[1], 16) !== snap.metadata.term || parseInt(m[2], 16) !== snap.metadata.index)) {
      throw new SnapshotCorruptError(path, "content does not match the file name");
    }
    return snap;
  }

  /** A file's snapshot and whether it was sealed; SnapshotCorruptError if it fails a check. */
  private async read(path: string): Promise<{ snap: Snapshot; sealed: boolean }> {
    const buf = await this.disk.readFile(path);
    let file: { version: number; body: Uint8Array };
    try {
      file = decodeFile(buf);
      if (file.version === VERSION_PLAIN) return { snap: decodeBody(file.body), sealed: false };
    } catch (e) {
      throw new SnapshotCorruptError(path, e instanceof Error ? e.message : String(e));
    }
    // Not a damaged file but a missing key: setting the file aside would lose it.
    if (!this.cipher)
      throw new Error(
        `snapshot ${path} is encrypted and no Raft data key was given (is the manager's raft-dek.json missing?)`,
      );
    let plain: Uint8Array;
    try {
      plain = this.cipher.open(file.body, sealedAad(file.version), path, "the snapshot");
    } catch (e) {
      // A sealed body that does not open was changed (or sealed with another key): corrupt.
      throw new SnapshotCorruptError(path, e instanceof DecryptError ? e.message : String(e));
    }
    try {
      return { snap: decodeBody(plain), sealed: true };
    } catch (e) {
      throw new SnapshotCorruptError(path, e instanceof Error ? e.message : String(e));
    }
  }

  /** Written as "<name>.tmp", fsynced, renamed, the folder fsynced. */
  private async writeFile(path: string, snapshot: Snapshot): Promise<void> {
    const tmp = `${path}.tmp`;
    const file = await this.disk.open(tmp, "create");
    try {
      await file.write(encodeSnapshot(snapshot, this.cipher), 0);
      await file.sync();
    } finally {
      await file.close();
    }
    await this.disk.rename(tmp, path);
    await this.disk.syncDir(this.dir);
  }

  /** Snapshots written by a version without encryption are rewritten sealed; broken ones are left to the load. */
  private async sealPlainFiles(): Promise<void> {
    for (const f of await this.list()) {
      const path = posix.join(this.dir, f.name);
      let read: { snap: Snapshot; sealed: boolean };
      try {
        read = await this.read(path);
      } catch (e) {
        if (e instanceof SnapshotCorruptError) continue;
        throw e;
      }
      if (read.sealed) continue;
      await this.writeFile(path, read.snap);
      this.logger.warn({ file: path }, "raft snapshot: plain file from an older version rewritten encrypted");
    }
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
