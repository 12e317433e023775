// The little DER (ASN.1 distinguished encoding) the CA needs to build certificates and signing
// requests in memory and to read the parts of a request it signs. Only definite lengths, only
// the types X.509 uses here; anything else in input is refused.

export type Der = Uint8Array;

const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  oid: 0x06,
  utf8: 0x0c,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

function length(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

export function tlv(tag: number, ...content: readonly Uint8Array[]): Der {
  const body = concat(content);
  return concat([Uint8Array.of(tag), length(body.length), body]);
}

export const sequence = (...items: readonly Der[]): Der => tlv(TAG.sequence, ...items);
export const set = (...items: readonly Der[]): Der => tlv(TAG.set, ...items);
export const octetString = (b: Uint8Array): Der => tlv(TAG.octetString, b);
export const utf8 = (s: string): Der => tlv(TAG.utf8, new TextEncoder().encode(s));
export const boolean = (v: boolean): Der => tlv(TAG.boolean, Uint8Array.of(v ? 0xff : 0));
/** [n] EXPLICIT: a constructed context tag around `content`. */
export const explicit = (n: number, ...content: readonly Der[]): Der => tlv(0xa0 | n, ...content);
/** [n] IMPLICIT of a primitive type: a context tag over the raw bytes. */
export const implicit = (n: number, bytes: Uint8Array): Der => tlv(0x80 | n, bytes);

/** A non-negative INTEGER from big-endian bytes, in its minimal form. */
export function unsignedInteger(bytes: Uint8Array): Der {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const v = bytes.subarray(i);
  return tlv(TAG.integer, v[0] & 0x80 ? concat([Uint8Array.of(0), v]) : v);
}

export const smallInteger = (n: number): Der => unsignedInteger(Uint8Array.of(n));

/** A BIT STRING of whole bytes, or of `bits` named bits (bit 0 = the first byte's top bit). */
export function bitString(bytes: Uint8Array, unusedBits = 0): Der {
  return tlv(TAG.bitString, Uint8Array.of(unusedBits), bytes);
}

/** A named-bit list (keyUsage) in DER's form: trailing zero bits dropped. */
export function namedBits(bits: readonly number[]): Der {
  const top = Math.max(...bits);
  const bytes = new Uint8Array(Math.floor(top / 8) + 1);
  for (const b of bits) bytes[Math.floor(b / 8)] |= 0x80 >> (b % 8);
  return bitString(bytes, 7 - (top % 8));
}

export function oid(dotted: string): Der {
  const arcs = dotted.split(".").map(Number);
  const out: number[] = [40 * arcs[0] + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(TAG.oid, Uint8Array.from(out));
}

/** UTCTime until 2049, GeneralizedTime after, as RFC 5280 asks; seconds, Zulu. */
export function time(d: Date): Der {
  const iso = d.toISOString().replace(/[-:T]/g, "").slice(0, 14); // YYYYMMDDHHMMSS
  const year = d.getUTCFullYear();
  const text = year < 2050 ? `${iso.slice(2)}Z` : `${iso}Z`;
  return tlv(year < 2050 ? TAG.utcTime : TAG.generalizedTime, new TextEncoder().encode(text));
}

// ---- reading ---------------------------------------------------------------------------------

export interface Node {
  tag: number;
  /** The whole element, header included. */
  raw: Uint8Array;
  /** Its content. */
  content: Uint8Array;
}

export class DerError extends Error {}

/** The element at the start of `buf` (and where it ends). */
export function read(buf: Uint8Array, pos = 0): Node & { end: number } {
  if (pos + 2 > buf.length) throw new DerError("truncated element");
  const tag = buf[pos];
  if ((tag & 0x1f) === 0x1f) throw new DerError("multi-byte tags are not used here");
  let len = buf[pos + 1];
  let head = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError("indefinite or oversized length");
    if (pos + 2 + n > buf.length) throw new DerError("truncated length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + 2 + i];
    head += n;
  }
  const end = pos + head + len;
  if (end > buf.length) throw new DerError("element runs past its container");
  return { tag, raw: buf.subarray(pos, end), content: buf.subarray(pos + head, end), end };
}

/** The elements inside a constructed one. */
export function children(n: Node): Node[] {
  const out: Node[] = [];
  for (let pos = 0; pos < n.content.length;) {
    const c = read(n.content, pos);
    out.push(c);
    pos = c.end;
  }
  return out;
}

/** The one element `buf` holds (no trailing bytes), checked to be of `tag`. */
export function readWhole(buf: Uint8Array, tag: number, what: string): Node {
  const n = read(buf);
  if (n.end !== buf.length || n.tag !== tag) throw new DerError(`${what} is not a single DER element`);
  return n;
}

export function decodeOid(n: Node): string {
  if (n.tag !== TAG.oid || n.content.length === 0) throw new DerError("expected an OBJECT IDENTIFIER");
  const b = n.content;
  const arcs = [Math.floor(b[0] / 40), b[0] % 40];
  let v = 0;
  for (let i = 1; i < b.length; i++) {
    v = v * 128 + (b[i] & 0x7f);
    if (!(b[i] & 0x80)) {
      arcs.push(v);
      v = 0;
    }
  }
  return arcs.join(".");
}

/** A BIT STRING's bytes (only whole bytes are expected here). */
export function bitStringBytes(n: Node): Uint8Array {
  if (n.tag !== TAG.bitString || n.content.length < 1 || n.content[0] !== 0)
    throw new DerError("expected a BIT STRING of whole bytes");
  return n.content.subarray(1);
}

export const SEQUENCE = TAG.sequence;

export function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** The DER inside the first PEM block labelled `label`. */
export function unpem(label: string, text: string): Uint8Array {
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(text);
  if (!m) throw new DerError(`no ${label} PEM block`);
  return new Uint8Array(Buffer.from(m[1].replace(/\s+/g, ""), "base64"));
}
