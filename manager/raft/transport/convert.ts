// Conversions between the core's plain objects (../core/types.ts) and the wire messages generated from
// proto/raft.proto. Both directions are exact: every field round-trips, including zeros and empty
// byte strings, so the core sees what its peer's core produced.
import * as pb from "../../../proto/gen/raft.js";
import type {
  ConfChange,
  ConfChangeType,
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  Snapshot,
  SnapshotMetadata,
} from "../core/types.js";

/** A wire message this build cannot represent (an unknown enum value from a newer peer, say). */
export class ProtoConversionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtoConversionError";
  }
}

const messageTypeToPb: Record<MessageType, pb.MessageType> = {
  hup: pb.MessageType.MESSAGE_TYPE_HUP,
  beat: pb.MessageType.MESSAGE_TYPE_BEAT,
  prop: pb.MessageType.MESSAGE_TYPE_PROP,
  app: pb.MessageType.MESSAGE_TYPE_APP,
  app_resp: pb.MessageType.MESSAGE_TYPE_APP_RESP,
  vote: pb.MessageType.MESSAGE_TYPE_VOTE,
  vote_resp: pb.MessageType.MESSAGE_TYPE_VOTE_RESP,
  pre_vote: pb.MessageType.MESSAGE_TYPE_PRE_VOTE,
  pre_vote_resp: pb.MessageType.MESSAGE_TYPE_PRE_VOTE_RESP,
  snap: pb.MessageType.MESSAGE_TYPE_SNAP,
  snap_status: pb.MessageType.MESSAGE_TYPE_SNAP_STATUS,
  unreachable: pb.MessageType.MESSAGE_TYPE_UNREACHABLE,
  heartbeat: pb.MessageType.MESSAGE_TYPE_HEARTBEAT,
  heartbeat_resp: pb.MessageType.MESSAGE_TYPE_HEARTBEAT_RESP,
  read_index: pb.MessageType.MESSAGE_TYPE_READ_INDEX,
  read_index_resp: pb.MessageType.MESSAGE_TYPE_READ_INDEX_RESP,
  transfer_leader: pb.MessageType.MESSAGE_TYPE_TRANSFER_LEADER,
  timeout_now: pb.MessageType.MESSAGE_TYPE_TIMEOUT_NOW,
  check_quorum: pb.MessageType.MESSAGE_TYPE_CHECK_QUORUM,
};
const messageTypeFromPb = invert(messageTypeToPb);

const entryTypeToPb: Record<EntryType, pb.EntryType> = {
  normal: pb.EntryType.ENTRY_TYPE_NORMAL,
  conf_change: pb.EntryType.ENTRY_TYPE_CONF_CHANGE,
};
const entryTypeFromPb = invert(entryTypeToPb);

const confChangeTypeToPb: Record<ConfChangeType, pb.ConfChangeType> = {
  add_node: pb.ConfChangeType.CONF_CHANGE_TYPE_ADD_NODE,
  add_learner: pb.ConfChangeType.CONF_CHANGE_TYPE_ADD_LEARNER,
  remove_node: pb.ConfChangeType.CONF_CHANGE_TYPE_REMOVE_NODE,
};
const confChangeTypeFromPb = invert(confChangeTypeToPb);

function invert<K extends string>(table: Record<K, number>): Map<number, K> {
  const out = new Map<number, K>();
  for (const k of Object.keys(table) as K[]) out.set(table[k], k);
  return out;
}

function toEnum<K extends string>(table: Record<K, number>, value: K, what: string): number {
  const n = (table as Record<string, number | undefined>)[value];
  if (n === undefined) throw new ProtoConversionError(`unknown ${what} ${String(value)}`);
  return n;
}

function lookup<K>(table: Map<number, K>, value: number, what: string): K {
  const k = table.get(value);
  if (k === undefined) throw new ProtoConversionError(`unknown ${what} ${value}`);
  return k;
}

// A bad number would otherwise fail inside grpc-js's serializer and take the whole stream down
// with it, losing every message queued behind it.
function u64(n: number, field: string): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new ProtoConversionError(`${field} is not a uint64: ${n}`);
  return n;
}

// Views, not copies: an app message can carry megabytes of entries and is converted on every send.
function toBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

// Plain Uint8Array so that what the core receives is indistinguishable from what it sent.
function fromBuffer(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function entryToProto(e: Entry): pb.Entry {
  return {
    term: u64(e.term, "entry term"),
    index: u64(e.index, "entry index"),
    type: toEnum(entryTypeToPb, e.type, "entry type"),
    data: toBuffer(e.data),
  };
}

function entryFromProto(e: pb.Entry): Entry {
  return {
    term: e.term,
    index: e.index,
    type: lookup(entryTypeFromPb, e.type, "entry type"),
    data: fromBuffer(e.data),
  };
}

export function hardStateToProto(h: HardState): pb.HardState {
  return { term: u64(h.term, "term"), vote: u64(h.vote, "vote"), commit: u64(h.commit, "commit") };
}

export function hardStateFromProto(h: pb.HardState): HardState {
  return { term: h.term, vote: h.vote, commit: h.commit };
}

function confStateToProto(c: ConfState): pb.ConfState {
  return { voters: c.voters.map((v) => u64(v, "voter")), learners: c.learners.map((l) => u64(l, "learner")) };
}

function confStateFromProto(c: pb.ConfState | undefined): ConfState {
  return { voters: c ? [...c.voters] : [], learners: c ? [...c.learners] : [] };
}

export function confChangeToProto(c: ConfChange): pb.ConfChange {
  const out: pb.ConfChange = {
    type: toEnum(confChangeTypeToPb, c.type, "conf change type"),
    nodeId: u64(c.nodeId, "node id"),
  };
  if (c.context !== undefined) out.context = toBuffer(c.context);
  return out;
}

export function confChangeFromProto(c: pb.ConfChange): ConfChange {
  const out: ConfChange = {
    type: lookup(confChangeTypeFromPb, c.type, "conf change type"),
    nodeId: c.nodeId,
  };
  if (c.context !== undefined) out.context = fromBuffer(c.context);
  return out;
}

function snapshotMetadataToProto(m: SnapshotMetadata): pb.SnapshotMetadata {
  return {
    index: u64(m.index, "snapshot index"),
    term: u64(m.term, "snapshot term"),
    confState: confStateToProto(m.confState),
  };
}

function snapshotMetadataFromProto(m: pb.SnapshotMetadata | undefined): SnapshotMetadata {
  return { index: m?.index ?? 0, term: m?.term ?? 0, confState: confStateFromProto(m?.confState) };
}

export function snapshotToProto(s: Snapshot): pb.Snapshot {
  return { metadata: snapshotMetadataToProto(s.metadata), data: toBuffer(s.data) };
}

export function snapshotFromProto(s: pb.Snapshot): Snapshot {
  return { metadata: snapshotMetadataFromProto(s.metadata), data: fromBuffer(s.data) };
}

/** Throws ProtoConversionError for a number that is not a uint64 (negative, fractional, unsafe). */
export function messageToProto(m: Message): pb.RaftMessage {
  const out: pb.RaftMessage = {
    type: toEnum(messageTypeToPb, m.type, "message type"),
    to: u64(m.to, "to"),
    from: u64(m.from, "from"),
    term: u64(m.term, "term"),
    logTerm: u64(m.logTerm, "logTerm"),
    index: u64(m.index, "index"),
    entries: m.entries.map(entryToProto),
    commit: u64(m.commit, "commit"),
    reject: m.reject,
    rejectHint: u64(m.rejectHint, "rejectHint"),
    context: toBuffer(m.context),
  };
  if (m.snapshot !== undefined) out.snapshot = snapshotToProto(m.snapshot);
  return out;
}

/** Throws ProtoConversionError for a message type or entry type this build does not know. */
export function messageFromProto(m: pb.RaftMessage): Message {
  const out: Message = {
    type: lookup(messageTypeFromPb, m.type, "message type"),
    to: m.to,
    from: m.from,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    entries: m.entries.map(entryFromProto),
    commit: m.commit,
    reject: m.reject,
    rejectHint: m.rejectHint,
    context: fromBuffer(m.context),
  };
  if (m.snapshot !== undefined) out.snapshot = snapshotFromProto(m.snapshot);
  return out;
}
