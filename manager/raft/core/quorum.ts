import type { NodeId } from "./types.js";

export type VoteResult = "pending" | "lost" | "won";

/**
 * The largest index acknowledged by a majority of `voters` (etcd quorum.MajorityConfig.
 * CommittedIndex). An empty configuration has no quorum requirement: +Infinity, which never
 * commits anything because no entry has that index.
 */
export function majorityCommittedIndex(
  voters: Iterable<NodeId>,
  acked: (id: NodeId) => number | undefined,
): number {
  const idx: number[] = [];
  for (const id of voters) idx.push(acked(id) ?? 0);
  if (idx.length === 0) return Number.POSITIVE_INFINITY;
  idx.sort((a, b) => a - b);
  const q = Math.floor(idx.length / 2) + 1;
  return idx[idx.length - q];
}

/** Outcome of an election given the votes so far; voters not in `votes` have not answered. */
export function majorityVoteResult(
  voters: Iterable<NodeId>,
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  let n = 0;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    n++;
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  // An empty configuration wins every vote (as in etcd); it keeps joint-free code uniform.
  if (n === 0) return "won";
  const q = Math.floor(n / 2) + 1;
  if (granted >= q) return "won";
  if (granted + missing >= q) return "pending";
  return "lost";
}
