import * as zlib from "node:zlib";

// CRC-32 (IEEE, the zlib polynomial). Node >= 20.15 has it natively; older 20.x falls back to a
// table with the same polynomial so that files stay readable across Node versions.

type Crc32 = (data: Uint8Array, seed?: number) => number;

const native = (zlib as { crc32?: Crc32 }).crc32;

let table: Uint32Array | undefined;

function tableCrc32(data: Uint8Array, seed = 0): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = (seed ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** CRC-32 of `data`, continuing from `seed` (the CRC of what came before, 0 to start). */
export const crc32: Crc32 = native ? (data, seed = 0) => native(data, seed) >>> 0 : tableCrc32;

/** Exposed for the test that pins the fallback to the native result. */
export const crc32Fallback: Crc32 = tableCrc32;
