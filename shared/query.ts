// Query-string conventions of the Engine API: booleans as 1/true/0/false, filters as JSON.
import { invalid } from "./errors.js";

export type Query = Record<string, string | string[] | undefined>;

function first(q: Query, key: string): string | undefined {
  const v = q[key];
  return Array.isArray(v) ? v[v.length - 1] : v;
}

export function qBool(q: Query, key: string, fallback = false): boolean {
  const v = first(q, key);
  if (v === undefined || v === "") return fallback;
  return !(v === "0" || v.toLowerCase() === "false");
}

export function qString(q: Query, key: string): string | undefined {
  return first(q, key);
}

export function qInt(q: Query, key: string): number | undefined {
  const v = first(q, key);
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isFinite(n))
    throw invalid(`invalid value "${v}" for query parameter ${key}: expected a number`);
  return n;
}

export function qList(q: Query, key: string): string[] {
  const v = q[key];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/** Docker's `filters` parameter: `{"label":["a=b"]}`, or the old `{"label":{"a=b":true}}` form. */
export function qFilters(q: Query): Record<string, string[]> {
  const raw = first(q, "filters");
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw invalid(`invalid filters "${raw}": expected JSON such as {"status":["running"]}`);
  }
  if (typeof parsed !== "object" || parsed === null)
    throw invalid(`invalid filters "${raw}": expected a JSON object`);
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (Array.isArray(v)) out[k] = v.map(String);
    else if (typeof v === "object" && v !== null) out[k] = Object.keys(v);
    else throw invalid(`invalid filter "${k}": expected a list of values`);
  }
  return out;
}
