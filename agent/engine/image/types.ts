// The image store's model. Shapes follow the OCI image spec; field names of the image config
// keep Docker's capitalisation because they are served as-is by the Engine API.

export interface ImageRuntimeConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  Labels?: Record<string, string> | null;
  ExposedPorts?: Record<string, object>;
  Volumes?: Record<string, object> | null;
  StopSignal?: string;
  /** HEALTHCHECK, as Docker stores it (durations in nanoseconds). */
  Healthcheck?: HealthConfig;
  /** SHELL: the shell used for the shell form of RUN, CMD and ENTRYPOINT. */
  Shell?: string[];
  OnBuild?: string[] | null;
  ArgsEscaped?: boolean;
}

/** Docker's container.HealthConfig. Test: ["NONE"], ["CMD", ...] or ["CMD-SHELL", "command"]. */
export interface HealthConfig {
  Test: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** The image config blob (application/vnd.oci.image.config.v1+json). */
export interface ImageConfigBlob {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  author?: string;
  comment?: string;
  docker_version?: string;
  config?: ImageRuntimeConfig;
  rootfs: { type: "layers"; diff_ids: string[] };
  history?: Array<{
    created?: string;
    created_by?: string;
    empty_layer?: boolean;
    comment?: string;
    author?: string;
  }>;
}

/** What the store keeps per image (one JSON file per image under <root>/images/). */
export interface ImageRecord {
  /** "sha256:<hex>" — the digest of the config blob, as Docker's image id. */
  id: string;
  /** Familiar references, e.g. "busybox:latest", "localhost:5000/app:1". */
  repoTags: string[];
  /** "name@sha256:<manifest digest>" for images that came from or went to a registry. */
  repoDigests: string[];
  /** The config blob, parsed. */
  config: ImageConfigBlob;
  /** Sum of the unpacked layer sizes, in bytes. */
  size: number;
  /** When the image entered this store (ISO 8601); `created` of the config is when it was built. */
  loadedAt: string;
  /** The image a build step started from (Docker's Parent). Untagged images with children are intermediate. */
  parent?: string;
}
