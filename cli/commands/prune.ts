// The one shape of every `prune`: confirm unless -f, POST the filters, print what went and,
// where the daemon counts it, the space it gave back.

import { apiClient, confirm, filtersJson, out, type CommandContext } from "../command.js";

export interface PruneFlags {
  force?: boolean;
  filter?: string[];
}

export interface Pruning<R> {
  /** The question asked without -f. */
  warning: string;
  /** The API path, e.g. /volumes/prune. */
  path: string;
  /** Filters the command adds to the user's --filter (e.g. dangling=true). */
  filters?: Record<string, string[]>;
  /** What to print of the deleted objects; "" prints nothing. */
  deleted: (r: R) => string;
  /** Bytes given back, for the kinds whose answer counts them. */
  reclaimed?: (r: R) => number | undefined;
}

export async function prune<R>(ctx: CommandContext<PruneFlags>, p: Pruning<R>): Promise<number> {
  if (!ctx.flags.force && !(await confirm(p.warning))) return 0;
  const r = await (
    await apiClient(ctx.host)
  ).json<R>("POST", p.path, { query: { filters: filtersJson(ctx.flags.filter, p.filters) } });
  out(p.deleted(r));
  if (p.reclaimed) {
    // Loaded here, not at start-up: most commands never print a size.
    const { dockerSize } = await import("../../shared/human.js");
    out(`Total reclaimed space: ${dockerSize(p.reclaimed(r) ?? 0, 4)}\n`);
  }
  return 0;
}

/** "Deleted Volumes:" and one id or name a line, as the docker CLI prints them. */
export const deletedList =
  (title: string, blankAfter: boolean) =>
  (items: string[] | null | undefined): string =>
    items && items.length > 0 ? `Deleted ${title}:\n${items.join("\n")}\n${blankAfter ? "\n" : ""}` : "";
