// Entry data as the driver writes it: an 8-byte request id, then the user's command. The id
// lets the node that proposed a command hand the state machine's result back to the caller
// once the entry is applied, whichever leader committed it.
const ENVELOPE_HEADER = 8;

// Small envelopes are carved out of a shared slab: a separate ArrayBuffer per proposal costs an
// off-heap allocation and GC tracking each, several times the copy itself. A slab is never
// reused, so the views never alias; it is freed once every entry in it is gone.
const SLAB_BYTES = 64 * 1024;
const SLAB_MAX_ALLOC = 4096;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabUsed = 0;

function alloc(n: number): Uint8Array {
  if (n > SLAB_MAX_ALLOC) return new Uint8Array(n);
  if (slabUsed + n > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const out = new Uint8Array(slab, slabUsed, n);
  slabUsed = (slabUsed + n + 7) & ~7;
  return out;
}

export function wrapCommand(requestId: bigint, command: Uint8Array): Uint8Array {
  const out = alloc(ENVELOPE_HEADER + command.length);
  // Big-endian u64, written bytewise (no DataView allocated per call).
  const hi = Number(requestId >> 32n) >>> 0;
  const lo = Number(requestId & 0xffffffffn) >>> 0;
  out[0] = hi >>> 24;
  out[1] = hi >>> 16;
  out[2] = hi >>> 8;
  out[3] = hi;
  out[4] = lo >>> 24;
  out[5] = lo >>> 16;
  out[6] = lo >>> 8;
  out[7] = lo;
  out.set(command, ENVELOPE_HEADER);
  return out;
}

/** Empty data (a new leader's no-op entry) has no request. */
export function unwrapCommand(data: Uint8Array): { requestId: bigint; command: Uint8Array } | undefined {
  if (data.length < ENVELOPE_HEADER) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { requestId: view.getBigUint64(0), command: data.subarray(ENVELOPE_HEADER) };
}
