import { posix } from "node:path";
import type { Disk, DiskFile, PersistLogger } from "../disk.js";
import { warningLogger } from "../disk.js";
import type { Entry, HardState } from "../core/types.js";
import { DecryptError, type RecordCipher } from "../encryption.js";
import {
  decodePayload,
  sealedPayload,
  sealedRecordAad,
  WAL_VERSION_PLAIN,
  WAL_VERSION_SEALED,
  encodeEntries,
  encodeHardState,
  encodeHeader,
  encodeSnapshotMarker,
  frame,
  Kind,
  readFrame,
  RecordFormatError,
  validRecordAfter,
  type SegmentHeader,
  type SnapshotMarker,
  type WalRecord,
} from "./record.js";

const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

export interface WalOptions {
  /** A segment is cut once it has reached this size (checked before each batch). */
  segmentBytes?: number;
  logger?: PersistLogger;
  /**
   * Seal every record with this data key (segments of version 2). Plain segments found at open
   * are rewritten sealed, oldest first, before anything else happens. Without it, a WAL holding
   * sealed segments is refused.
   */
  cipher?: RecordCipher;
}

export interface WalState {
  hardState: HardState;
  /** The log after the snapshot, in index order, conflicting suffixes already overwritten. */
  entries: Entry[];
  /** The snapshot the entries follow; undefined when the log starts at index 1. */
  snapshotMarker: SnapshotMarker | undefined;
}

/** What open() cut from the tail of the last segment. */
interface WalRepair {
  file: string;
  offset: number;
  droppedBytes: number;
  reason: string;
}

/** The WAL is damaged somewhere other than a torn tail: refusing to start is the only safe choice. */
export class WalCorruptError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`WAL corrupt: ${file} at offset ${offset}: ${reason}`);
    this.name = "WalCorruptError";
  }
}

/** A write or sync failed; the WAL refuses further writes (after a failed fsync nothing is known). */
export class WalFailedError extends Error {
  constructor(cause: unknown) {
    super(
      `WAL write failed, the WAL is unusable until restart: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
    this.name = "WalFailedError";
  }
}

interface Segment {
  seq: number;
  firstIndex: number;
  path: string;
}

interface Located {
  rec: Exclude<WalRecord, { kind: "header" }>;
  file: string;
  offset: number;
}

interface Pending {
  payloads: Uint8Array[];
  hardState: HardState | undefined;
  lastIndex: number | undefined;
  marker: SnapshotMarker | undefined;
  resolve: () => void;
  reject: (e: unknown) => void;
}

const SEGMENT_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;
const hex16 = (n: number): string => n.toString(16).padStart(16, "0");
const segmentName = (seq: number, firstIndex: number): string => `${hex16(seq)}-${hex16(firstIndex)}.wal`;
const ZERO_HARD_STATE: HardState = { term: 0, vote: 0, commit: 0 };

/**
 * The Raft write-ahead log: see record.ts for the format. Writes go through a queue: every call
 * made while a batch is being written and synced joins the next batch, which is written with one
 * write and made durable with one fdatasync (group commit). Promises resolve in call order, each
 * only once the sync that covers it has completed.
 */
export class Wal {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private failed: WalFailedError | undefined;
  private closed = false;
  private releasing: Promise<void> = Promise.resolve();
  private records: Located[] | undefined;
  /** lastIndexHint including calls still queued: where the next save's entries may start. */
  private queuedLastIndex: number;
  /** The markers read by open(): readAll() replays exactly those records. */
  private readonly openMarkers: SnapshotMarker[];

  private constructor(
    private readonly disk: Disk,
    readonly dir: string,
    private readonly segmentBytes: number,
    private segments: Segment[],
    private file: DiskFile,
    /** Where the next record goes in the last segment. */
    private tailSize: number,
    /** The last segment's header crc, seeding every other record's crc. */
    private salt: number,
    /** crc of the last record written: the next segment's header names it. */
    private lastCrc: number,
    /** Never below the true last index (see cut()). */
    private lastIndexHint: number,
    /** Repeated at the start of every new segment, so releasing old segments never loses it. */
    private lastHardState: HardState | undefined,
    records: Located[],
    private readonly markers: SnapshotMarker[],
    /** Set when open() cut a torn tail. */
    readonly repaired: WalRepair | undefined,
    private readonly cipher: RecordCipher | undefined,
  ) {
    this.records = records;
    this.queuedLastIndex = lastIndexHint;
    this.openMarkers = [...markers];
  }

  /** Whether `dir` holds a WAL (at least one segment). */
  static async exists(disk: Disk, dir: string): Promise<boolean> {
    try {
      return (await disk.readdir(dir)).some((n) => SEGMENT_RE.test(n));
    } catch {
      return false;
    }
  }

  /**
   * Opens the WAL in `dir`, creating it (folder and first segment) if it holds none. Reads and
   * verifies every segment, cuts a torn tail (with a warning), and throws WalCorruptError for
   * anything else. Call readAll() for the replayed state.
   */
  static async open(disk: Disk, dir: string, opts: WalOptions = {}): Promise<Wal> {
    const segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    const logger = opts.logger ?? warningLogger;
    await disk.mkdir(dir);
    const names = await disk.readdir(dir);
    const temps = names.filter((n) => n.endsWith(".wal.tmp"));
    for (const t of temps) await disk.unlink(posix.join(dir, t));
    if (temps.length > 0) await disk.syncDir(dir);

    const segments: Segment[] = [];
    for (const n of names) {
      const m = SEGMENT_RE.exec(n);
      if (m)
        segments.push({ seq: parseInt(m[1], 16), firstIndex: parseInt(m[2], 16), path: posix.join(dir, n) });
    }
    segments.sort((a, b) => a.seq - b.seq);

    if (segments.length === 0) {
      const { seg, file, salt } = await createSegment(disk, dir, 0, 1, 0, undefined, opts.cipher);
      return new Wal(
        disk,
        dir,
        segmentBytes,
        [seg],
        file,
        salt.size,
        salt.crc,
        salt.lastCrc,
        0,
        undefined,
        [],
        [],
        undefined,
        opts.cipher,
      );
    }

    for (let i = 1; i < segments.length; i++) {
      if (segments[i].seq !== segments[i - 1].seq + 1) {
        throw new WalCorruptError(
          segments[i].path,
          0,
          `segment ${segments[i - 1].seq + 1} is missing before it`,
        );
      }
    }

    const cipher = opts.cipher;
    if (cipher) await sealPlainSegments(disk, dir, segments, cipher, logger);

    const records: Located[] = [];
    const markers: SnapshotMarker[] = [];
    let lastIndexHint = segments[0].firstIndex - 1;
    let lastHardState: HardState | undefined;
    let prev: { version: number; lastCrc: number } | undefined;
    let salt = 0;
    let tailSize = 0;
    let repaired: WalRepair | undefined;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i];
      const scan = await scanSegment(disk, seg, i === segments.length - 1, cipher);
      // A crash while plain segments were being sealed leaves a sealed segment before a plain
      // one, whose header still names the plain predecessor's crc: only like chains like.
      if (
        prev !== undefined &&
        prev.version === scan.header.version &&
        scan.header.prevCrc !== prev.lastCrc
      ) {
        throw new WalCorruptError(seg.path, 0, "segment header does not chain to the previous segment");
      }
      salt = scan.salt;
      if (scan.repaired) repaired = scan.repaired;
      for (const { payload, offset } of scan.records) {
        const rec = decodeAt(payload, seg.path, offset);
        if (rec.kind === "header")
          throw new WalCorruptError(seg.path, offset, "segment header in the middle");
        records.push({ rec, file: seg.path, offset });
        if (rec.kind === "hardState") {
          lastHardState = rec.hardState;
        } else if (rec.kind === "entries" && rec.entries.length > 0) {
          lastIndexHint = rec.entries[rec.entries.length - 1].index;
        } else if (rec.kind === "snapshot") {
          markers.push(rec.marker);
          lastIndexHint = Math.max(lastIndexHint, rec.marker.index);
        }
      }
      prev = { version: scan.header.version, lastCrc: scan.lastCrc };
      tailSize = scan.end;
    }

    const last = segments[segments.length - 1];
    const file = await disk.open(last.path, "existing");
    if (repaired) {
      logger.warn({ ...repaired }, "raft WAL: torn tail cut at restart");
      await file.truncate(repaired.offset);
      await file.sync();
    }
    return new Wal(
      disk,
      dir,
      segmentBytes,
      segments,
      file,
      tailSize,
      salt,
      prev?.lastCrc ?? salt,
      lastIndexHint,
      lastHardState,
      records,
      markers,
      repaired,
      cipher,
    );
  }

  /** Every snapshot marker in the WAL, oldest first (for Snapshotter.loadNewestAvailable). */
  snapshotMarkers(): SnapshotMarker[] {
    return this.markers.map((m) => ({ ...m }));
  }

  /**
   * The state replayed from what open() read, starting at snapshot `at` (default: the last
   * snapshot marker; pass an older marker when the newest snapshot file is unusable). Frees the
   * records read at open: call it once.
   */
  readAll(at?: SnapshotMarker): WalState {
    const records = this.records;
    if (!records) throw new Error("WAL: readAll() may be called once, after open()");
    this.records = undefined;
    const target = at && at.index > 0 ? at : at ? undefined : this.openMarkers[this.openMarkers.length - 1];
    if (target && !this.openMarkers.some((m) => m.index === target.index && m.term === target.term)) {
      throw new Error(`WAL holds no snapshot marker at index ${target.index} term ${target.term}`);
    }

    let base = this.segments[0].firstIndex - 1;
    let log: Entry[] = [];
    let hardState = ZERO_HARD_STATE;
    let reached = target === undefined;
    for (const { rec, file, offset } of records) {
      if (rec.kind === "hardState") {
        hardState = rec.hardState;
      } else if (rec.kind === "entries") {
        if (rec.entries.length === 0) continue;
        const first = rec.entries[0].index;
        const lastIndex = base + log.length;
        if (first > lastIndex + 1) {
          throw new WalCorruptError(
            file,
            offset,
            `entries start at ${first} but the log ends at ${lastIndex}`,
          );
        }
        const fresh = first > base ? rec.entries : rec.entries.slice(base + 1 - first);
        if (fresh.length === 0) continue;
        // As a Raft follower appends: everything from the first new index on is replaced.
        log.length = fresh[0].index - base - 1;
        for (const e of fresh) log.push(e);
      } else {
        const m = rec.marker;
        const matches =
          m.index <= base || (m.index <= base + log.length && log[m.index - base - 1].term === m.term);
        if (reached && target && m.index > target.index) {
          // A later snapshot than the one we start from: fine if it only compacted our own log.
          if (!matches) {
            throw new Error(
              `WAL: snapshot at index ${m.index} term ${m.term} replaced the log after snapshot ` +
                `${target.index}; that snapshot is needed to restart (${file} offset ${offset})`,
            );
          }
          continue;
        }
        if (m.index > base) {
          // Raft's restore: a snapshot matching the log compacts it, any other replaces it.
          log = matches ? log.slice(m.index - base) : [];
          base = m.index;
        }
        if (target && m.index === target.index && m.term === target.term) reached = true;
      }
    }
    if (target ? base !== target.index : base !== 0) {
      throw new Error(
        target
          ? `WAL no longer holds the entries right after snapshot ${target.index} (its log starts after ${base})`
          : `WAL starts after index ${base} but holds no snapshot marker`,
      );
    }
    // A snapshot holds only committed entries, even if the hard state saying so was not saved.
    const commit = Math.max(hardState.commit, target?.index ?? 0);
    return { hardState: { ...hardState, commit }, entries: log, snapshotMarker: target && { ...target } };
  }

  /**
   * Appends `entries` (consecutive indexes; overwriting from entries[0].index on) then
   * `hardState`, and resolves once both are durable.
   */
  save(hardState: HardState | undefined, entries: readonly Entry[]): Promise<void> {
    const payloads: Uint8Array[] = [];
    try {
      if (entries.length > 0) {
        // A gap would make the WAL unreplayable; refuse it here rather than at the next restart.
        if (entries[0].index > this.queuedLastIndex + 1) {
          throw new RangeError(
            `WAL: entries start at ${entries[0].index} but the log ends at ${this.queuedLastIndex}`,
          );
        }
        payloads.push(encodeEntries(entries));
      }
      if (hardState) payloads.push(encodeHardState(hardState));
    } catch (e) {
      return Promise.reject(e);
    }
    const last = entries.length > 0 ? entries[entries.length - 1].index : undefined;
    if (last !== undefined) this.queuedLastIndex = last;
    return this.enqueue(payloads, last, hardState);
  }

  /**
   * Records that a snapshot at (index, term) is durably saved (write the snapshot file first):
   * replay starts the log there, and segments before it may then be released.
   */
  saveSnapshotMarker(marker: SnapshotMarker): Promise<void> {
    this.queuedLastIndex = Math.max(this.queuedLastIndex, marker.index);
    return this.enqueue([encodeSnapshotMarker(marker)], undefined, undefined, { ...marker });
  }

  /**
   * Deletes the segments before the last one whose firstIndex <= index. Call it only once the
   * snapshot at `index` and its marker are durable. What is kept holds every entry after `index`
   * (a segment cut later started after the log's end, never below the true end + 1) and the
   * marker (written after entry `index`, and every segment cut after it has firstIndex > index).
   * The hard state survives because each segment starts with the one current when it was cut.
   */
  releaseTo(index: number): Promise<void> {
    const run = async (): Promise<void> => {
      let k = -1;
      for (let i = 0; i < this.segments.length; i++) if (this.segments[i].firstIndex <= index) k = i;
      for (let i = 0; i < k; i++) {
        const seg = this.segments[0];
        await this.disk.unlink(seg.path);
        // One at a time and durably: a crash must never leave a gap in the seq numbers.
        await this.disk.syncDir(this.dir);
        this.segments.shift();
      }
    };
    const p = this.releasing.then(run);
    this.releasing = p.catch(() => undefined);
    return p;
  }

  /** Segment file names, oldest first. */
  segmentFiles(): string[] {
    return this.segments.map((s) => posix.basename(s.path));
  }

  /** Waits for queued writes, then closes. Later calls to save reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.flushing;
    await this.releasing;
    await this.file.close();
  }

  private enqueue(
    payloads: Uint8Array[],
    lastIndex: number | undefined,
    hardState: HardState | undefined,
    marker?: SnapshotMarker,
  ): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closed) return Promise.reject(new Error("WAL is closed"));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({
        payloads,
        hardState: hardState && { ...hardState },
        lastIndex,
        marker,
        resolve,
        reject,
      });
      this.flushing ??= this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        try {
          const payloads = batch.flatMap((p) => p.payloads);
          if (payloads.length > 0) {
            if (this.tailSize >= this.segmentBytes) await this.cut();
            const { bytes, lastCrc } = frame(sealAll(payloads, this.salt, this.cipher), this.salt);
            await this.file.write(bytes, this.tailSize);
            await this.file.datasync();
            this.tailSize += bytes.length;
            this.lastCrc = lastCrc;
          }
        } catch (e) {
          this.failed = new WalFailedError(e);
          const all = [...batch, ...this.queue];
          this.queue = [];
          for (const p of all) p.reject(this.failed);
          return;
        }
        for (const p of batch) {
          if (p.lastIndex !== undefined) this.lastIndexHint = p.lastIndex;
          if (p.hardState) this.lastHardState = p.hardState;
          if (p.marker) {
            this.markers.push(p.marker);
            this.lastIndexHint = Math.max(this.lastIndexHint, p.marker.index);
          }
          p.resolve();
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }

  /** Starts the next segment. Its name's firstIndex only guides releaseTo, which needs it not too low. */
  private async cut(): Promise<void> {
    const prev = this.segments[this.segments.length - 1];
    const { seg, file, salt } = await createSegment(
      this.disk,
      this.dir,
      prev.seq + 1,
      this.lastIndexHint + 1,
      this.lastCrc,
      this.lastHardState,
      this.cipher,
    );
    await this.file.close();
    this.file = file;
    this.segments.push(seg);
    this.salt = salt.crc;
    this.lastCrc = salt.lastCrc;
    this.tailSize = salt.size;
  }
}

function decodeAt(payload: Uint8Array, file: string, offset: number): WalRecord {
  try {
    return decodePayload(payload);
  } catch (e) {
    if (e instanceof RecordFormatError)
      throw new WalCorruptError(file, offset, `undecodable record: ${e.message}`);
    throw e;
  }
}

async function createSegment(
  disk: Disk,
  dir: string,
  seq: number,
  firstIndex: number,
  prevCrc: number,
  hardState: HardState | undefined,
  cipher: RecordCipher | undefined,
): Promise<{ seg: Segment; file: DiskFile; salt: { crc: number; lastCrc: number; size: number } }> {
  const path = posix.join(dir, segmentName(seq, firstIndex));
  const tmp = `${path}.tmp`;
  const version = cipher ? WAL_VERSION_SEALED : WAL_VERSION_PLAIN;
  const header = frame([encodeHeader({ version, seq, firstIndex, prevCrc })], 0);
  const state = frame(
    sealAll(hardState ? [encodeHardState(hardState)] : [], header.lastCrc, cipher),
    header.lastCrc,
  );
  const bytes = new Uint8Array(header.bytes.length + state.bytes.length);
  bytes.set(header.bytes);
  bytes.set(state.bytes, header.bytes.length);
  const file = await disk.open(tmp, "create");
  try {
    await file.write(bytes, 0);
    await file.datasync();
    // Renamed only once complete, so a segment that exists always has its header.
    await disk.rename(tmp, path);
    await disk.syncDir(dir);
  } catch (e) {
    await file.close();
    throw e;
  }
  const lastCrc = hardState ? state.lastCrc : header.lastCrc;
  return { seg: { seq, firstIndex, path }, file, salt: { crc: header.lastCrc, lastCrc, size: bytes.length } };
}

/** The payloads as a segment salted with `salt` stores them: sealed when there is a cipher. */
function sealAll(payloads: Uint8Array[], salt: number, cipher: RecordCipher | undefined): Uint8Array[] {
  if (!cipher) return payloads;
  const aad = sealedRecordAad(salt);
  return payloads.map((p) => sealedPayload(cipher.seal(p, aad)));
}

interface SegmentScan {
  header: SegmentHeader;
  salt: number;
  /** Plain payloads (opened, for a sealed segment) of the records after the header. */
  records: Array<{ payload: Uint8Array; offset: number }>;
  /** crc of the last valid record (the header's if there is none). */
  lastCrc: number;
  /** Where the valid records end. */
  end: number;
  repaired: WalRepair | undefined;
}

/**
 * Reads one segment: its header, then every record, opening sealed ones. A bad record is a torn
 * tail only in the last segment and only with nothing valid after it; anything else, and a
 * sealed record that does not open, is WalCorruptError.
 */
async function scanSegment(
  disk: Disk,
  seg: Segment,
  isLast: boolean,
  cipher: RecordCipher | undefined,
): Promise<SegmentScan> {
  const buf = await disk.readFile(seg.path);
  const h = readFrame(buf, 0, 0);
  if (!h.ok) throw new WalCorruptError(seg.path, 0, `bad segment header: ${h.reason}`);
  const decoded = decodeAt(h.payload, seg.path, 0);
  if (decoded.kind !== "header")
    throw new WalCorruptError(seg.path, 0, "first record is not a segment header");
  const header = decoded.header;
  if (header.seq !== seg.seq || header.firstIndex !== seg.firstIndex) {
    throw new WalCorruptError(seg.path, 0, "segment header does not match the file name");
  }
  const sealed = header.version === WAL_VERSION_SEALED;
  if (sealed && !cipher)
    throw new WalCorruptError(
      seg.path,
      0,
      "the segment is encrypted and no Raft data key was given (is the manager's raft-dek.json missing?)",
    );
  const salt = h.crc;
  const aad = sealedRecordAad(salt);
  const unseal =
    sealed && cipher
      ? (payload: Uint8Array, offset: number): Uint8Array => {
          if (payload[0] !== Kind.Sealed)
            throw new RecordFormatError("a plain record in an encrypted segment");
          return cipher.open(payload.subarray(1), aad, seg.path, `the WAL record at offset ${offset}`);
        }
      : undefined;
  const records: SegmentScan["records"] = [];
  let lastCrc = h.crc;
  let offset = h.end;
  let repaired: WalRepair | undefined;
  while (offset < buf.length) {
    const f = readFrame(buf, offset, salt);
    if (!f.ok) {
      if (!isLast)
        throw new WalCorruptError(seg.path, offset, `${f.reason} in a segment that is not the last`);
      const next = validRecordAfter(buf, offset, salt, f.claimedEnd, unseal);
      if (next >= 0) {
        throw new WalCorruptError(
          seg.path,
          offset,
          `${f.reason}, followed by a valid record at offset ${next}`,
        );
      }
      repaired = { file: seg.path, offset, droppedBytes: buf.length - offset, reason: f.reason };
      break;
    }
    let payload: Uint8Array = f.payload;
    if (unseal) {
      try {
        payload = unseal(f.payload, offset);
      } catch (e) {
        if (e instanceof RecordFormatError) throw new WalCorruptError(seg.path, offset, e.message);
        if (e instanceof DecryptError) throw new WalCorruptError(seg.path, offset, e.message);
        throw e;
      }
    }
    records.push({ payload, offset });
    lastCrc = f.crc;
    offset = f.end;
  }
  return { header, salt, records, lastCrc, end: offset, repaired };
}

/**
 * Rewrites the plain (version 1) segments sealed, oldest first, each through a temporary file
 * renamed over it. A crash part way leaves sealed segments before plain ones; the next open
 * carries on from there. The new headers chain to the rewritten predecessors.
 */
async function sealPlainSegments(
  disk: Disk,
  dir: string,
  segments: Segment[],
  cipher: RecordCipher,
  logger: PersistLogger,
): Promise<void> {
  let prevLastCrc = 0;
  let sealedAny = false;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    const scan = await scanSegment(disk, seg, i === segments.length - 1, cipher);
    if (scan.header.version === WAL_VERSION_SEALED) {
      prevLastCrc = scan.lastCrc;
      continue;
    }
    if (scan.repaired) logger.warn({ ...scan.repaired }, "raft WAL: torn tail cut while encrypting the WAL");
    const header = frame(
      [encodeHeader({ ...scan.header, version: WAL_VERSION_SEALED, prevCrc: prevLastCrc })],
      0,
    );
    const body = frame(
      sealAll(
        scan.records.map((r) => r.payload),
        header.lastCrc,
        cipher,
      ),
      header.lastCrc,
    );
    const bytes = new Uint8Array(header.bytes.length + body.bytes.length);
    bytes.set(header.bytes);
    bytes.set(body.bytes, header.bytes.length);
    const tmp = `${seg.path}.tmp`;
    const file = await disk.open(tmp, "create");
    try {
      await file.write(bytes, 0);
      await file.datasync();
    } finally {
      await file.close();
    }
    await disk.rename(tmp, seg.path);
    await disk.syncDir(dir);
    prevLastCrc = scan.records.length > 0 ? body.lastCrc : header.lastCrc;
    sealedAny = true;
  }
  if (sealedAny) logger.warn({ dir }, "raft WAL: plain segments from an older version rewritten encrypted");
}
