// Detach keys, shared by the daemon's attach streams and the shoal CLI: Docker's term.ToBytes
// forms ("ctrl-p,ctrl-q", "ctrl-a,x", "DEL") and an escape proxy that holds back the bytes of a
// partial sequence and passes them on once the sequence breaks, so nothing typed is lost.

/** Docker's default: ctrl-p, ctrl-q. */
export const DEFAULT_DETACH_KEYS = Buffer.from([16, 17]);

/** moby/term's names for the control codes 0–31, in order. */
const CONTROL_NAMES = [
  "ctrl-@",
  ..."abcdefghijklmnopqrstuvwxyz".split("").map((c) => `ctrl-${c}`),
  "ctrl-[",
  "ctrl-\\",
  "ctrl-]",
  "ctrl-^",
  "ctrl-_",
];

/** term.ToBytes: comma-separated keys, each one character, a ctrl-<x> name or DEL. Throws the reason. */
export function keysToBytes(keys: string): Buffer {
  const out: number[] = [];
  for (const key of keys.split(",")) {
    if (key.length === 1) {
      out.push(key.charCodeAt(0) & 0xff);
      continue;
    }
    const code = CONTROL_NAMES.indexOf(key);
    if (code >= 0) out.push(code);
    else if (key === "DEL") out.push(127);
    else throw new Error(`Unknown character: '${key}'`);
  }
  return Buffer.from(out);
}

/**
 * Watches a byte stream for the detach sequence. Unlike moby's proxy, which only matches a read
 * of exactly one byte, this one scans every byte, so a sequence split across or packed into
 * network chunks is found all the same.
 */
export class EscapeProxy {
  private pos = 0;

  constructor(private readonly keys: Buffer) {}

  /**
   * Feed one chunk of input. Returns the bytes to pass on, and whether the sequence completed
   * (then the bytes after it are dropped: the attach ends there, as Docker's does).
   */
  feed(chunk: Buffer): { pass: Buffer; detached: boolean } {
    if (this.keys.length === 0) return { pass: chunk, detached: false };
    const out: Buffer[] = [];
    let from = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] === this.keys[this.pos]) {
        // Bytes before the first key of a candidate go on now; the candidate itself is held.
        if (this.pos === 0 && i > from) out.push(chunk.subarray(from, i));
        this.pos++;
        from = i + 1;
        if (this.pos === this.keys.length) {
          this.pos = 0;
          return { pass: Buffer.concat(out), detached: true };
        }
        continue;
      }
      if (this.pos > 0) {
        // The sequence broke: what was held is ordinary input after all.
        out.push(this.keys.subarray(0, this.pos));
        this.pos = 0;
        from = i;
        // This byte may itself start a new sequence.
        i--;
        continue;
      }
    }
    if (this.pos === 0 && from < chunk.length) out.push(chunk.subarray(from));
    return { pass: Buffer.concat(out), detached: false };
  }

  /** The bytes of a partial sequence still held back (passed on when the input ends). */
  flush(): Buffer {
    const held = this.keys.subarray(0, this.pos);
    this.pos = 0;
    return Buffer.from(held);
  }
}
