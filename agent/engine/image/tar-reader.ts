// A small streaming tar reader. tar-stream hides the raw header bytes, but shoal must give back
// byte-identical layer tars on `save` (the diffIDs in the image config are digests of them), so
// the reader returns each entry's raw header blocks alongside the parsed header.
import { invalid } from "../../../shared/errors.js";
import { ByteSource } from "./bytes.js";

export type TarType = "file" | "link" | "symlink" | "char" | "block" | "dir" | "fifo";

export interface TarHeader {
  name: string;
  type: TarType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch (PAX allows fractions). */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** From PAX SCHILY.xattr.* records. */
  xattrs: Map<string, Buffer>;
}

export interface TarEntryStart {
  header: TarHeader;
  /** Raw bytes since the end of the previous entry's content: its padding, then this entry's header blocks. */
  raw: Buffer;
}

const block = 512;

/**
 * Bounds on the metadata entries (PAX extended 'x' and global 'g' headers, GNU long names 'L'
 * and 'K') the reader holds in memory. Each is read whole, and every one before an entry is
 * kept (its raw bytes go back out on `save`), so a small compressed layer of repeated headers
 * would otherwise grow the daemon without bound.
 */
export interface TarMetaLimits {
  /** All metadata entries before one entry (Go's archive/tar allows 1 MiB per header). */
  perEntry: number;
  /** All metadata entries in the archive: far above what real layers carry (a few hundred bytes per long path). */
  perArchive: number;
}

export const TAR_META_LIMITS: TarMetaLimits = { perEntry: 1 << 20, perArchive: 16 << 20 };

const mib = (n: number): string => `${Math.round((n / (1 << 20)) * 10) / 10} MiB`;
/** GNU tar pads archives to 10 KiB records; allow generous trailing zeros, not unbounded junk. */
const maxTrailer = 1 << 20;

const typeOf: Record<string, TarType | undefined> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "link",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "6": "fifo",
};

function cstring(buf: Buffer, start: number, len: number): string {
  const slice = buf.subarray(start, start + len);
  const nul = slice.indexOf(0);
  return (nul >= 0 ? slice.subarray(0, nul) : slice).toString("utf8");
}

function numeric(buf: Buffer, start: number, len: number, field: string): number {
  const slice = buf.subarray(start, start + len);
  if (slice[0] & 0x80) {
    // GNU base-256: big-endian, first byte's top bit is the marker.
    let v = slice[0] & 0x7f;
    for (let i = 1; i < slice.length; i++) v = v * 256 + slice[i];
    if (!Number.isSafeInteger(v)) throw invalid(`corrupt tar header: ${field} is too large`);
    return v;
  }
  const text = slice
    .toString("latin1")
    .replace(/[\0 ]+$/g, "")
    .replace(/^[ \0]+/, "");
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw invalid(`corrupt tar header: ${field} "${text}" is not an octal number`);
  return parseInt(text, 8);
}

function checksumOk(h: Buffer): boolean {
  const stored = numeric(h, 148, 8, "checksum");
  let sum = 0;
  for (let i = 0; i < block; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
  return sum === stored;
}

function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0) break;
    const len = Number(data.subarray(pos, space).toString("latin1"));
    if (!Number.isInteger(len) || len <= 0 || pos + len > data.length)
      throw invalid("corrupt tar archive: bad PAX record length");
    const record = data.subarray(space + 1, pos + len - 1); // drop trailing "\n"
    const eq = record.indexOf(0x3d);
    if (eq > 0) out.set(record.subarray(0, eq).toString("utf8"), record.subarray(eq + 1));
    pos += len;
  }
  return out;
}

const padOf = (size: number): number => (block - (size % block)) % block;

/**
 * Iterate a tar stream. After `next()` returns an entry, read its content with `body()` (or not:
 * the next `next()` skips it). At the end, `trailer()` holds the raw bytes after the last entry.
 */
export class TarReader {
  private readonly src: ByteSource;
  private leftover = 0;
  private padding = 0;
  private finished = false;
  private trailerBytes: Buffer = Buffer.alloc(0);
  private metaTotal = 0;

  constructor(
    input: AsyncIterable<Buffer | Uint8Array>,
    onChunk?: (chunk: Buffer) => void,
    private readonly limits: TarMetaLimits = TAR_META_LIMITS,
  ) {
    this.src = new ByteSource(input, onChunk);
  }

  /** Count `size` bytes of metadata held for the coming entry; refuse before reading them when over a limit. */
  private holdMeta(size: number, entryMeta: number, kind: string): number {
    const entry = entryMeta + size;
    if (entry > this.limits.perEntry) {
      throw invalid(
        `tar metadata over the limit: the ${kind} before one entry add up to more than ${mib(this.limits.perEntry)}, the most shoal accepts per entry`,
      );
    }
    this.metaTotal += size;
    if (this.metaTotal > this.limits.perArchive) {
      throw invalid(
        `tar metadata over the limit: the ${kind} add up to more than ${mib(this.limits.perArchive)}, the most shoal accepts per layer or archive`,
      );
    }
    return entry;
  }

  /** The raw bytes after the last entry's content (padding, end blocks, record fill). */
  trailer(): Buffer {
    return this.trailerBytes;
  }

  private async skipLeftover(): Promise<Buffer> {
    for await (const _ of this.src.stream(this.leftover, "a file's content")) {
      // discarded: the caller did not want this entry's content
    }
    this.leftover = 0;
    const pad = this.padding > 0 ? await this.src.readExact(this.padding, "padding") : Buffer.alloc(0);
    this.padding = 0;
    return pad ?? Buffer.alloc(0);
  }

  async next(): Promise<TarEntryStart | null> {
    if (this.finished) return null;
    const raw: Buffer[] = [await this.skipLeftover()];
    let pax = new Map<string, Buffer>();
    let longName: string | undefined;
    let longLink: string | undefined;
    let entryMeta = 0;
    for (;;) {
      const h = await this.src.readExact(block, "a tar header");
      if (h === null) {
        // Missing end-of-archive blocks: tolerated, as GNU tar and Docker do.
        this.finished = true;
        this.trailerBytes = Buffer.concat(raw);
        return null;
      }
      if (h.every((b) => b === 0)) {
        this.finished = true;
        const rest = await this.src.readRest(maxTrailer, "trailing data after the end of the tar archive");
        this.trailerBytes = Buffer.concat([...raw, h, rest]);
        return null;
      }
      raw.push(h);
      if (!checksumOk(h))
        throw invalid("corrupt tar archive: header checksum mismatch (is this really a tar file?)");
      const flag = String.fromCharCode(h[156]);
      const size = numeric(h, 124, 12, "size");
      if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
        entryMeta = this.holdMeta(size, entryMeta, "PAX and long-name headers");
        const data =
          (await this.src.readExact(size + padOf(size), "a tar metadata entry")) ?? Buffer.alloc(0);
        if (data.length < size) throw invalid("truncated archive: input ended inside a tar metadata entry");
        raw.push(data);
        const content = data.subarray(0, size);
        if (flag === "x") pax = new Map([...pax, ...parsePax(content)]);
        else if (flag === "L") longName = cstring(content, 0, content.length);
        else if (flag === "K") longLink = cstring(content, 0, content.length);
        continue; // global PAX headers ('g') only carry defaults shoal does not need
      }
      const type = typeOf[flag];
      const isUstar = h.subarray(257, 263).toString("latin1") === "ustar\0";
      let name = cstring(h, 0, 100);
      const prefix = isUstar ? cstring(h, 345, 155) : "";
      if (prefix) name = `${prefix}/${name}`;
      if (longName !== undefined) name = longName;
      const paxText = (k: string): string | undefined => pax.get(k)?.toString("utf8");
      name = paxText("path") ?? name;
      if (type === undefined) throw invalid(`unsupported tar entry type "${flag}" for "${name}"`);
      const paxNum = (k: string, fallback: number): number => {
        const v = paxText(k);
        if (v === undefined) return fallback;
        const n = Number(v);
        if (!Number.isFinite(n) || n < 0) throw invalid(`corrupt tar archive: PAX ${k} "${v}" for "${name}"`);
        return n;
      };
      const xattrs = new Map<string, Buffer>();
      for (const [k, v] of pax)
        if (k.startsWith("SCHILY.xattr.")) xattrs.set(k.slice("SCHILY.xattr.".length), v);
      const header: TarHeader = {
        name,
        type,
        mode: numeric(h, 100, 8, "mode") & 0o7777,
        uid: paxNum("uid", numeric(h, 108, 8, "uid")),
        gid: paxNum("gid", numeric(h, 116, 8, "gid")),
        size: type === "file" ? paxNum("size", size) : 0,
        mtime: paxNum("mtime", numeric(h, 136, 12, "mtime")),
        linkname: paxText("linkpath") ?? longLink ?? cstring(h, 157, 100),
        devmajor: type === "char" || type === "block" ? numeric(h, 329, 8, "devmajor") : 0,
        devminor: type === "char" || type === "block" ? numeric(h, 337, 8, "devminor") : 0,
        xattrs,
      };
      if (!Number.isSafeInteger(header.size))
        throw invalid(`corrupt tar archive: size of "${name}" is not an integer`);
      if (type !== "file" && size > 0) {
        // A link or device with a nonzero size field: keep its bytes as raw header so `save`
        // reproduces them, and so the stream stays aligned.
        if (size > this.limits.perEntry)
          throw invalid(`corrupt tar archive: "${name}" is a ${type} with ${size} bytes of content`);
        this.holdMeta(size, 0, "contents of links and devices");
        const data = await this.src.readExact(size + padOf(size), "a tar entry");
        if (data === null) throw invalid("truncated archive: input ended inside a tar entry");
        raw.push(data);
        return { header, raw: Buffer.concat(raw) };
      }
      this.leftover = header.size;
      this.padding = padOf(header.size);
      return { header, raw: Buffer.concat(raw) };
    }
  }

  /** The current entry's content, streamed. */
  async *body(): AsyncGenerator<Buffer> {
    for await (const piece of this.src.stream(this.leftover, "a file's content")) {
      this.leftover -= piece.length;
      yield piece;
    }
  }
}
