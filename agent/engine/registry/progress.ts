// Docker's JSON-lines progress messages for pull and push, and a per-layer throttle so a fast
// transfer does not flood the stream (at most one update per layer every 100 ms).
import { shortId } from "../../../shared/ids.js";

export interface ProgressMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  aux?: unknown;
  error?: string;
  errorDetail?: { message: string };
}

export type Emit = (m: ProgressMessage) => void;

/** The id docker shows for a layer: the first 12 hex digits of a digest. */
export const layerId = (digest: string): string => shortId(digest);

export function statusLine(emit: Emit, id: string, status: string): void {
  emit({ status, progressDetail: {}, id });
}

/** Report bytes of a transfer: the first and last call always go out, others every 100 ms. */
export function byteProgress(
  emit: Emit,
  id: string,
  status: string,
  total: number | undefined,
  intervalMs = 100,
): (current: number, force?: boolean) => void {
  let last = 0;
  return (current, force = false) => {
    const now = Date.now();
    if (!force && now - last < intervalMs && current !== total) return;
    last = now;
    emit({ status, progressDetail: total !== undefined ? { current, total } : { current }, id });
  };
}
