// GET /events: `docker events`. The kept events between since and until come first, then (unless
// until is already past) every new one as it happens, one JSON object per line, until `until`
// or the client goes. Replay and follow are taken in one step (EventLog.replayAndFollow), so no
// event is shown twice or skipped. A client that stops reading is cut off once its unread
// output passes a bound, rather than making the daemon hold an ever-growing buffer for it.
import type { FastifyPluginAsync } from "fastify";
import { invalid } from "../../shared/errors.js";
import { parseEventTime } from "../../shared/event-time.js";
import { qFilters, qString, type Query } from "../../shared/query.js";
import { eventMatcher } from "../../agent/engine/event-filter.js";
import type { EngineEvent, EventLog } from "../../agent/engine/events.js";
import { startStream } from "../stream/response.js";

/** Unread bytes a slow client may have queued before it is cut off. */
const MAX_UNREAD_BYTES = 4 * 1024 * 1024;

/**
 * An event as dockerd's API 1.44 writes it: container and image events also carry the legacy
 * `status`, `id` and `from` fields that `docker events --format '{{.Status}}'` templates read.
 */
export function toDockerEvent(e: EngineEvent): Record<string, unknown> {
  const legacy =
    e.Type === "container"
      ? { status: e.Action, id: e.Actor.ID, from: e.Actor.Attributes.image ?? "" }
      : e.Type === "image"
        ? { status: e.Action, id: e.Actor.ID }
        : {};
  return {
    ...legacy,
    Type: e.Type,
    Action: e.Action,
    Actor: { ID: e.Actor.ID, Attributes: e.Actor.Attributes },
    scope: e.scope,
    time: e.time,
    timeNano: e.timeNano,
  };
}

/** The since/until window of a request, in Unix nanoseconds; a bad value is a 400. */
export function eventWindow(q: Query, nowMs: number): { sinceNano?: number; untilNano?: number } {
  const read = (key: "since" | "until"): number | undefined => {
    const v = qString(q, key);
    return v === undefined || v === "" ? undefined : parseEventTime(v, nowMs, key);
  };
  const sinceNano = read("since");
  const untilNano = read("until");
  if (sinceNano !== undefined && untilNano !== undefined && untilNano < sinceNano)
    throw invalid(
      `\`since\` time (${qString(q, "since")}) cannot be after \`until\` time (${qString(q, "until")})`,
    );
  return { sinceNano, untilNano };
}

export const eventRoutes: FastifyPluginAsync<{ events: EventLog }> = async (app, deps) => {
  app.get<{ Querystring: Query }>("/events", async (request, reply) => {
    const nowMs = Date.now();
    const window = eventWindow(request.query, nowMs);
    const include = eventMatcher(qFilters(request.query));
    const onlyPast = window.untilNano !== undefined && window.untilNano < nowMs * 1e6;

    const res = startStream(reply, "application/json");
    let open = true;
    let timer: NodeJS.Timeout | undefined;
    const write = (e: EngineEvent): void => {
      if (!open) return;
      if (window.untilNano !== undefined && e.timeNano > window.untilNano) return finish();
      res.write(`${JSON.stringify(toDockerEvent(e))}\n`);
      if (res.writableLength > MAX_UNREAD_BYTES) {
        request.log.warn(
          { unread: res.writableLength },
          "an events client stopped reading; closing its stream",
        );
        finish();
      }
    };
    const { replay, stop } = deps.events.replayAndFollow(window, include, write);
    function finish(): void {
      if (!open) return;
      open = false;
      stop();
      if (timer) clearTimeout(timer);
      res.end();
    }
    res.once("close", finish);
    for (const e of replay) write(e);
    if (onlyPast) return finish();
    if (window.untilNano !== undefined)
      timer = setTimeout(finish, Math.max(0, window.untilNano / 1e6 - Date.now()) + 1);
  });
};
