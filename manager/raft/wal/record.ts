/*
 * On-disk format of the Raft write-ahead log (version 1).
 *
 * Folder: one WAL per folder, holding segment files named
 *     <seq:016x>-<firstIndex:016x>.wal
 * seq counts segments from 0 without gaps; firstIndex is lastIndex + 1 at the moment the segment
 * was started (entries written later may overwrite a suffix and start lower). A segment is
 * started as "<name>.tmp", its header written and fdatasynced, renamed, and the folder fsynced,
 * so a segment that exists always has a complete header. Leftover *.tmp files are deleted at open.
 * A segment is cut when it has reached the size setting (64 MiB by default) at the start of a
 * batch; one batch never spans two segments. A new segment's header is followed by the newest
 * hard state (if any), so releasing older segments never loses it.
 *
 * Record framing (all integers little-endian; u64 = low u32 then high u32, values < 2^53):
 *     [u32 length of payload][u32 crc][payload: length bytes]
 *     payload = [u8 kind][body]
 *     crc = CRC-32 (IEEE, as zlib) of the payload, seeded with
 *           0                       for the segment header (record 0 of each segment),
 *           the header's crc        for every other record of that segment.
 * The seed ties each record to its segment: a record copied from another segment (or a stale
 * file of the same name) does not verify. Each record also verifies on its own, which lets replay
 * tell a torn tail (nothing valid after the bad record) from corruption in the middle (a valid
 * record after it).
 *
 * Kinds and bodies:
 *     1 header        : "SHOALWAL" (8 bytes) u32 version u64 seq u64 firstIndex u32 prevCrc
 *                       version 1: the other records are plain; version 2: they are sealed.
 *                       prevCrc = crc field of the last record of segment seq-1 (0 for seq 0);
 *                       replay checks it when both segments are present.
 *     2 hard state    : u64 term  u64 vote  u64 commit
 *     3 entries       : u32 count, then per entry:
 *                       u64 term  u64 index  u8 type (0 normal, 1 conf_change)  u32 dataLength  data
 *                       indexes are consecutive within a record.
 *     4 snapshot mark : u64 index  u64 term   (a snapshot at (index, term) is saved: the log
 *                       before it may be released)
 *     5 sealed        : nonce(12) ciphertext tag(16): AES-256-GCM (../encryption.ts) of a record
 *                       payload of kind 2, 3 or 4, with associated data "SHOALWAL" u32 salt
 *                       (the segment header's crc, so a record only opens in its own segment).
 *                       A version 2 segment holds only sealed records after its header; the CRC
 *                       covers the sealed bytes, so a torn tail is still found without the key.
 *
 * releaseTo(index) deletes, oldest first with a folder fsync after each (so seq never has a
 * gap), every segment before the last one whose firstIndex <= index.
 *
 * One save(hardState, entries) appends an entries record (if any) and then a hard-state record
 * (if any), so a durable hard state never refers to entries that are not durable.
 *
 * Replay reads the segments in seq order. A record that fails (short, zero or absurd length,
 * CRC mismatch) is a torn tail if it is in the last segment and no valid record follows it at any
 * later offset: the segment is truncated to it. Anything else is WalCorruptError(file, offset).
 * A record that verifies but does not decode is always WalCorruptError (it was written that way).
 */

import type { Entry, HardState } from "../core/types.js";
import { crc32 } from "./crc.js";

const WAL_MAGIC = new TextEncoder().encode("SHOALWAL");
export const WAL_VERSION_PLAIN = 1;
export const WAL_VERSION_SEALED = 2;
const FRAME_HEADER = 8;

export const Kind = { Header: 1, HardState: 2, Entries: 3, SnapshotMarker: 4, Sealed: 5 } as const;

export interface SnapshotMarker {
  index: number;
  term: number;
}

export interface SegmentHeader {
  version: number;
  seq: number;
  firstIndex: number;
  prevCrc: number;
}

export type WalRecord =
  | { kind: "header"; header: SegmentHeader }
  | { kind: "hardState"; hardState: HardState }
  | { kind: "entries"; entries: Entry[] }
  | { kind: "snapshot"; marker: SnapshotMarker };

/** The associated data of a sealed record: the segment it belongs to. */
export function sealedRecordAad(salt: number): Uint8Array {
  const aad = new Uint8Array(WAL_MAGIC.length + 4);
  aad.set(WAL_MAGIC, 0);
  new DataView(aad.buffer).setUint32(WAL_MAGIC.length, salt >>> 0, true);
  return aad;
}

/** A sealed record's payload: kind 5, then the cipher's output. */
export function sealedPayload(sealed: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + sealed.length);
  out[0] = Kind.Sealed;
  out.set(sealed, 1);
  return out;
}

/** The payload is well framed (its CRC matched) but its content makes no sense. */
export class RecordFormatError extends Error {}

const TWO32 = 2 ** 32;

class Writer {
  buf: Uint8Array;
  view: DataView;
  pos = 0;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }
  u8(v: number): void {
    this.view.setUint8(this.pos, v);
    this.pos += 1;
  }
  u32(v: number): void {
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }
  u64(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new RangeError(`WAL: ${v} is not a non-negative safe integer`);
    this.view.setUint32(this.pos, v % TWO32, true);
    this.view.setUint32(this.pos + 4, Math.floor(v / TWO32), true);
    this.pos += 8;
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

class Reader {
  private readonly view: DataView;
  pos = 0;
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new RecordFormatError("record body shorter than its content");
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    if (hi >= 2 ** 21) throw new RecordFormatError("integer beyond 2^53");
    this.pos += 8;
    return hi * TWO32 + lo;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    // A copy: the caller keeps entries long after the segment buffer is gone.
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  end(): void {
    if (this.pos !== this.buf.length) throw new RecordFormatError("trailing bytes after record body");
  }
}

export function encodeHeader(h: SegmentHeader): Uint8Array {
  const w = new Writer(1 + 8 + 4 + 8 + 8 + 4);
  w.u8(Kind.Header);
  w.bytes(WAL_MAGIC);
  w.u32(h.version);
  w.u64(h.seq);
  w.u64(h.firstIndex);
  w.u32(h.prevCrc);
  return w.buf;
}

export function encodeHardState(hs: HardState): Uint8Array {
  const w = new Writer(1 + 24);
  w.u8(Kind.HardState);
  w.u64(hs.term);
  w.u64(hs.vote);
  w.u64(hs.commit);
  return w.buf;
}

export function encodeEntries(entries: readonly Entry[]): Uint8Array {
  let size = 1 + 4;
  for (const e of entries) size += 8 + 8 + 1 + 4 + e.data.length;
  const w = new Writer(size);
  w.u8(Kind.Entries);
  w.u32(entries.length);
  let prev = -1;
  for (const e of entries) {
    if (prev >= 0 && e.index !== prev + 1)
      throw new RangeError(`WAL: entry ${e.index} does not follow ${prev}`);
    prev = e.index;
    w.u64(e.term);
    w.u64(e.index);
    w.u8(e.type === "normal" ? 0 : 1);
    w.u32(e.data.length);
    w.bytes(e.data);
  }
  return w.buf;
}

export function encodeSnapshotMarker(m: SnapshotMarker): Uint8Array {
  const w = new Writer(1 + 16);
  w.u8(Kind.SnapshotMarker);
  w.u64(m.index);
  w.u64(m.term);
  return w.buf;
}

export function decodePayload(payload: Uint8Array): WalRecord {
  const r = new Reader(payload);
  const kind = r.u8();
  let rec: WalRecord;
  switch (kind) {
    case Kind.Header: {
      const magic = r.bytes(WAL_MAGIC.length);
      if (!magic.every((b, i) => b === WAL_MAGIC[i])) throw new RecordFormatError("bad segment magic");
      const version = r.u32();
      if (version !== WAL_VERSION_PLAIN && version !== WAL_VERSION_SEALED)
        throw new RecordFormatError(`unsupported WAL version ${version}`);
      rec = { kind: "header", header: { version, seq: r.u64(), firstIndex: r.u64(), prevCrc: r.u32() } };
      break;
    }
    case Kind.HardState:
      rec = { kind: "hardState", hardState: { term: r.u64(), vote: r.u64(), commit: r.u64() } };
      break;
    case Kind.Entries: {
      const count = r.u32();
      const entries: Entry[] = [];
      for (let i = 0; i < count; i++) {
        const term = r.u64();
        const index = r.u64();
        const t = r.u8();
        if (t > 1) throw new RecordFormatError(`unknown entry type ${t}`);
        const data = r.bytes(r.u32());
        if (i > 0 && index !== entries[i - 1].index + 1)
          throw new RecordFormatError("entry indexes not consecutive");
        entries.push({ term, index, type: t === 0 ? "normal" : "conf_change", data });
      }
      rec = { kind: "entries", entries };
      break;
    }
    case Kind.SnapshotMarker:
      rec = { kind: "snapshot", marker: { index: r.u64(), term: r.u64() } };
      break;
    default:
      throw new RecordFormatError(`unknown record kind ${kind}`);
  }
  r.end();
  return rec;
}

/** Frames payloads for appending; `seed` is the segment's salt (the header's crc) or 0 for the header. */
export function frame(payloads: readonly Uint8Array[], seed: number): { bytes: Uint8Array; lastCrc: number } {
  let size = 0;
  for (const p of payloads) size += FRAME_HEADER + p.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let pos = 0;
  let lastCrc = 0;
  for (const p of payloads) {
    lastCrc = crc32(p, seed);
    view.setUint32(pos, p.length, true);
    view.setUint32(pos + 4, lastCrc, true);
    out.set(p, pos + FRAME_HEADER);
    pos += FRAME_HEADER + p.length;
  }
  return { bytes: out, lastCrc };
}

type FrameResult =
  | { ok: true; payload: Uint8Array; crc: number; end: number }
  | { ok: false; reason: string; claimedEnd?: number };

/** Checks the record framed at `offset`: length plausible, payload present, CRC matching. */
export function readFrame(buf: Uint8Array, offset: number, seed: number): FrameResult {
  if (buf.length - offset < FRAME_HEADER) return { ok: false, reason: "short record header" };
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const length = view.getUint32(offset, true);
  const crc = view.getUint32(offset + 4, true);
  if (length === 0) return { ok: false, reason: crc === 0 ? "zeros" : "zero length" };
  const end = offset + FRAME_HEADER + length;
  if (end > buf.length)
    return { ok: false, reason: `record of ${length} bytes runs past the end of the file` };
  const payload = buf.subarray(offset + FRAME_HEADER, end);
  if (crc32(payload, seed) !== crc) return { ok: false, reason: "CRC mismatch", claimedEnd: end };
  return { ok: true, payload, crc, end };
}

/**
 * Whether a record that verifies and decodes starts anywhere after the bad one at `badOffset`:
 * if so, the damage is not a torn tail. The claimed end of the bad record is tried first, as it
 * is where the next record is when only the bad record's content was damaged.
 */
export function validRecordAfter(
  buf: Uint8Array,
  badOffset: number,
  seed: number,
  claimedEnd?: number,
  /** For a sealed segment: opens a sealed payload (throws if it does not open). */
  unseal?: (payload: Uint8Array, offset: number) => Uint8Array,
): number {
  const check = (p: number): boolean => {
    const kind: number = buf[p + FRAME_HEADER];
    if (
      unseal
        ? kind !== Kind.Sealed
        : kind !== Kind.HardState && kind !== Kind.Entries && kind !== Kind.SnapshotMarker
    )
      return false;
    const f = readFrame(buf, p, seed);
    if (!f.ok) return false;
    try {
      decodePayload(unseal ? unseal(f.payload, p) : f.payload);
      return true;
    } catch {
      return false;
    }
  };
  if (claimedEnd !== undefined && claimedEnd < buf.length && check(claimedEnd)) return claimedEnd;
  for (let p = badOffset + 1; p + FRAME_HEADER < buf.length; p++) if (check(p)) return p;
  return -1;
}
