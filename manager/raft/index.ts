// Public API of the raft core. manager/raft is a standalone library: nothing here imports from
// the rest of manager/.
export * from "./types.js";
export { CompactedError, UnavailableError, type RaftStorage } from "./storage.js";
export { MemoryStorage, SnapshotOutOfDateError } from "./memory-storage.js";
export { RawNode, type RaftStatus, type ProgressStatus } from "./raw-node.js";
export { Raft, NONE, type RaftConfig } from "./raft.js";
export { ProposalDroppedError, ConfChangeError } from "./errors.js";
export { encodeConfChange, decodeConfChange } from "./conf-change.js";
export type { ProgressState } from "./progress.js";
export { newMessage } from "./util.js";
