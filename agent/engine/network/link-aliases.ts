// --link NAME[:ALIAS] as dockerd's opts.ParseLink reads it, and the DNS aliases links give on
// user-defined networks: ALIAS resolves, for the linking container alone, to NAME's address.
import { invalid } from "../../../shared/errors.js";

export interface Link {
  name: string;
  alias: string;
}

/** "db", "db:alias", "/db:/web/alias" (inspect's form) → name and alias, as opts.ParseLink reads them. */
export function parseLinks(links: string[] | null | undefined): Link[] {
  return (links ?? []).map((l) => {
    if (typeof l !== "string" || l === "" || l.split(":").length > 2)
      throw invalid(`invalid --link ${String(l)}: use NAME or NAME:ALIAS`);
    const [rawName, rawAlias] = l.split(":");
    const name = rawName.replace(/^\//, "");
    const alias = (rawAlias ?? rawName).split("/").pop() ?? name;
    if (name === "" || alias === "") throw invalid(`invalid --link ${l}: use NAME or NAME:ALIAS`);
    return { name, alias };
  });
}

/** The DNS aliases a container's links give it on user-defined networks: alias → container name. */
export function linkAliases(links: string[] | null | undefined): Map<string, string> {
  const out = new Map<string, string>();
  try {
    for (const l of parseLinks(links)) out.set(l.alias, l.name);
  } catch {
    // Checked at create; a record from an older daemon without valid links gets none.
  }
  return out;
}
