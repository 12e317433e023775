// Detach keys as an attach request gives them (`detachKeys` in the query): parsed as Docker's
// term.ToBytes, a 400 naming the value when it cannot be. The parser and the escape proxy that
// watches the client's input are shared/detach-keys.ts's (the shoal CLI uses them too).
import { invalid } from "../../shared/errors.js";
import { DEFAULT_DETACH_KEYS, keysToBytes } from "../../shared/detach-keys.js";

export { DEFAULT_DETACH_KEYS, EscapeProxy, keysToBytes } from "../../shared/detach-keys.js";

/**
 * The detach sequence an attach asked for: the default when the query has none, a 400 naming
 * the value (dockerd's "Invalid detach keys (...) provided") when it cannot be parsed.
 */
export function parseDetachKeys(value: string | undefined): Buffer {
  if (value === undefined || value === "") return DEFAULT_DETACH_KEYS;
  try {
    return keysToBytes(value);
  } catch (e) {
    throw invalid(
      `Invalid detach keys (${value}) provided: ${(e as Error).message}; use a comma-separated list such as ctrl-p,ctrl-q or ctrl-a,x`,
    );
  }
}
