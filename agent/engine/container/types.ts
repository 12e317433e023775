// The container model. Config and HostConfig keep the Engine API's shapes (the subset shoal
// supports) so that `inspect` serves them unchanged and the docker CLI reads what it wrote.
import type { HostConfig, PortBinding } from "../../../shared/engine-api.js";
import type { HealthConfig } from "../image/types.js";

export interface ContainerConfig {
  Hostname: string;
  Domainname?: string;
  User: string;
  Env: string[];
  Cmd: string[] | null;
  Entrypoint: string[] | null;
  Image: string;
  WorkingDir: string;
  Labels: Record<string, string>;
  Tty: boolean;
  OpenStdin: boolean;
  /** Close the process's stdin when the first attached client ends its input (`docker run -i`). */
  StdinOnce?: boolean;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  StopSignal?: string;
  StopTimeout?: number;
  ExposedPorts?: Record<string, object>;
  Volumes?: Record<string, object> | null;
  /** --health-* or the image's HEALTHCHECK, merged as Docker merges them; Test ["NONE"] disables it. */
  Healthcheck?: HealthConfig;
  /** Deprecated in API 1.44 (the endpoint's MacAddress replaces it), still shown by inspect. */
  MacAddress?: string;
}

/** One entry of inspect's top-level "Mounts" (Docker's MountPoint), kept on the record. */
export interface MountPoint {
  Type: "bind" | "volume" | "tmpfs";
  /** Volume name; "" for binds and tmpfs. */
  Name?: string;
  /** Host path ("" for tmpfs). */
  Source: string;
  Destination: string;
  Driver?: string;
  /** The option text the user gave ("ro", "z", ...), "" when none. */
  Mode: string;
  RW: boolean;
  Propagation: string;
}

/** A container's place on one network (Docker's EndpointSettings, the subset shoal fills). */
export interface EndpointSettings {
  /** Asked for at create/connect. */
  IPAMConfig?: { IPv4Address?: string } | null;
  Aliases?: string[] | null;
  NetworkID: string;
  EndpointID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  MacAddress: string;
  /** Names DNS answers for this endpoint besides the container name (short id, aliases). */
  DNSNames?: string[] | null;
  /**
   * shoal's bookkeeping, not shown by inspect: the cluster's attachment holding this endpoint's
   * address on an attachable overlay network while the container runs (given back at exit).
   */
  AttachmentID?: string;
  /** --link entries a client sent for this endpoint; create merges them into HostConfig.Links. */
  Links?: string[] | null;
  /** shoal's bookkeeping: the MAC asked for with --mac-address, given at every start. */
  DesiredMacAddress?: string;
}

export interface NetworkSettings {
  /** Network name → endpoint; addresses are filled while the container runs. */
  Networks: Record<string, EndpointSettings>;
  /** "80/tcp" → the host bindings in force while running (null when exposed, not published). */
  Ports: Record<string, PortBinding[] | null>;
  /** Host side veth per network name while running, for cleanup. */
  HostInterfaces?: Record<string, string>;
  SandboxKey: string;
}

export type ContainerStatus =
  "created" | "running" | "paused" | "restarting" | "removing" | "exited" | "dead";

export interface ContainerState {
  Status: ContainerStatus;
  Pid: number;
  ExitCode: number;
  Error: string;
  OOMKilled: boolean;
  StartedAt: string;
  FinishedAt: string;
  /** Only for a container with a health check, once it has been started (Docker's shape). */
  Health?: HealthState;
}

/** One run of a health check (Docker's HealthcheckResult); times are RFC 3339. */
export interface HealthResult {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

export type HealthStatus = "starting" | "healthy" | "unhealthy";

/** `.State.Health`: status, consecutive failures, the last five results (oldest first). */
export interface HealthState {
  Status: HealthStatus;
  FailingStreak: number;
  Log: HealthResult[];
}

/** What the engine keeps per container, written atomically to <root>/containers/<id>/container.json. */
export interface ContainerRecord {
  Id: string;
  /** Without Docker's leading slash; the API adds it. */
  Name: string;
  Created: string;
  /** The resolved image id ("sha256:..."). */
  ImageId: string;
  Path: string;
  Args: string[];
  Config: ContainerConfig;
  HostConfig: HostConfig;
  State: ContainerState;
  RestartCount: number;
  /** k8s-file log written by conmon. */
  LogPath: string;
  /** Mount point of the root filesystem (overlayfs) while the container exists. */
  RootfsPath: string;
  /** OCI bundle folder (config.json). */
  BundlePath: string;
  /** Set when a user stops or kills the container, cleared by start: restart policies leave it stopped (as Docker's field of that name). */
  HasBeenManuallyStopped?: boolean;
  /** Volumes, binds and tmpfs mounts, resolved at create (inspect's "Mounts"). */
  Mounts?: MountPoint[];
  NetworkSettings?: NetworkSettings;
  /** shoal's bookkeeping, not shown by inspect: /etc/hosts lines of --link on the default bridge, set at each start. */
  LinkHosts?: string[];
}

/** One line of a container's log, as read back for `logs` and attach. */
export interface LogLine {
  stream: "stdout" | "stderr";
  /** RFC 3339 with nanoseconds, as conmon wrote it. */
  time: string;
  /** The line's bytes including its trailing newline when the line was complete. */
  data: Buffer;
}

export interface LogOptions {
  follow: boolean;
  stdout: boolean;
  stderr: boolean;
  /** Only lines at or after this Unix time in seconds (fractional allowed). */
  since?: number;
  until?: number;
  /** Only the last N lines; undefined = all. */
  tail?: number;
  signal?: AbortSignal;
}
