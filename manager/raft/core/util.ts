import type { Entry, Message } from "./types.js";

/** Limits given as NO_LIMIT never cut anything; etcd uses math.MaxUint64 for the same purpose. */
export const NO_LIMIT = Number.POSITIVE_INFINITY;

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

/**
 * Bytes an entry is assumed to take on the wire and in a Ready, beyond its payload: etcd sizes
 * entries by their protobuf encoding (term, index, type framing), so message-size limits are
 * never met by entries that are "free". A constant keeps the core independent of any encoding.
 */
export const ENTRY_OVERHEAD = 24;

function entrySize(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD;
}

/** etcd's payloadSize: the uncommitted-log and in-flight byte budgets count the data only. */
function payloadSize(e: Entry): number {
  return e.data.byteLength;
}

export function payloadsSize(ents: readonly Entry[]): number {
  let s = 0;
  for (const e of ents) s += payloadSize(e);
  return s;
}

/** Keeps the longest prefix within maxSize, but always at least one entry (etcd's limitSize). */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0]);
  let limit = 1;
  for (; limit < ents.length; limit++) {
    size += entrySize(ents[limit]);
    if (size > maxSize) break;
  }
  return limit === ents.length ? ents : ents.slice(0, limit);
}

export type MessageInit = Partial<Message> & Pick<Message, "type">;

/** A Message with every field not given set to its zero value. */
export function newMessage(m: MessageInit): Message {
  return {
    to: 0,
    from: 0,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: EMPTY_BYTES,
    ...m,
  };
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A Map key for a byte string (ReadIndex request contexts). */
export function bytesKey(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.byteLength; i++) s += b[i].toString(16).padStart(2, "0");
  return s;
}
