export {
  Snapshotter,
  SnapshotCorruptError,
  DEFAULT_SNAPSHOTS_KEPT,
  snapshotFileName,
  type SnapshotterOptions,
} from "./snapshotter.js";
