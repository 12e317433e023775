import type { ContainerRecord } from "./types.js";

const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 60_000;
/** A run this long proves the container healthy again: the delay starts over (Docker's rule). */
const RESET_AFTER_MS = 10_000;

/** Whether the restart policy brings the container back after the exit just recorded. */
export function wantsRestart(rec: ContainerRecord): boolean {
  if (rec.HasBeenManuallyStopped) return false;
  const { Name, MaximumRetryCount } = rec.HostConfig.RestartPolicy;
  switch (Name) {
    case "always":
    case "unless-stopped":
      return true;
    case "on-failure":
      return rec.State.ExitCode !== 0 && (MaximumRetryCount === 0 || rec.RestartCount < MaximumRetryCount);
    default:
      return false;
  }
}

/**
 * dockerd's restore: whether a container found stopped when the daemon starts is started again.
 * Unlike an exit seen while running, a user's stop counts only for unless-stopped: Docker brings
 * `always` containers back at daemon start even after `docker stop`, and judges on-failure by
 * the last exit code and the restart count alone. Never-started containers stay as they are.
 */
export function restartsAtDaemonStart(rec: ContainerRecord): boolean {
  const started = rec.State.StartedAt && !rec.State.StartedAt.startsWith("0001-01-01");
  if (!started) return false;
  const { Name, MaximumRetryCount } = rec.HostConfig.RestartPolicy;
  switch (Name) {
    case "always":
      return true;
    case "unless-stopped":
      return !rec.HasBeenManuallyStopped;
    case "on-failure":
      return rec.State.ExitCode !== 0 && (MaximumRetryCount === 0 || rec.RestartCount < MaximumRetryCount);
    default:
      return false;
  }
}

/** Docker's delay before a policy restart: 100 ms, doubling to a minute, reset after a good run. */
export function nextBackoff(previousMs: number, ranForMs: number): number {
  if (previousMs === 0 || ranForMs >= RESET_AFTER_MS) return FIRST_DELAY_MS;
  return Math.min(previousMs * 2, MAX_DELAY_MS);
}
