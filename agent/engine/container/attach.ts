// Attaching to a container's stdio through conmon's attach socket, and resizing its terminal.
// The docker CLI attaches before it starts a container (`run`, `start -a`), and conmon's socket
// exists only once a run began. So an attach to a container that is not running waits here; the
// run connects every waiting attach after conmon made the container and before `runtime start`
// lets its process run, and no first byte of output is lost.
import { conflict, errnoCode, messageOf } from "../../../shared/errors.js";
import { connectAttachSocket, resizeTerminal, type AttachSocket } from "../runtime/attach-socket.js";
import { attachSocketPath, containerPaths, type EngineContext } from "./context.js";
import { containerEvent } from "./events.js";
import type { ContainerRecord } from "./types.js";

interface Waiter {
  resolve: (socket: AttachSocket) => void;
  reject: (e: unknown) => void;
}

class AttachHub {
  private readonly waiting = new Map<string, Set<Waiter>>();
  /** Containers whose current run has its attach socket up (from conmon's create to the exit). */
  private readonly ready = new Set<string>();

  isReady(id: string): boolean {
    return this.ready.has(id);
  }

  /** A run's socket is up and its process has not run yet: connect whoever waits. */
  async runReady(id: string, path: string): Promise<void> {
    this.ready.add(id);
    const set = this.waiting.get(id);
    if (!set) return;
    this.waiting.delete(id);
    await Promise.all(
      [...set].map(async (w) => {
        try {
          w.resolve(await connectAttachSocket(path));
        } catch (e) {
          w.reject(e);
        }
      }),
    );
  }

  runEnded(id: string): void {
    this.ready.delete(id);
  }

  /** Resolves at the container's next run; rejects when the signal aborts. */
  wait(id: string, signal: AbortSignal): Promise<AttachSocket> {
    return new Promise((resolve, reject) => {
      const set = this.waiting.get(id) ?? new Set<Waiter>();
      this.waiting.set(id, set);
      const onAbort = (): void => {
        set.delete(w);
        if (set.size === 0 && this.waiting.get(id) === set) this.waiting.delete(id);
        reject(signal.reason ?? new DOMException("The operation was aborted", "AbortError"));
      };
      const w: Waiter = {
        resolve: (s) => {
          signal.removeEventListener("abort", onAbort);
          // The client left while we connected: let go of the socket at once.
          if (signal.aborted) {
            s.close();
            reject(signal.reason);
          } else resolve(s);
        },
        reject: (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      set.add(w);
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}

const hubs = new WeakMap<EngineContext, AttachHub>();

function hubOf(ctx: EngineContext): AttachHub {
  let hub = hubs.get(ctx);
  if (!hub) {
    hub = new AttachHub();
    hubs.set(ctx, hub);
  }
  return hub;
}

/** Called by a run between conmon's create and `runtime start`. */
export function stdioReady(ctx: EngineContext, id: string): Promise<void> {
  return hubOf(ctx).runReady(id, attachSocketPath(ctx, id));
}

/** Called when a run's leftovers are cleaned up: its socket is gone. */
export function stdioGone(ctx: EngineContext, id: string): void {
  hubOf(ctx).runEnded(id);
}

export interface PendingAttach {
  /** True when the container runs now: `socket` settles at once, so its error can still be an HTTP answer. */
  immediate: boolean;
  socket: Promise<AttachSocket>;
}

/** dockerd's refusals: a paused or restarting container cannot be attached to. */
function checkAttachable(rec: ContainerRecord, ref: string): void {
  if (rec.State.Status === "paused")
    throw conflict(`container ${ref} is paused, unpause the container before attach`);
  if (rec.State.Status === "restarting")
    throw conflict(`container ${ref} is restarting, wait until the container is running`);
}

/**
 * Attach to the container's stdio: now when it runs, else at its next start (what `docker start
 * -a` and `docker run` need; dockerd waits the same way).
 */
export function attachStdio(
  ctx: EngineContext,
  rec: ContainerRecord,
  ref: string,
  signal: AbortSignal,
): PendingAttach {
  checkAttachable(rec, ref);
  containerEvent(ctx, rec, "attach");
  const hub = hubOf(ctx);
  if (hub.isReady(rec.Id) || rec.State.Status === "running")
    return { immediate: true, socket: connectAttachSocket(attachSocketPath(ctx, rec.Id)) };
  return { immediate: false, socket: hub.wait(rec.Id, signal) };
}

/**
 * Resize a running container's terminal through conmon's ctl fifo. Without a TTY there is
 * nothing to resize and, as dockerd (containerd ignores it), the call succeeds.
 */
export async function resizeContainer(
  ctx: EngineContext,
  rec: ContainerRecord,
  ref: string,
  height: number,
  width: number,
): Promise<void> {
  if (rec.State.Status !== "running" && rec.State.Status !== "paused")
    throw conflict(`container ${ref} is not running: start it before resizing its terminal`);
  if (!rec.Config.Tty) return;
  try {
    await resizeTerminal(containerPaths(ctx, rec.Id).bundle, height, width);
    containerEvent(ctx, rec, "resize", { height: `${height}`, width: `${width}` });
  } catch (e) {
    // No reader on the fifo (ENXIO) or no fifo: conmon is gone, the container just ended.
    if (errnoCode(e) === "ENXIO" || errnoCode(e) === "ENOENT")
      throw conflict(`container ${ref} is not running: start it before resizing its terminal`);
    throw conflict(`cannot resize the terminal of container ${ref}: ${messageOf(e)}`);
  }
}
