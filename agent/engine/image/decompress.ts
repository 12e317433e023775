// Layer tars arrive gzip-compressed (registries, OCI layouts) or plain (docker save). The media
// type is not always trustworthy, so sniff the magic bytes and gunzip in a stream.
import { Readable, pipeline } from "node:stream";
import { createGunzip } from "node:zlib";
import { invalid } from "../../../shared/errors.js";

export type Compression = "none" | "gzip" | "bzip2" | "xz" | "zstd";

const magics: Array<[Compression, number[]]> = [
  ["gzip", [0x1f, 0x8b]],
  ["bzip2", [0x42, 0x5a, 0x68]],
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
];

/** The compression a stream's first bytes show. */
export function sniffCompression(head: Buffer): Compression {
  for (const [kind, magic] of magics) {
    if (head.length >= magic.length && magic.every((b, i) => head[i] === b)) return kind;
  }
  return "none";
}

/** Read the first bytes of a stream without losing them. */
export async function peek(
  src: AsyncIterable<Buffer | Uint8Array>,
  n: number,
): Promise<{ head: Buffer; all: AsyncIterable<Buffer> }> {
  const it = src[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  let ended = false;
  while (head.length < n) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    head = Buffer.concat([head, Buffer.from(r.value)]);
  }
  async function* all(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (ended) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield Buffer.from(r.value);
    }
  }
  return { head, all: all() };
}

/** The uncompressed bytes of a possibly gzip-compressed stream. */
export async function* decompressed(
  src: AsyncIterable<Buffer | Uint8Array>,
  what: string,
): AsyncGenerator<Buffer> {
  const { head, all } = await peek(src, 4);
  const kind = sniffCompression(head);
  if (kind === "zstd")
    throw invalid(`${what} is zstd-compressed; shoal supports gzip and uncompressed layers only`);
  if (kind !== "gzip") {
    yield* all;
    return;
  }
  // Up to 256 KiB out per inflate step instead of zlib's 16 KiB: every step is a round trip to
  // the thread pool, and on a small machine those, not the bytes, are what unpacking costs.
  yield* gunzipped(all, what, { chunkSize: 256 << 10, corrupt: "; the archive is corrupt" });
}

/** `src` gunzipped; bad gzip data is a 400 naming `what` (and `corrupt` after the zlib code). */
export async function* gunzipped(
  src: AsyncIterable<Buffer>,
  what: string,
  o: { chunkSize?: number; corrupt?: string } = {},
): AsyncGenerator<Buffer> {
  const gunzip = createGunzip(o.chunkSize === undefined ? undefined : { chunkSize: o.chunkSize });
  const out = pipeline(Readable.from(src), gunzip, () => {
    // errors surface through the iteration of `out` below
  });
  try {
    for await (const chunk of out) yield chunk as Buffer;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("Z_"))
      throw invalid(`${what} is not valid gzip data (${code})${o.corrupt ?? ""}`);
    throw e;
  }
}
