// Encryption at rest of the WAL's records and the snapshot files: AES-256-GCM with the member's
// data key (DEK), one random 96-bit nonce per sealed piece, and associated data naming where the
// piece belongs (the segment it was written to, the snapshot's index and term), so a record
// moved to another segment or a snapshot renamed to another index does not open. The work is
// per record and small, with the key imported once, so it stays on the event loop.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

const NONCE = 12;
const TAG = 16;
export const DATA_KEY_BYTES = 32;

/** A sealed piece did not open: the wrong key, or bytes changed since they were written. */
export class DecryptError extends Error {
  constructor(
    readonly file: string,
    what: string,
  ) {
    super(
      `cannot decrypt ${what} in ${file}: it was changed since it was written, or it was encrypted with another data key`,
    );
    this.name = "DecryptError";
  }
}

/** Seals and opens the pieces the WAL and the snapshotter write, with one data key. */
export class RecordCipher {
  private readonly key: Buffer;

  constructor(key: Uint8Array) {
    if (key.length !== DATA_KEY_BYTES)
      throw new RangeError(`a Raft data key is ${DATA_KEY_BYTES} bytes, not ${key.length}`);
    this.key = Buffer.from(key);
  }

  /** A new random data key. */
  static generateKey(): Uint8Array {
    return new Uint8Array(randomBytes(DATA_KEY_BYTES));
  }

  /** nonce ‖ ciphertext ‖ tag. */
  seal(plain: Uint8Array, aad: Uint8Array): Uint8Array {
    const nonce = randomBytes(NONCE);
    const c = createCipheriv("aes-256-gcm", this.key, nonce);
    c.setAAD(aad);
    const body = c.update(plain);
    c.final();
    const out = new Uint8Array(NONCE + body.length + TAG);
    out.set(nonce, 0);
    out.set(body, NONCE);
    out.set(c.getAuthTag(), NONCE + body.length);
    return out;
  }

  /** The plain bytes, or DecryptError naming `file` and `what` (e.g. "the record at offset 96"). */
  open(sealed: Uint8Array, aad: Uint8Array, file: string, what: string): Uint8Array {
    if (sealed.length < NONCE + TAG) throw new DecryptError(file, what);
    const d = createDecipheriv("aes-256-gcm", this.key, sealed.subarray(0, NONCE));
    d.setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - TAG));
    const body = d.update(sealed.subarray(NONCE, sealed.length - TAG));
    try {
      d.final();
    } catch {
      throw new DecryptError(file, what);
    }
    return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  }
}

/** Overhead of one sealed piece. */
export const SEAL_OVERHEAD = NONCE + TAG;
