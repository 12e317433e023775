// Warns when the daemon's event loop was held for long. A loop held past the gRPC keepalive
// (2 s on Raft links) drops every session and Raft stream of this node at once, which the
// managers see as a node gone down; this log line tells that apart from a network fault.
import type { Logger } from "pino";

const CHECK_MS = 250;
const WARN_MS = 1000;

/** Starts the watch; it never keeps the process alive. */
export function watchEventLoop(log: Logger): void {
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    const held = now - last - CHECK_MS;
    last = now;
    if (held >= WARN_MS)
      log.warn({ heldMs: Math.round(held) }, "the event loop was held: timers, heartbeats and I/O waited");
  }, CHECK_MS).unref();
}
