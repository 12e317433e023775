import { invalid } from "../../../shared/errors.js";
import type { ImageStoreApi } from "../image/api.js";
import type { ListContainersOptions } from "./api.js";
import type { ContainerStore } from "./store.js";
import type { ContainerRecord, ContainerStatus } from "./types.js";
import { MORE_PS_FILTERS, morePsMatcher } from "./ps-filters.js";

const knownFilters = new Set([
  "id",
  "name",
  "label",
  "status",
  "exited",
  "ancestor",
  "before",
  "since",
  ...MORE_PS_FILTERS,
]);
const statuses = new Set<ContainerStatus>([
  "created",
  "running",
  "paused",
  "restarting",
  "removing",
  "exited",
  "dead",
]);

export function labelMatches(labels: Record<string, string>, expr: string): boolean {
  const eq = expr.indexOf("=");
  if (eq < 0) return expr in labels;
  const key = expr.slice(0, eq);
  return key in labels && labels[key] === expr.slice(eq + 1);
}

/** `docker ps` without -a shows the containers that are up: running, paused or restarting. */
export const isUp = (r: ContainerRecord): boolean =>
  r.State.Status === "running" || r.State.Status === "paused" || r.State.Status === "restarting";

function imageMatcher(images: ImageStoreApi, refs: string[]): (r: ContainerRecord) => boolean {
  const ids = new Set<string>();
  for (const ref of refs) {
    try {
      ids.add(images.resolve(ref).id);
    } catch {
      // An image that is gone can still match by the name the container was made with.
    }
  }
  return (r) => ids.has(r.ImageId) || refs.includes(r.Config.Image);
}

/** Docker's container list: newest first, filters ANDed across keys and ORed within a key. */
export function listContainers(
  store: ContainerStore,
  images: ImageStoreApi,
  o: ListContainersOptions,
): ContainerRecord[] {
  const f = o.filters ?? {};
  const unknown = Object.keys(f).filter((key) => !knownFilters.has(key));
  if (unknown.length > 0)
    throw invalid(`invalid filter '${unknown.join("', '")}': ps filters on ${[...knownFilters].join(", ")}`);
  const more = morePsMatcher(f);
  for (const s of f.status ?? []) {
    if (!statuses.has(s as ContainerStatus)) {
      throw invalid(
        `invalid filter 'status=${s}': use created, restarting, running, removing, paused, exited or dead`,
      );
    }
  }
  for (const e of f.exited ?? [])
    if (!/^-?\d+$/.test(e)) throw invalid(`invalid filter 'exited=${e}': use an exit code`);

  const created = (ref: string): string => store.resolve(ref).Created;
  const before = f.before?.length ? created(f.before[0]) : undefined;
  const since = f.since?.length ? created(f.since[0]) : undefined;
  const ancestor = f.ancestor?.length ? imageMatcher(images, f.ancestor) : undefined;
  const all =
    o.all || (f.status?.length ?? 0) > 0 || (o.limit ?? 0) > 0 || before !== undefined || since !== undefined;

  let out = store
    .all()
    .filter((r) => all || isUp(r))
    .filter((r) => !f.id?.length || f.id.some((v) => r.Id.startsWith(v)))
    .filter((r) => !f.name?.length || f.name.some((v) => matchName(r.Name, v)))
    .filter((r) => !f.label?.length || f.label.every((v) => labelMatches(r.Config.Labels ?? {}, v)))
    .filter((r) => !f.status?.length || f.status.includes(r.State.Status))
    .filter(
      (r) =>
        !f.exited?.length || (r.State.Status === "exited" && f.exited.includes(String(r.State.ExitCode))),
    )
    .filter((r) => !ancestor || ancestor(r))
    .filter(more)
    .filter((r) => before === undefined || r.Created < before)
    .filter((r) => since === undefined || r.Created > since)
    .sort((a, b) => (a.Created < b.Created ? 1 : a.Created > b.Created ? -1 : 0));
  if (o.limit !== undefined && o.limit > 0) out = out.slice(0, o.limit);
  return out;
}

/** Docker matches the name filter as a regular expression against "/name". */
function matchName(name: string, pattern: string): boolean {
  try {
    return new RegExp(pattern).test(`/${name}`);
  } catch {
    return `/${name}`.includes(pattern);
  }
}

/** prune's filters: until (timestamp or duration) and label / label!. */
export function pruneMatcher(filters: Record<string, string[]> = {}): (r: ContainerRecord) => boolean {
  for (const key of Object.keys(filters)) {
    if (!["until", "label", "label!"].includes(key))
      throw invalid(`invalid filter '${key}': prune takes until, label and label!`);
  }
  const untils = (filters.until ?? []).map(parseUntil);
  return (r) =>
    untils.every((u) => Date.parse(r.Created) < u) &&
    (filters.label ?? []).every((l) => labelMatches(r.Config.Labels ?? {}, l)) &&
    (filters["label!"] ?? []).every((l) => !labelMatches(r.Config.Labels ?? {}, l));
}

function parseUntil(v: string): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const d = /^(\d+)(s|m|h)$/.exec(v);
  if (d) return Date.now() - Number(d[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[d[2] as "s" | "m" | "h"];
  const t = Date.parse(v);
  if (Number.isNaN(t))
    throw invalid(`invalid filter 'until=${v}': use a timestamp or a duration such as 24h`);
  return t;
}
