// Pull-based byte reader over an async stream. The tar reader needs exact-size reads with
// backpressure, and every byte it consumes must go through one hash (the layer's diffID).
import { invalid } from "../../../shared/errors.js";

export class ByteSource {
  private readonly it: AsyncIterator<Buffer | Uint8Array>;
  private pending: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(
    src: AsyncIterable<Buffer | Uint8Array>,
    private readonly onChunk: (chunk: Buffer) => void = () => {},
  ) {
    this.it = src[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    for (;;) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      if (chunk.length === 0) continue;
      this.onChunk(chunk);
      this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
      return true;
    }
  }

  /** Exactly n bytes; null at a clean end of input; throws when the input stops part-way. */
  async readExact(n: number, what: string): Promise<Buffer | null> {
    while (this.pending.length < n) {
      if (!(await this.fill())) {
        if (this.pending.length === 0) return null;
        throw invalid(`truncated archive: input ended inside ${what}`);
      }
    }
    const out = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(n);
    return out;
  }

  /** Yields exactly n bytes in pieces, without buffering them all. */
  async *stream(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.pending.length === 0 && !(await this.fill()))
        throw invalid(`truncated archive: input ended inside ${what}`);
      const piece = this.pending.subarray(0, Math.min(left, this.pending.length));
      this.pending = this.pending.subarray(piece.length);
      left -= piece.length;
      yield piece;
    }
  }

  /** Everything left, up to cap bytes; more than that is refused. */
  async readRest(cap: number, what: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    let total = 0;
    for (;;) {
      if (this.pending.length > 0) {
        total += this.pending.length;
        if (total > cap) throw invalid(`${what} is larger than ${cap} bytes`);
        parts.push(this.pending);
        this.pending = Buffer.alloc(0);
      }
      if (!(await this.fill())) return Buffer.concat(parts);
    }
  }
}
