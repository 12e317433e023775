// The `h` and `w` of a resize request (`/containers/{id}/resize`, `/exec/{id}/resize`): whole
// numbers, both required, as dockerd parses them; a bad one is a 400 naming it.
import { invalid } from "../../shared/errors.js";
import { qString, type Query } from "../../shared/query.js";

export interface TerminalSize {
  height: number;
  width: number;
}

function side(q: Query, key: "h" | "w"): number {
  const v = qString(q, key);
  const name = key === "h" ? "height" : "width";
  if (v === undefined || !/^\d+$/.test(v) || Number(v) > 65535)
    throw invalid(
      `bad terminal ${name} ${JSON.stringify(v ?? "")}: pass ?h=<rows>&w=<columns> as whole numbers from 0 to 65535`,
    );
  return Number(v);
}

export function parseResizeQuery(q: Query): TerminalSize {
  return { height: side(q, "h"), width: side(q, "w") };
}
