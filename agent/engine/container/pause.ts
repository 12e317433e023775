// pause / unpause: the cgroup freezer through the OCI runtime. The engine calls these under the
// container's lock. A paused container still counts as up (ps lists it, "Up 3 seconds (Paused)").
import { conflict } from "../../../shared/errors.js";
import { pauseRuntime, resumeRuntime } from "../runtime/runtime-resources.js";
import type { EngineContext } from "./context.js";
import { containerEvent } from "./events.js";
import type { ContainerRecord } from "./types.js";

function refuseUnlessRunning(rec: ContainerRecord): void {
  const s = rec.State.Status;
  if (s === "restarting")
    throw conflict(`Container ${rec.Id} is restarting, wait until the container is running`);
  if (s !== "running" && s !== "paused") throw conflict(`Container ${rec.Id} is not running`);
}

async function setStatus(
  ctx: EngineContext,
  rec: ContainerRecord,
  status: "running" | "paused",
): Promise<void> {
  rec.State = { ...rec.State, Status: status };
  await ctx.store.save(rec);
}

export async function pauseContainer(ctx: EngineContext, rec: ContainerRecord): Promise<void> {
  refuseUnlessRunning(rec);
  if (rec.State.Status === "paused") throw conflict(`Container ${rec.Id} is already paused`);
  await pauseRuntime(ctx.runtime, rec.Id);
  await setStatus(ctx, rec, "paused");
  containerEvent(ctx, rec, "pause");
  ctx.log.info({ id: rec.Id }, "container paused");
}

export async function unpauseContainer(ctx: EngineContext, rec: ContainerRecord): Promise<void> {
  refuseUnlessRunning(rec);
  if (rec.State.Status !== "paused") throw conflict(`Container ${rec.Id} is not paused`);
  await resumeRuntime(ctx.runtime, rec.Id);
  await setStatus(ctx, rec, "running");
  containerEvent(ctx, rec, "unpause");
  ctx.log.info({ id: rec.Id }, "container unpaused");
}

/**
 * After a signal was sent to a paused container: thaw it so the signal is acted on (a frozen
 * process handles no SIGTERM, and on v1 not even SIGKILL), as dockerd does.
 */
export async function thawAfterSignal(ctx: EngineContext, rec: ContainerRecord): Promise<void> {
  if (rec.State.Status !== "paused") return;
  try {
    await resumeRuntime(ctx.runtime, rec.Id);
  } catch (e) {
    // Already gone (the signal killed it) is fine; the exit will be recorded as usual.
    ctx.log.warn({ id: rec.Id, err: String(e) }, "thawing a paused container after a signal failed");
    return;
  }
  if (rec.State.Status === "paused") await setStatus(ctx, rec, "running");
  containerEvent(ctx, rec, "unpause");
}
