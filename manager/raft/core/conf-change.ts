import type { ConfChange, ConfChangeType } from "./types.js";

// Raft owns the encoding of conf_change entry data: a version byte, a type byte, the node id as
// a float64 (ids are JavaScript numbers, safe to 2^53), then the opaque context. Fixed layout, so
// every member decodes an entry the same way forever.
const VERSION = 1;
const HEADER = 10;
const TYPES: readonly ConfChangeType[] = ["add_node", "add_learner", "remove_node"];

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const ctx = cc.context ?? new Uint8Array(0);
  const out = new Uint8Array(HEADER + ctx.byteLength);
  const dv = new DataView(out.buffer);
  dv.setUint8(0, VERSION);
  const t = TYPES.indexOf(cc.type);
  if (t < 0) throw new Error(`unknown conf change type ${String(cc.type)}`);
  dv.setUint8(1, t);
  dv.setFloat64(2, cc.nodeId);
  out.set(ctx, HEADER);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.byteLength < HEADER) throw new Error(`conf change too short (${data.byteLength} bytes)`);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const version = dv.getUint8(0);
  if (version !== VERSION) throw new Error(`unknown conf change encoding version ${version}`);
  const type = TYPES[dv.getUint8(1)];
  if (type === undefined) throw new Error(`unknown conf change type ${dv.getUint8(1)}`);
  const nodeId = dv.getFloat64(2);
  const cc: ConfChange = { type, nodeId };
  if (data.byteLength > HEADER) cc.context = data.slice(HEADER);
  return cc;
}
