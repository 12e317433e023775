// Layer tars arrive gzip-compressed (registries, OCI layouts) or plain (docker save). The media
// type is not always trustworthy, so sniff the magic bytes and gunzip in a stream.
import { Readable, pipeline } from "node:stream";
import { createGunzip } from "node:zlib";
import { invalid } from "../../../shared/errors.js";

const gzipMagic = [0x1f, 0x8b];
const zstdMagic = [0x28, 0xb5, 0x2f, 0xfd];

const startsWith = (buf: Buffer, magic: number[]): boolean =>
  buf.length >= magic.length && magic.every((b, i) => buf[i] === b);

/** The uncompressed bytes of a possibly gzip-compressed stream. */
export async function* decompressed(
  src: AsyncIterable<Buffer | Uint8Array>,
  what: string,
): AsyncGenerator<Buffer> {
  const it = src[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  let ended = false;
  while (head.length < 4) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    head = Buffer.concat([head, Buffer.from(r.value)]);
  }
  if (startsWith(head, zstdMagic))
    throw invalid(`${what} is zstd-compressed; shoal supports gzip and uncompressed layers only`);
  async function* whole(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (ended) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield Buffer.from(r.value);
    }
  }
  if (!startsWith(head, gzipMagic)) {
    yield* whole();
    return;
  }
  // Up to 256 KiB out per inflate step instead of zlib's 16 KiB: every step is a round trip to
  // the thread pool, and on a small machine those, not the bytes, are what unpacking costs.
  const gunzip = createGunzip({ chunkSize: 256 << 10 });
  const out = pipeline(Readable.from(whole()), gunzip, () => {
    // errors surface through the iteration of `out` below
  });
  try {
    for await (const chunk of out) yield chunk as Buffer;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("Z_"))
      throw invalid(`${what} is not valid gzip data (${code}); the archive is corrupt`);
    throw e;
  }
}
