// A blob download checked while it streams: every byte is hashed (and optionally written to a
// file to keep) on its way to the consumer, the size may not exceed the descriptor's, and
// finish() reads whatever the consumer left and compares the digest. Nothing downstream may be
// committed before finish() resolved.
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createWriteStream, type WriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { internal } from "../../../shared/errors.js";

export class VerifiedBlob {
  private readonly it: AsyncIterator<Uint8Array>;
  private readonly hash = createHash("sha256");
  private received = 0;
  private ended = false;
  /** Reads are serialised: the consumer's and finish()'s never overlap. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly out?: WriteStream;
  private outError?: Error;

  constructor(
    body: AsyncIterable<Uint8Array>,
    private readonly digest: string,
    private readonly size: number | undefined,
    private readonly what: string,
    options: { keepTo?: string; onBytes?: (received: number) => void } = {},
  ) {
    this.it = body[Symbol.asyncIterator]();
    this.onBytes = options.onBytes;
    if (options.keepTo !== undefined) {
      this.keepTo = options.keepTo;
      this.out = createWriteStream(options.keepTo, { mode: 0o600 });
      this.out.on("error", (e) => (this.outError = e));
    }
  }

  private readonly onBytes?: (received: number) => void;
  /** The kept file's last write that did not fit its buffer: awaited before the next one. */
  private drained?: Promise<unknown>;
  private readonly keepTo?: string;

  /** The transfer's own error (a reset connection), as opposed to what the consumer made of it. */
  failure?: unknown;

  get bytes(): number {
    return this.received;
  }

  private read(): Promise<Buffer | null> {
    const p = this.queue.then(() => this.readOne());
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async readOne(): Promise<Buffer | null> {
    if (this.ended) return null;
    let r: IteratorResult<Uint8Array>;
    try {
      r = await this.it.next();
    } catch (e) {
      this.failure ??= e;
      throw e;
    }
    if (r.done) {
      this.ended = true;
      return null;
    }
    const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    this.received += chunk.length;
    if (this.size !== undefined && this.received > this.size) {
      throw internal(
        `${this.what}: the registry sent more than the ${this.size} bytes the manifest gives for ${this.digest}; refused`,
      );
    }
    this.hash.update(chunk);
    if (this.out) {
      // One write in flight at most, but the chunk goes downstream while it is written.
      // (A write error is kept by the "error" listener and thrown at the next write or finish.)
      if (this.drained) await this.drained;
      this.drained = undefined;
      if (this.outError) throw this.outError;
      if (!this.out.write(chunk)) this.drained = once(this.out, "drain").catch(() => undefined);
    }
    this.onBytes?.(this.received);
    return chunk;
  }

  /** The bytes, for the consumer (a layer extraction). */
  async *chunks(): AsyncGenerator<Buffer> {
    for (;;) {
      const c = await this.read();
      if (c === null) return;
      yield c;
    }
  }

  /** Read the rest and check size and digest; throws (and removes the kept file) on a mismatch. */
  async finish(): Promise<void> {
    try {
      while ((await this.read()) !== null) {
        // draining what the consumer did not need (trailing padding)
      }
      if (this.out) {
        this.out.end();
        await once(this.out, "close");
        if (this.outError) throw this.outError;
      }
      if (this.size !== undefined && this.received !== this.size) {
        throw internal(
          `${this.what}: the registry sent ${this.received} bytes, but the manifest gives ${this.size} for ${this.digest}; refused`,
        );
      }
      const got = `sha256:${this.hash.digest("hex")}`;
      if (got !== this.digest) {
        throw internal(
          `filesystem layer verification failed for digest ${this.digest}: the downloaded content hashes to ${got}; refused, nothing was stored`,
        );
      }
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  /**
   * After the consumer failed: finish() if the rest is cheap to read, so that a corrupt blob is
   * reported as a digest mismatch rather than as whatever the corruption broke downstream.
   * Returns the digest error, if that is what it was.
   */
  async diagnose(): Promise<Error | undefined> {
    try {
      await this.finish();
      return undefined;
    } catch (e) {
      return /verification failed|more than|bytes, but/.test((e as Error).message) ? (e as Error) : undefined;
    }
  }

  /** Stop: release the connection and remove the kept file. */
  async abort(): Promise<void> {
    this.ended = true;
    await this.it.return?.().catch(() => undefined);
    if (this.out && !this.out.closed) {
      this.out.destroy();
      await once(this.out, "close").catch(() => undefined);
    }
    if (this.keepTo !== undefined) await rm(this.keepTo, { force: true });
  }
}
