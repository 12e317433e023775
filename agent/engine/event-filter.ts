// `docker events --filter`: which events a client sees. The rules are dockerd's
// (daemon/events/filter.go): keys are ANDed, values of one key ORed; container, network, volume,
// daemon (and the swarm kinds) match an event's actor id or its `name` attribute, exactly or as a
// prefix; image matches the image id or name with or without its tag; label matches the actor's
// attributes. A key dockerd does not know is refused, never ignored.
import { invalid } from "../../shared/errors.js";
import { familiarName, parseReference } from "../../shared/reference.js";
import type { EngineEvent, EventType } from "./events.js";

const EVENT_TYPES: readonly EventType[] = [
  "container",
  "image",
  "network",
  "volume",
  "daemon",
  "plugin",
  "builder",
  "node",
  "service",
  "secret",
  "config",
];

/** Filters matched against the actor's id or name (dockerd's fuzzyMatchName). */
const NAMED_KEYS = [
  "container",
  "network",
  "volume",
  "daemon",
  "plugin",
  "node",
  "service",
  "secret",
  "config",
];
const KNOWN_KEYS = new Set([...NAMED_KEYS, "type", "event", "image", "label", "scope"]);

export type EventFilters = Record<string, string[]>;

/** Check `filters` (the API's parsed `filters` parameter); a bad key or value is a 400 naming it. */
export function validateEventFilters(filters: EventFilters): void {
  const unknown = Object.keys(filters).filter((k) => !KNOWN_KEYS.has(k));
  if (unknown.length > 0)
    throw invalid(
      `invalid filter '${unknown.join("', '")}' for events: use ${[...KNOWN_KEYS].sort().join(", ")}`,
    );
  for (const t of filters.type ?? [])
    if (!EVENT_TYPES.includes(t as EventType))
      throw invalid(`invalid filter 'type=${t}': use one of ${EVENT_TYPES.join(", ")}`);
  for (const s of filters.scope ?? [])
    if (s !== "local" && s !== "swarm") throw invalid(`invalid filter 'scope=${s}': use local or swarm`);
}

/** A repository name without its tag or digest ("busybox:latest" -> "busybox"); the input when it is no reference. */
function stripTag(image: string): string {
  try {
    return familiarName(parseReference(image));
  } catch {
    return image;
  }
}

/** dockerd's FuzzyMatch: no values, an equal value, or a value the source starts with. */
function fuzzy(values: string[] | undefined, source: string | undefined): boolean {
  if (!values?.length) return true;
  if (source === undefined || source === "") return false;
  return values.some((v) => source === v || source.startsWith(v));
}

function exact(values: string[] | undefined, source: string | undefined): boolean {
  if (!values?.length) return true;
  return source !== undefined && values.includes(source);
}

/** `event=exec_start` matches "exec_start: sh -c ..." (the action before its colon), as in dockerd. */
function matchAction(values: string[] | undefined, action: string): boolean {
  if (!values?.length) return true;
  const head = action.split(":", 1)[0];
  return values.some((v) => v === action || v === head);
}

function matchImage(values: string[] | undefined, e: EngineEvent): boolean {
  if (!values?.length) return true;
  const name = e.Actor.Attributes[e.Type === "image" ? "name" : "image"];
  const candidates = [
    e.Actor.ID,
    name,
    stripTag(e.Actor.ID),
    name === undefined ? undefined : stripTag(name),
  ];
  return candidates.some((c) => c !== undefined && values.includes(c));
}

function matchLabels(values: string[] | undefined, attributes: Record<string, string>): boolean {
  if (!values?.length) return true;
  return values.every((v) => {
    const eq = v.indexOf("=");
    if (eq < 0) return v in attributes;
    const key = v.slice(0, eq);
    return key in attributes && attributes[key] === v.slice(eq + 1);
  });
}

/** The predicate for a validated set of filters. */
export function eventMatcher(filters: EventFilters): (e: EngineEvent) => boolean {
  validateEventFilters(filters);
  return (e) =>
    matchAction(filters.event, e.Action) &&
    exact(filters.type, e.Type) &&
    exact(filters.scope, e.scope) &&
    NAMED_KEYS.every(
      (k) =>
        !filters[k]?.length || fuzzy(filters[k], e.Actor.ID) || fuzzy(filters[k], e.Actor.Attributes.name),
    ) &&
    matchImage(filters.image, e) &&
    matchLabels(filters.label, e.Actor.Attributes);
}
