// The resource side of the container engine as the API layer uses it (pause, update, stats, top).
import type { ContainerStats } from "../runtime/stats-types.js";
import type { StatsOptions } from "./stats.js";
import type { TopResult } from "./top.js";
import type { UpdateRequest } from "./update.js";

export type { ContainerStats, StatsOptions, TopResult, UpdateRequest };

export interface ContainerResourcesApi {
  /** Freeze the container. Throws conflict when it is not running or already paused. */
  pause(ref: string): Promise<void>;
  /** Throws conflict when it is not paused. */
  unpause(ref: string): Promise<void>;
  /** Docker's UpdateConfig (limits + RestartPolicy); throws invalid naming a field it cannot change. */
  update(ref: string, body: UpdateRequest): Promise<{ Warnings: string[] }>;
  /** Samples in Docker's stats shape; ends when the signal aborts or the container is removed. */
  stats(ref: string, options: StatsOptions): AsyncIterable<ContainerStats>;
  /** `ps psArgs` (default -ef) filtered to the container's processes. Throws conflict when not running. */
  top(ref: string, psArgs: string): Promise<TopResult>;
}
