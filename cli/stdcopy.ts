// Docker's stdcopy framing: [stream type, 0, 0, 0, uint32 BE length] then the payload.
// Frames may arrive split across chunks or several per chunk, so the parser keeps a buffer.

import type { Readable } from "node:stream";

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
/** The daemon's own error, sent in-band when the stream fails mid-way. */
export const SYSTEMERR = 3;

export interface Frame {
  stream: number;
  data: Buffer;
}

const HEADER = 8;

export class StdcopyDemuxer {
  // Chunks are only joined once a whole frame is there, so a large frame arriving in many
  // chunks costs one copy rather than one per chunk.
  private chunks: Buffer[] = [];
  private length = 0;
  private need = HEADER;

  /** Feed bytes; returns the frames they complete. */
  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.length += chunk.length;
    if (this.length < this.need) return [];
    const buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.length);
    const frames: Frame[] = [];
    let off = 0;
    while (buf.length - off >= HEADER) {
      const stream = buf[off];
      if (stream > SYSTEMERR || buf[off + 1] !== 0 || buf[off + 2] !== 0 || buf[off + 3] !== 0) {
        throw new Error(
          `unrecognised stream type ${stream} in the attach stream: the daemon did not send stdcopy frames`,
        );
      }
      const size = buf.readUInt32BE(off + 4);
      if (buf.length - off - HEADER < size) break;
      frames.push({ stream, data: buf.subarray(off + HEADER, off + HEADER + size) });
      off += HEADER + size;
    }
    const rest = buf.subarray(off);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    this.need = rest.length >= HEADER ? HEADER + rest.readUInt32BE(4) : HEADER;
    return frames;
  }

  /** Bytes of an incomplete frame left at the end of the stream. */
  get leftover(): number {
    return this.length;
  }
}

export function encodeFrame(stream: number, data: Buffer | string): Buffer {
  const payload = typeof data === "string" ? Buffer.from(data) : data;
  const header = Buffer.alloc(HEADER);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

export interface Sink {
  write(data: Buffer): unknown;
}

/**
 * Copy a multiplexed stream to stdout and stderr as frames arrive. Resolves when the stream
 * ends; rejects with the daemon's message when it sends a system-error frame.
 */
export async function demuxTo(source: Readable, stdout: Sink, stderr: Sink): Promise<void> {
  const demuxer = new StdcopyDemuxer();
  let systemError: string | undefined;
  for await (const chunk of source) {
    for (const frame of demuxer.push(chunk as Buffer)) {
      if (frame.stream === STDERR) stderr.write(frame.data);
      else if (frame.stream === SYSTEMERR) systemError = (systemError ?? "") + frame.data.toString("utf8");
      else stdout.write(frame.data);
    }
  }
  if (systemError !== undefined) throw new Error(systemError.trim());
}

/** Copy an unframed (TTY) stream as is. */
export async function copyRaw(source: Readable, stdout: Sink): Promise<void> {
  for await (const chunk of source) stdout.write(chunk as Buffer);
}
