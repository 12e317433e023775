// Docker's stdcopy framing, the one implementation both sides use: a non-TTY container's stdout
// and stderr share one stream, each frame an 8-byte header [stream type, 0, 0, 0, uint32 BE
// payload length] then the payload. The engine frames its logs and attach streams with it; the
// CLI and a manager reading another node's logs take frames apart with StdcopyDemuxer.

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
/** The daemon's own error, sent in-band when the stream fails mid-way. */
export const SYSTEMERR = 3;

export const STDCOPY_HEADER = 8;

export interface Frame {
  stream: number;
  data: Buffer;
}

/** One frame: `stream` is a stream number or the name of one of the two output streams. */
export function encodeFrame(stream: number | "stdout" | "stderr", data: Buffer | string): Buffer {
  const payload = typeof data === "string" ? Buffer.from(data) : data;
  const header = Buffer.alloc(STDCOPY_HEADER);
  header[0] = stream === "stdout" ? STDOUT : stream === "stderr" ? STDERR : stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** A log line's frame (what the engine writes for `logs` and `attach` without a TTY). */
export function stdcopyFrame(stream: "stdout" | "stderr", data: Buffer): Buffer {
  return encodeFrame(stream, data);
}

/** Frames may arrive split across chunks or several per chunk, so the parser keeps a buffer. */
export class StdcopyDemuxer {
  // Chunks are only joined once a whole frame is there, so a large frame arriving in many
  // chunks costs one copy rather than one per chunk.
  private chunks: Buffer[] = [];
  private length = 0;
  private need = STDCOPY_HEADER;

  /** Feed bytes; returns the frames they complete. */
  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.length += chunk.length;
    if (this.length < this.need) return [];
    const buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.length);
    const frames: Frame[] = [];
    let off = 0;
    while (buf.length - off >= STDCOPY_HEADER) {
      const stream = buf[off];
      if (stream > SYSTEMERR || buf[off + 1] !== 0 || buf[off + 2] !== 0 || buf[off + 3] !== 0) {
        throw new Error(
          `unrecognised stream type ${stream} in a multiplexed stream: the daemon did not send stdcopy frames`,
        );
      }
      const size = buf.readUInt32BE(off + 4);
      if (buf.length - off - STDCOPY_HEADER < size) break;
      frames.push({ stream, data: buf.subarray(off + STDCOPY_HEADER, off + STDCOPY_HEADER + size) });
      off += STDCOPY_HEADER + size;
    }
    const rest = buf.subarray(off);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    this.need = rest.length >= STDCOPY_HEADER ? STDCOPY_HEADER + rest.readUInt32BE(4) : STDCOPY_HEADER;
    return frames;
  }

  /** Bytes of an incomplete frame left at the end of the stream. */
  get leftover(): number {
    return this.length;
  }
}
