import type { ContainerConfig, ContainerRecord, EndpointSettings, LogLine, LogOptions } from "./types.js";
import type { HostConfig } from "../../../shared/engine-api.js";
import type { ContainerResourcesApi } from "./resources-api.js";
import type { PendingAttach } from "./attach.js";
import type { ExecEngineApi } from "../exec/api.js";
import type { ContainerFiles } from "../files/files.js";

export interface CreateContainerRequest {
  /** Optional; validated against Docker's rule /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/ (a leading "/" is allowed and dropped). */
  name?: string;
  config: Partial<ContainerConfig> & { Image: string };
  hostConfig: Partial<HostConfig>;
  /** The Engine API's NetworkingConfig: networks to join at start, with aliases and a fixed --ip. */
  networkingConfig?: { EndpointsConfig?: Record<string, Partial<EndpointSettings>> | null } | null;
}

export type WaitCondition = "not-running" | "next-exit" | "removed";

export interface ListContainersOptions {
  all: boolean;
  /** Docker's filters: id, name, label (key or key=value), status, exited, ancestor, before, since. */
  filters?: Record<string, string[]>;
  limit?: number;
}

/**
 * The container engine as the API layer uses it. `ref` is an id, a unique id prefix or a name
 * (with or without a leading "/"). Every method throws ShoalError: not_found "No such container: <ref>",
 * conflict for name clashes or a running container removed without force, invalid for bad settings.
 */
export interface ContainerEngineApi extends ContainerResourcesApi {
  /** Recover every container from disk after a daemon restart (running ones keep running). */
  recover(): Promise<void>;
  create(request: CreateContainerRequest): Promise<{ Id: string; Warnings: string[] }>;
  /** Throws not_modified when already running. */
  start(ref: string): Promise<void>;
  /** Sends the stop signal, then SIGKILL after timeoutSec (default: the container's StopTimeout or 10). Throws not_modified when not running. */
  stop(ref: string, options?: { signal?: string; timeoutSec?: number }): Promise<void>;
  kill(ref: string, signal?: string): Promise<void>;
  restart(ref: string, options?: { signal?: string; timeoutSec?: number }): Promise<void>;
  remove(ref: string, options: { force: boolean; volumes?: boolean }): Promise<void>;
  list(options: ListContainersOptions): ContainerRecord[];
  get(ref: string): ContainerRecord;
  /** Resolves when the condition holds, with the exit code. Rejects with an AbortError if the signal aborts. */
  wait(
    ref: string,
    condition: WaitCondition,
    signal?: AbortSignal,
  ): Promise<{ StatusCode: number; Error?: { Message: string } }>;
  logs(ref: string, options: LogOptions): AsyncIterable<LogLine>;
  /** The container's stdio through conmon's attach socket: now, or at its next start (409 paused/restarting). */
  attachStdio(ref: string, signal: AbortSignal): PendingAttach;
  /** Resize its terminal (409 when not running). */
  resize(ref: string, height: number, width: number): Promise<void>;
  rename(ref: string, newName: string): Promise<void>;
  prune(filters?: Record<string, string[]>): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }>;
  /** Join a network (a running container at once, a stopped one at its next start). */
  connectNetwork(ref: string, networkRef: string, request?: Partial<EndpointSettings>): Promise<void>;
  disconnectNetwork(ref: string, networkRef: string): Promise<void>;
  /** Ids of the containers (any state) made from an image; the image store asks before removing. */
  usersOfImage(imageId: string): string[];
  /** `docker exec` sessions in this engine's containers. */
  readonly exec: ExecEngineApi;
  /** cp's archive API, export, diff, commit and sizes; absent in test fakes. */
  readonly files?: ContainerFiles;
  /** Stop watching processes; containers keep running. */
  close(): Promise<void>;
}
