// The Raft library's data model, in the etcd-raft shape. Plain objects and numbers: the core
// does no I/O, so these cross no wire here; the transport converts them to proto messages.
// Indexes and terms are JavaScript numbers (safe to 2^53, far beyond any log we will keep).

export type NodeId = number;

export type EntryType = "normal" | "conf_change";

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  /** For normal entries: the state machine command (msgpackr-encoded by the user). Empty = no-op. */
  data: Uint8Array;
}

/** What must be durable before any message that depends on it is sent. */
export interface HardState {
  term: number;
  vote: NodeId; // 0 = none
  commit: number;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export type ConfChangeType = "add_node" | "add_learner" | "remove_node";

/** Carried, encoded, in the data of a conf_change entry. */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  /** Opaque to raft: e.g. the new member's address. */
  context?: Uint8Array;
}

export interface SnapshotMetadata {
  index: number;
  term: number;
  confState: ConfState;
}

export interface Snapshot {
  metadata: SnapshotMetadata;
  /** The state machine's serialised state. */
  data: Uint8Array;
}

export type MessageType =
  | "hup" // local: start an election
  | "beat" // local: leader sends heartbeats
  | "prop" // proposal (local or forwarded by a follower)
  | "app" // AppendEntries
  | "app_resp"
  | "vote"
  | "vote_resp"
  | "pre_vote"
  | "pre_vote_resp"
  | "snap" // InstallSnapshot
  | "snap_status" // local: report of a snapshot send (reject = failed)
  | "unreachable" // local: transport could not reach `from`
  | "heartbeat"
  | "heartbeat_resp"
  | "read_index" // ReadIndex request (local or forwarded)
  | "read_index_resp"
  | "transfer_leader" // local or forwarded: move leadership to `from`
  | "timeout_now" // leader tells the transferee to campaign at once
  | "check_quorum"; // local: leader checks it heard from a quorum

export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: number;
  /** app: term of the entry at `index`; vote: term of the candidate's last entry. */
  logTerm: number;
  /** app: index of the entry before `entries`; vote: candidate's last index; app_resp: follower's last index (or hint). */
  index: number;
  entries: Entry[];
  commit: number;
  snapshot?: Snapshot;
  reject: boolean;
  rejectHint: number;
  /** read_index: the request id the caller chose; vote: "transfer" marks a leader-transfer campaign. */
  context: Uint8Array;
}

export interface ReadState {
  /** The commit index a linearizable read may be served at once applied. */
  index: number;
  /** The request context given to readIndex(). */
  requestCtx: Uint8Array;
}

export type StateRole = "follower" | "pre_candidate" | "candidate" | "leader";

export interface SoftState {
  lead: NodeId;
  role: StateRole;
}

/**
 * Everything the core has for the driver at one moment. The driver must, in order:
 * 1. persist `hardState`, `entries` (and `snapshot`) durably (fsync),
 * 2. send `messages` (only now: they may depend on what was persisted),
 * 3. apply `snapshot`, then `committedEntries`, to the state machine,
 * 4. call `advance()`.
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  readStates: ReadState[];
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
}
