// Named local volumes: the record kept per volume and the store as the API layer and the
// container engine use it. Shapes follow the Engine API's Volume object.

/** Docker's label on volumes made for a container without a name (`-v /path`, image VOLUMEs). */
export const ANONYMOUS_LABEL = "com.docker.volume.anonymous";

/** What the store keeps per volume, written atomically to <volumesRoot>/<name>/volume.json. */
export interface VolumeRecord {
  Name: string;
  Driver: "local";
  /** Host folder the volume's data lives in (<volumesRoot>/<name>/_data). */
  Mountpoint: string;
  /** RFC 3339, seconds precision, as Docker shows it. */
  CreatedAt: string;
  /** null when made implicitly by a container (Docker shows null there, {} after `volume create`). */
  Labels: Record<string, string> | null;
  Options: Record<string, string> | null;
  Scope: "local";
  /** Made for a container without a name: `rm -v` and a plain `volume prune` remove it. */
  Anonymous: boolean;
}

export interface CreateVolumeRequest {
  /** Empty or absent: an anonymous volume with a random 64-hex name. */
  Name?: string;
  Driver?: string;
  DriverOpts?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
  /** Made by a container create rather than asked for by name. */
  Anonymous?: boolean;
}

/** A container using a volume, as the container engine reports it. */
export interface VolumeUser {
  id: string;
  name: string;
}

/** Who uses a volume (containers in any state); the engine answers from its container store. */
export type VolumeUsers = (volumeName: string) => VolumeUser[];

export interface VolumePruneResult {
  VolumesDeleted: string[];
  SpaceReclaimed: number;
}

/**
 * The volume store. Every method throws ShoalError: invalid (bad name, driver or option),
 * not_found "No such volume: <name>", conflict when a volume in use would be removed.
 */
export interface VolumeStoreApi {
  /**
   * Create a volume, or return the existing one of that name (Docker's create is idempotent).
   * `holder` marks the volume as used by a container being created until `release`, so a
   * concurrent remove or prune cannot take it away before the container is saved.
   */
  create(request: CreateVolumeRequest, holder?: string): Promise<{ volume: VolumeRecord; created: boolean }>;
  /** Drop every hold `holder` has. */
  release(holder: string): void;
  /** Docker's filters: dangling=true|false, name (substring), label (key or key=value), driver. */
  list(filters?: Record<string, string[]>): VolumeRecord[];
  inspect(name: string): VolumeRecord;
  /** Refused (409) while any container uses it; `force` only makes a missing volume not an error. */
  remove(name: string, options?: { force?: boolean }): Promise<void>;
  /** Unused anonymous volumes; with filter all=true also named ones; label filters as list. */
  prune(filters?: Record<string, string[]>): Promise<VolumePruneResult>;
  /**
   * Docker's copy-up: when the volume is empty, fill it with the content of `source` (a folder
   * of the container's image), keeping ownership, modes and links. No-op when not empty.
   */
  fillIfEmpty(name: string, source: string): Promise<void>;
}
