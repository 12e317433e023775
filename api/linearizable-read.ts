// Linearizable cluster reads: before a manager answers a GET of the cluster routes from its own
// store, it confirms through Raft (a ReadIndex barrier, on the leader and on followers alike)
// that its store holds everything committed when the request arrived. So a read made after a
// write was acknowledged anywhere in the cluster sees it, and a manager cut off from the
// majority says so with a 503 instead of serving data frozen at the cut. A caller that prefers a
// possibly stale answer to none asks for it by name (X-Shoal-Stale-Read: 1; the CLI sends it
// when SHOAL_STALE_READ=1). Registered in the cluster routes' scope (api/cluster.ts) after the
// forwarding hook: a request sent on to a manager is confirmed by that manager.
import type { onRequestAsyncHookHandler } from "fastify";
import { messageOf, unavailable } from "../shared/errors.js";

export const STALE_READ_HEADER = "x-shoal-stale-read";

/** How long a read waits for the confirmation before it answers 503. */
const CONFIRM_TIMEOUT_MS = 3_000;

export interface ReadBarrierHost {
  /**
   * Resolves once this manager's store has applied everything the cluster had committed when it
   * was called; rejects when that cannot be confirmed within `timeoutMs` (no leader reachable,
   * the Raft node stopped). undefined when this node is not a manager: nothing is served here.
   */
  confirmCurrent(timeoutMs: number): Promise<void> | undefined;
}

/** Streams that read task output, not cluster state: they are served as they are. */
const NOT_STATE = /\/logs$/;

export function linearizableRead(
  host: ReadBarrierHost,
  o: { timeoutMs?: number } = {},
): onRequestAsyncHookHandler {
  return async (request) => {
    if (request.method !== "GET" && request.method !== "HEAD") return;
    if (request.headers[STALE_READ_HEADER] === "1") return;
    if (NOT_STATE.test(request.url.split("?")[0])) return;
    const confirmed = host.confirmCurrent(o.timeoutMs ?? CONFIRM_TIMEOUT_MS);
    if (!confirmed) return;
    try {
      await confirmed;
    } catch (e) {
      throw unavailable(
        `no leader is reachable: this manager cannot confirm its data is current; retry, or add header X-Shoal-Stale-Read: 1 for a possibly stale answer (${messageOf(e)})`,
      );
    }
  };
}
