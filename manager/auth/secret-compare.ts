// Comparing secrets (join tokens) without telling a guesser, through the time taken, how much of
// its guess was right: both sides are hashed to equal-length digests first, so neither their
// length nor their common prefix changes how long timingSafeEqual takes.
import { createHash, timingSafeEqual } from "node:crypto";

const digest = (s: string): Buffer => createHash("sha256").update(s, "utf8").digest();

/** Whether two secrets are equal, in time independent of where they differ. An empty `known` matches nothing. */
export function sameSecret(given: string, known: string): boolean {
  const equal = timingSafeEqual(digest(given), digest(known));
  return equal && known !== "";
}
