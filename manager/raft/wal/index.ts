export {
  Wal,
  WalCorruptError,
  WalFailedError,
  DEFAULT_SEGMENT_BYTES,
  type WalOptions,
  type WalState,
  type WalRepair,
} from "./wal.js";
export type { SnapshotMarker } from "./record.js";
