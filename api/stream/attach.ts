// Attach without stdin: the output of the container's next (or current) run, read from its log.
// The docker CLI attaches before it starts a container, so we wait for that start, then follow
// the log from the moment of attaching until the container stops.
import type { ContainerEngineApi } from "../../agent/engine/container/api.js";
import type { LogLine } from "../../agent/engine/container/types.js";
import { setTimeout as sleep } from "node:timers/promises";

export async function* followAttach(
  engine: ContainerEngineApi,
  id: string,
  options: { stdout: boolean; stderr: boolean; replay: boolean; signal: AbortSignal },
): AsyncIterable<LogLine> {
  const attachedAt = Date.now() / 1000;
  const before = engine.get(id);
  if (before.State.Status !== "running") {
    // Wait until the container has been started since we attached (its StartedAt moves).
    for (;;) {
      if (options.signal.aborted) return;
      const now = engine.get(id);
      if (now.State.StartedAt !== before.State.StartedAt && now.State.StartedAt !== "") break;
      if (now.State.Status === "running") break;
      await sleep(5, undefined, { signal: options.signal }).catch(() => undefined);
    }
  }
  yield* engine.logs(id, {
    follow: true,
    stdout: options.stdout,
    stderr: options.stderr,
    since: options.replay ? undefined : attachedAt,
    signal: options.signal,
  });
}
